"""Mutated MLPerf Tiny models through the reader and the profile: refused or sane, never worse."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import mlperf_model
from tflite_mutants import absurd_figures, mutate

HELPER = Path(__file__).with_name("tflite_mutants.py")


# 2,400 mutants over int8 and float models, each batch in a child process so
# that a crash fails the test instead of killing the suite.
@pytest.mark.parametrize(("name", "seed"), [
    ("kws_ref_model.tflite", 1), ("vww_96_int8.tflite", 2),
    ("ad01_int8.tflite", 3), ("kws_ref_model_float32.tflite", 4),
])
def test_mutants_are_refused_or_profiled_sanely(name, seed):
    model = mlperf_model(name)
    child = subprocess.run([sys.executable, str(HELPER), str(model), "600", str(seed)],
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-2000:]
    tally = json.loads(child.stdout.strip().splitlines()[-1])
    assert tally["escapes"] == {}
    assert tally.get("hung", 0) == 0
    assert tally["refused"] + tally["sane"] == 600
    assert tally["refused"] > 50 and tally["sane"] > 50  # the mutator reaches both outcomes


def test_the_mutator_is_seeded_and_the_absurdity_check_bites():
    import random

    data = bytes(range(256)) * 4
    assert mutate(data, random.Random(7)) == mutate(data, random.Random(7))
    report = {"totals": {"macs": -5, "param_bytes": 10, "flash_bytes": 5}, "ops": [],
              "memory": {}, "targets": [{"latency_ms": 1e30}]}
    found = absurd_figures(report)
    assert any("macs=-5" in f for f in found)
    assert any("latency_ms" in f for f in found)
    assert "parameters larger than the file" in found
