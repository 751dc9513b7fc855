"""Distillation modes end to end on tiny data: born-again, assistant, adversarial, data-free."""

import json
from pathlib import Path

import numpy as np
import pytest
from report_checks import check_every_format

from edgedistill._tf import keras
from edgedistill.data import load_dataset
from edgedistill.distill import distill
from edgedistill.distill.run import _robustness_warnings
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model
from edgedistill.reports.training import distill_report

k = keras()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path / "cache"))


def _mlp(hidden, name):
    return k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(),
                         k.layers.Dense(hidden, activation="relu"), k.layers.Dense(10)],
                        name=name)


def test_born_again_without_a_teacher_starts_from_the_scratch_student(tmp_path, digits):
    result = distill(None, "student-mlp", digits, tmp_path / "run", mode="born-again",
                     generations=2, epochs=2, seed=0)
    assert result.teacher_paths == (result.scratch_path,)
    assert result.teacher_accuracy == result.scratch_accuracy
    assert [link["role"] for link in result.chain] == ["generation 1", "student"]
    generation = load_keras_model(result.chain[0]["path"])
    student = load_keras_model(result.student_path)
    assert generation.count_params() == student.count_params() == result.student_params
    # Each generation learns from the one before, so none equals its teacher.
    assert not np.allclose(generation.get_weights()[0], student.get_weights()[0])
    assert result.warnings == ()
    record = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert record["mode"] == "born-again" and set(record["fits"]) >= {
        "scratch", "generation-1", "distill"}


def test_born_again_from_a_given_teacher(tmp_path, digits):
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", mode="born-again",
                     generations=1, epochs=1, teacher_epochs=1, scratch_baseline=False)
    assert [link["role"] for link in result.chain] == ["student"]
    assert result.scratch_accuracy is None and result.teacher_path.endswith("teacher.h5")


def test_assistant_chain_trains_each_link_from_the_one_before(tmp_path, digits):
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", mode="assistant",
                     assistants=[_mlp(64, "assistant_a"), _mlp(48, "assistant_b")], epochs=2,
                     teacher_epochs=2)
    assert [link["role"] for link in result.chain] == ["assistant", "assistant", "student"]
    assert [link["name"] for link in result.chain[:2]] == ["assistant_a", "assistant_b"]
    assert result.chain[0]["params"] > result.chain[1]["params"] > result.student_params
    for link in result.chain:
        assert Path(link["path"]).is_file() and 0.0 <= link["accuracy"] <= 1.0
    assert set(result.fits) >= {"teacher-0", "assistant-0", "assistant-1", "distill", "scratch"}


def test_adversarial_mode_reports_clean_and_adversarial_accuracy(tmp_path, digits):
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", mode="adversarial",
                     adversary="fgsm:epsilon=0.2", epochs=2, teacher_epochs=2)
    robust = result.adversarial
    assert robust["adversary"]["method"] == "fgsm"
    # Robustness is measured with PGD whatever the training attack: an FGSM-trained
    # model can score higher under FGSM than on clean inputs.
    assert robust["evaluation"] == {"method": "pgd", "epsilon": 0.2, "steps": 10,
                                    "step_size": None, "value_range": (0.0, 1.0)}
    for role in ("student", "scratch", "teacher"):  # PGD's random start: a little slack
        assert 0.0 <= robust[f"{role}_accuracy"] <= robust["training_attack"][
            f"{role}_accuracy"] + 0.02
    check_every_format(distill_report(result), "distill")
    # The scratch baseline trains adversarially too, so the loss it logs has the term.
    assert "adversarial_loss" in result.fits["scratch"]["history"]
    assert "adversarial_loss" in result.fits["distill"]["history"]
    assert robust["student_accuracy"] < result.student_accuracy
    # Two epochs leave the student weak under either attack: not the overfitting signature.
    assert not [w for w in result.warnings if "catastrophic overfitting" in w]


@pytest.mark.parametrize("clean, pgd, fgsm, warned", [
    (0.91, 0.013, 0.76, True),    # Fashion-MNIST, FGSM at epsilon 0.1: robust to FGSM alone
    (0.91, 0.55, 0.70, False),    # PGD holds most of what FGSM leaves
    (0.83, 0.0, 0.044, False),    # weak under both: no robustness to lose
])
def test_a_student_robust_only_to_its_training_attack_is_flagged(clean, pgd, fgsm, warned):
    robust = {"adversary": {"method": "fgsm", "epsilon": 0.1},
              "evaluation": {"method": "pgd", "epsilon": 0.1, "steps": 10},
              "student_accuracy": pgd, "training_attack": {"student_accuracy": fgsm}}
    warnings = _robustness_warnings(robust, clean)
    assert bool(warnings) == warned
    if warned:
        assert warnings[0].startswith("under PGD-10 the student keeps 1.3% against 76.0% "
                                      "under the FGSM it trained on")
        assert "--adversary pgd:epsilon=0.1,steps=1,step_size=0.125)" in warnings[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "dreaming"}, "mode: 'dreaming' unknown"),
    ({"mode": "assistant"}, "give at least one assistant"),
    ({"assistants": ["student-mlp"]}, "only --mode assistant"),
    ({"adversary": "pgd"}, "only --mode adversarial"),
    ({"mode": "born-again", "generations": 0}, "generations: must be"),
    ({"synthetic_samples": 10}, "only with --mode data-free"),
    ({"mode": "adversarial", "adversary": "pgd:epsilon=-1"}, "epsilon must be"),
])
def test_mode_settings_are_checked_before_training(tmp_path, digits, kwargs, message):
    with pytest.raises(EdgeDistillError, match=message):
        distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_only_born_again_runs_without_a_teacher(tmp_path, digits):
    with pytest.raises(EdgeDistillError, match="only --mode born-again runs without one"):
        distill(None, "student-mlp", digits, tmp_path / "run")


def test_data_free_distills_on_synthesized_inputs_and_reports_the_gap(tmp_path, digits):
    result = distill("teacher-cnn", "student-cnn", digits, tmp_path / "run", mode="data-free",
                     synthetic_samples=64, epochs=1, teacher_epochs=2)
    data_free = result.data_free
    assert data_free["samples"] == 64 + 6 and data_free["synthesis"]["count"] == 70
    assert data_free["gap"] == pytest.approx(data_free["real_data_accuracy"]
                                             - result.student_accuracy)
    assert [link["role"] for link in result.chain] == ["real-data reference", "student"]
    assert result.alpha == 0.0 and "synthesize" in result.seconds
    record = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert record["data"]["name"] == "digits"


def test_data_free_refuses_a_zoo_teacher_without_batchnorm_before_training(tmp_path, digits):
    with pytest.raises(EdgeDistillError, match="teacher-mlp: has no BatchNormalization"):
        distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", mode="data-free")
    assert not (tmp_path / "run").exists()
