"""Interrupted distill runs: kill -9 or Ctrl-C, then --resume ends where the whole run would."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


class _Interrupt:
    """Progress that raises Ctrl-C after ``epoch`` of ``stage``, before its checkpoint."""

    def __init__(self, stage, epoch):
        self.at = (stage, epoch)

    def stage(self, name, detail=""):
        pass

    def epoch(self, stage, epoch, epochs, logs):
        if (stage, epoch) == self.at:
            raise KeyboardInterrupt


def _same_models(a, b):
    for x, y in zip(load_keras_model(a).get_weights(), load_keras_model(b).get_weights(),
                    strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("stage", ["distill", "scratch"])
def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path, digits, stage):
    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    save_keras_model(teacher, tmp_path / "teacher.h5")
    settings = dict(teacher=str(tmp_path / "teacher.h5"), student="student-cnn", data=digits,
                    epochs=4, patience=3, augment=["shift"], seed=2)
    whole = distill(out_dir=tmp_path / "whole", **settings)

    with pytest.raises(KeyboardInterrupt):
        distill(out_dir=tmp_path / "run", progress=_Interrupt(stage, 3), **settings)
    work = tmp_path / ".run.partial"
    assert not (tmp_path / "run").exists() and work.is_dir()
    assert json.loads((work / "checkpoints" / stage / "latest" / "state.json").read_text())[
        "epoch"] == 2
    with pytest.raises(EdgeDistillError, match="pass --resume to continue it or --force"):
        distill(out_dir=tmp_path / "run", **settings)
    with pytest.raises(EdgeDistillError, match="the interrupted run had seed = 2, this one 3"):
        distill(out_dir=tmp_path / "run", resume=True, **{**settings, "seed": 3})

    resumed = distill(out_dir=tmp_path / "run", resume=True, **settings)
    assert not work.exists() and not (tmp_path / "run" / "checkpoints").exists()
    assert resumed.student_accuracy == whole.student_accuracy
    assert resumed.scratch_accuracy == whole.scratch_accuracy
    _same_models(resumed.student_path, whole.student_path)
    _same_models(resumed.scratch_path, whole.scratch_path)
    for name in ("distill", "scratch"):
        assert resumed.fits[name]["history"] == pytest.approx(whole.fits[name]["history"])
        assert resumed.fits[name]["best_epoch"] == whole.fits[name]["best_epoch"]


def test_nothing_to_resume_and_a_failed_start_leaves_nothing(tmp_path, digits):
    with pytest.raises(EdgeDistillError, match="nothing to resume"):
        distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", resume=True)
    with pytest.raises(EdgeDistillError, match="has no layer"):
        distill("teacher-mlp", "student-mlp", digits, tmp_path / "run",
                losses=["feature_distillation:teacher_layer_name=x,student_layer_name=y"])
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"] or not list(tmp_path.iterdir())


def test_a_damaged_run_record_is_a_clean_error(tmp_path, digits):
    with pytest.raises(KeyboardInterrupt):
        distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", epochs=2,
                teacher_epochs=2, progress=_Interrupt("teacher", 2))
    (tmp_path / ".run.partial" / "checkpoints" / "run.json").write_text("{not json")
    with pytest.raises(EdgeDistillError, match="run.json: damaged; pass --force"):
        distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", epochs=2,
                teacher_epochs=2, resume=True)
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", epochs=2,
                     teacher_epochs=2, force=True)
    assert Path(result.student_path).is_file()


def _cli(*args):
    return [sys.executable, "-m", "edgedistill.cli", "distill", *map(str, args)]


def test_kill_9_mid_training_then_resume(tmp_path):
    """A real SIGKILL during the student's fit; --resume finishes with the same student."""
    args = ["--teacher", "teacher-mlp", "--teacher-epochs", 2, "--student", "student-mlp",
            "--data", "digits", "--epochs", 40, "--augment", "shift", "--seed", 1,
            "--no-baseline", "--cache-dir", tmp_path / "cache"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(_cli(*args, "--out", tmp_path / "whole"), check=True, env=env,
                   capture_output=True)

    run = subprocess.Popen(_cli(*args, "--out", tmp_path / "run"), env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / ".run.partial" / "checkpoints" / "distill" / "latest" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 3:
            break
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it could be killed"
    os.kill(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    assert not (tmp_path / "run").exists()

    resumed = subprocess.run(_cli(*args, "--out", tmp_path / "run", "--resume"), env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished before the interruption" in resumed.stderr
    _same_models(tmp_path / "run" / "student.h5", tmp_path / "whole" / "student.h5")
    whole = json.loads((tmp_path / "whole" / "distill.json").read_text())
    record = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert record["student_accuracy"] == whole["student_accuracy"]
    assert record["fits"]["distill"]["epochs_run"] == whole["fits"]["distill"]["epochs_run"]


def test_a_pruned_run_resumes_to_the_uninterrupted_result(tmp_path, digits):
    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    save_keras_model(teacher, tmp_path / "teacher.h5")
    settings = dict(teacher=str(tmp_path / "teacher.h5"), student="student-cnn", data=digits,
                    epochs=4, prune="sparsity=0.5,end=0.5", seed=1)
    whole = distill(out_dir=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        distill(out_dir=tmp_path / "run", progress=_Interrupt("distill", 2), **settings)
    resumed = distill(out_dir=tmp_path / "run", resume=True, **settings)
    _same_models(resumed.student_path, whole.student_path)
    _same_models(resumed.scratch_path, whole.scratch_path)
    assert resumed.compressed_layers == whole.compressed_layers
    assert resumed.fits["distill"]["history"] == pytest.approx(whole.fits["distill"]["history"])
