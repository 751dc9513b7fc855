"""The distill stage: fair baseline, teachers of every origin, cache, QAT, outputs."""

import json

import numpy as np
import pytest

from edgedistill._tf import keras
from edgedistill.data import load_dataset
from edgedistill.distill import distill
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model, save_keras_model

k = keras()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _dense(units, name, softmax=False):
    return k.Sequential(
        [k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(16, activation="relu"),
         k.layers.Dense(units, activation="softmax" if softmax else None)],
        name=name,
    )


def test_scratch_and_distilled_students_share_start_batches_and_budget(tmp_path, digits):
    """With alpha=1 distillation is switched off: both students must end identical."""
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", alpha=1.0,
                     epochs=2, teacher_epochs=1, seed=3, augment=["shift"])
    distilled = load_keras_model(result.student_path).get_weights()
    scratch = load_keras_model(result.scratch_path).get_weights()
    for a, b in zip(distilled, scratch, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert result.gain == pytest.approx(0.0, abs=1e-9)


def test_cached_teacher_outputs_keep_the_batches_of_the_scratch_run(tmp_path, digits):
    """Batches that carry cached teacher outputs come in the scratch run's order."""
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", alpha=1.0,
                     epochs=2, teacher_epochs=1, seed=4)
    assert result.teacher_outputs["train"]["hit"] is False
    for a, b in zip(load_keras_model(result.student_path).get_weights(),
                    load_keras_model(result.scratch_path).get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_distill_with_qat_writes_loadable_student_and_record(tmp_path, digits):
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", epochs=1,
                     teacher_epochs=2, qat=True, seed=1)
    assert result.teacher_params / result.student_params >= 10
    assert 0.0 <= result.student_accuracy <= 1.0 and result.scratch_accuracy is not None
    assert result.teacher_accuracy > 0.5  # a zoo teacher is trained and its accuracy reported
    assert result.fits["teacher-0"]["epochs_run"] <= 2
    student = load_keras_model(result.student_path)
    assert any("quant" in layer.name for layer in student.layers)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "distill.json", "scratch_student.h5", "student.h5", "teacher.h5",
    ]
    record = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert record["losses"][0]["class_name"] == "LogitsDistillation"
    assert record["gain"] == pytest.approx(result.student_accuracy - result.scratch_accuracy)
    assert set(record["fits"]) == {"teacher-0", "distill", "scratch"}


def test_teacher_outputs_are_cached_across_runs(tmp_path, digits):
    teacher = _dense(10, "t")
    save_keras_model(teacher, tmp_path / "t.h5")
    first = distill(tmp_path / "t.h5", "student-mlp", digits, tmp_path / "a", epochs=1,
                    scratch_baseline=False)
    again = distill(tmp_path / "t.h5", "student-mlp", digits, tmp_path / "b", epochs=1,
                    scratch_baseline=False)
    assert not first.teacher_outputs["train"]["hit"] and again.teacher_outputs["train"]["hit"]
    assert again.scratch_path is None and again.gain is None


def test_a_teacher_no_better_than_scratch_is_flagged(tmp_path, digits):
    save_keras_model(_dense(10, "untrained", softmax=True), tmp_path / "t.h5")
    result = distill(tmp_path / "t.h5", "student-mlp", digits, tmp_path / "run", epochs=2)
    assert result.teacher_accuracy < 0.5
    assert "not clearly better than the student trained from scratch" in result.warnings[0]


def test_an_ensemble_of_two_teachers(tmp_path, digits):
    for name in ("a", "b"):
        save_keras_model(_dense(10, name), tmp_path / f"{name}.h5")
    result = distill([tmp_path / "a.h5", tmp_path / "b.h5"], "student-mlp", digits,
                     tmp_path / "run", teacher_weights=[2, 1], epochs=1,
                     scratch_baseline=False, losses=["logits_mse", "rkd_distance"],
                     loss_weights=[1.0, 0.5])
    assert result.teacher["kind"] == "ensemble" and result.teacher["weights"] == [2, 1]
    assert result.loss_weights == (1.0, 0.5)
    assert [loss["class_name"] for loss in result.losses] == ["LogitsMSE", "RKDDistance"]


def test_distill_checks_data_against_the_models(tmp_path, digits):
    teacher = _dense(10, "t")
    teacher.save(tmp_path / "t.h5")
    student = _dense(3, "s")
    student.save(tmp_path / "s.h5")
    with pytest.raises(EdgeDistillError, match="output shapes differ"):
        distill(tmp_path / "t.h5", tmp_path / "s.h5", digits, tmp_path / "out", epochs=1)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "wide.npz", x_train=rng.random((20, 4, 4, 1)),
             y_train=rng.integers(0, 10, 20), x_test=rng.random((5, 4, 4, 1)),
             y_test=rng.integers(0, 10, 5))
    with pytest.raises(EdgeDistillError, match=r"wide.npz: inputs have shape \(4, 4, 1\)"):
        distill(tmp_path / "t.h5", "student-mlp", tmp_path / "wide.npz", tmp_path / "out")
    with pytest.raises(EdgeDistillError, match="learning-rate"):
        distill(tmp_path / "t.h5", "student-mlp", digits, tmp_path / "out",
                learning_rate=float("nan"))
    assert not (tmp_path / "out").exists()


def test_distill_accepts_a_student_that_is_already_qat_wrapped(tmp_path, digits):
    from edgedistill.compress import is_quantize_wrapped, quantize_student

    student = quantize_student(_dense(10, "s"))
    assert quantize_student(student) is student
    save_keras_model(student, tmp_path / "qat.h5")
    result = distill("teacher-mlp", tmp_path / "qat.h5", digits, tmp_path / "run", epochs=1,
                     teacher_epochs=1, qat=True)
    assert is_quantize_wrapped(load_keras_model(result.student_path))
    assert is_quantize_wrapped(load_keras_model(result.scratch_path))
