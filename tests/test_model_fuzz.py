"""Mutated tf_keras model files (.h5 and .keras): refused in one line or loaded sanely."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).with_name("model_mutants.py")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from edgedistill.zoo import build

    folder = tmp_path_factory.mktemp("models")
    model = build("student-cnn", (8, 8, 1), 10)
    for suffix in ("h5", "keras"):
        model.save(folder / f"student.{suffix}")
    return folder


# Each file's mutants load in a child process, so a crash in h5py or
# TensorFlow fails the test instead of killing the suite.
@pytest.mark.parametrize(("suffix", "seed"), [("h5", 1), ("keras", 2)])
def test_mutated_model_files_are_refused_or_load_sanely(models, suffix, seed):
    child = subprocess.run(
        [sys.executable, str(HELPER), str(models / f"student.{suffix}"), "60", str(seed)],
        capture_output=True, text=True, timeout=900)
    assert child.returncode == 0, child.stderr[-2000:]
    tally = json.loads(child.stdout.strip().splitlines()[-1])
    assert tally["escapes"] == {}
    assert tally.get("hung", 0) == tally.get("absurd", 0) == tally.get("messy", 0) == 0, tally
    assert tally.get("refused", 0) + tally.get("loaded", 0) == 60
    assert tally["refused"] > 5, tally  # the mutator reaches the refusals
