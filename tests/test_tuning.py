"""Tuning temperature, alpha and loss weights on the validation split."""

import pytest

from edgedistill.data import load_dataset
from edgedistill.distill import distill
from edgedistill.distill.losses import LogitsDistillation, LogitsMSE
from edgedistill.distill.tuning import apply, search_space, tune
from edgedistill.errors import EdgeDistillError


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path / "cache"))


def test_the_space_follows_the_losses():
    assert set(search_space([LogitsDistillation()])) == {"temperature", "alpha"}
    assert set(search_space([LogitsMSE()])) == {"alpha"}
    assert set(search_space([LogitsDistillation(), LogitsMSE()])) == {
        "temperature", "alpha", "loss_weight_0", "loss_weight_1"}


def test_apply_sets_what_was_tuned_and_keeps_the_rest():
    losses, weights, alpha = apply({"temperature": 2.0, "alpha": 0.3, "loss_weight_0": 0.5,
                                    "loss_weight_1": 4.0},
                                   (LogitsDistillation(temperature=4.0, loss="kl_divergence"),
                                    LogitsMSE()), None, 0.1)
    assert losses[0].temperature == 2.0 and isinstance(losses[1], LogitsMSE)
    assert weights == (0.5, 4.0) and alpha == 0.3
    mse = LogitsMSE()
    assert apply({"alpha": 0.2}, (mse,), (3.0,), 0.1) == ((mse,), (3.0,), 0.2)


def test_the_oracle_is_seeded_and_an_interrupted_search_replays(tmp_path):
    space = search_space([LogitsDistillation()])
    seen = []

    def score(values):
        seen.append(values)
        return 1.0 - abs(values["alpha"] - 0.5) - 0.01 * values["temperature"]

    first = tune(score, space, trials=6, seed=3, directory=tmp_path / "a", epochs_per_trial=1)
    again = tune(score, space, trials=6, seed=3, directory=tmp_path / "b", epochs_per_trial=1)
    assert [t["values"] for t in first.trials] == [t["values"] for t in again.trials]
    best = max(first.trials, key=lambda t: t["val_accuracy"])
    assert first.chosen == best["values"]

    stored = {i: t["val_accuracy"] for i, t in enumerate(first.trials[:4])}
    seen.clear()
    resumed = tune(score, space, trials=6, seed=3, directory=tmp_path / "c", epochs_per_trial=1,
                   done=stored.get)
    assert len(seen) == 2 and resumed.trials == first.trials
    with pytest.raises(EdgeDistillError, match="trials must be"):
        tune(score, space, trials=0, seed=0, directory=tmp_path / "d", epochs_per_trial=1)


def test_distill_tunes_then_trains_with_the_chosen_values(tmp_path):
    result = distill("teacher-mlp", "student-mlp", load_dataset("digits"), tmp_path / "run",
                     epochs=2, teacher_epochs=1, tune=3, tune_epochs=1, scratch_baseline=False)
    tuning = result.tuning
    assert len(tuning["trials"]) == 3 and tuning["epochs_per_trial"] == 1
    for trial in tuning["trials"]:
        assert 0.0 <= trial["val_accuracy"] <= 1.0
    assert tuning["chosen"] == max(tuning["trials"], key=lambda t: t["val_accuracy"])["values"]
    assert result.alpha == pytest.approx(tuning["chosen"]["alpha"])
    assert result.losses[0]["config"]["temperature"] == tuning["chosen"]["temperature"]


def test_tune_from_the_command_line(tmp_path):
    import json

    from click.testing import CliRunner

    from edgedistill.cli import main

    result = CliRunner().invoke(main, [
        "distill", "-t", "teacher-mlp", "--teacher-epochs", "1", "-s", "student-mlp", "-d",
        "digits", "-o", str(tmp_path / "run"), "--epochs", "1", "--tune", "2", "--tune-epochs",
        "1", "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "▶ tune 2 trials of 1 epochs over temperature, alpha" in result.stderr
    record = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert len(record["tuning"]["trials"]) == 2
