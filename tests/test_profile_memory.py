"""The activation-arena estimate against TensorFlow Lite Micro's real allocator."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import MLPERF_DIR, mlperf_model

from edgedistill.profile.memory import plan_memory
from edgedistill.tflite_file import read_tflite

# kws_ref_model_float32 is a hybrid model (int8 weights, float activations) that
# TFLM refuses ("Hybrid models are not supported"), so it is left out.
TFLM_MODELS = (
    "kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
    "ad01_int8.tflite", "vww_96_float.tflite", "pretrainedResnet.tflite", "ad01_fp32.tflite",
)

# TFLM prints its arena use (RecordingMicroAllocator) from C++, so each model
# runs in a child process whose output is parsed.
_CHILD = """
import sys
from tflite_micro.python.tflite_micro import runtime
interp = runtime.Interpreter.from_file(sys.argv[1], arena_size=8 * 1024 * 1024)
interp.print_allocations()
"""


def _tflm_arena(path) -> dict[str, int]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                          text=True, timeout=120, check=True)
    out = proc.stdout + proc.stderr
    return {part: int(re.search(rf"Arena allocation {part} (\d+) bytes", out).group(1))
            for part in ("total", "head", "tail")}


@pytest.fixture(scope="module")
def tflm_arenas():
    mlperf_model(TFLM_MODELS[0])  # skip when the models are absent
    return {name: _tflm_arena(MLPERF_DIR / name) for name in TFLM_MODELS}


@pytest.mark.parametrize("name", TFLM_MODELS)
def test_estimate_matches_tflm_planner(name, tflm_arenas):
    plan = plan_memory(read_tflite(mlperf_model(name)))
    arena = tflm_arenas[name]
    # Observed: an exact match with tflite-micro 0.dev20261023182759. The 2%
    # tolerance leaves room for a newer TFLM reordering equal-sized buffers.
    assert abs(plan.peak_bytes - arena["head"]) <= 0.02 * arena["head"], (plan.peak_bytes, arena)
    # The rest of the arena is interpreter state that the estimate leaves out.
    assert arena["total"] == arena["head"] + arena["tail"] > plan.peak_bytes


def test_overhead_ratio_observed(tflm_arenas, capsys):
    ratios = {name: a["total"] / a["head"] for name, a in tflm_arenas.items()}
    with capsys.disabled():
        print("\nTFLM arena total / planner head:", json.dumps(ratios, indent=1))
    # Documented in edgedistill/profile/memory.py: 1.03x-1.52x, 2.0x/5.2x for the
    # autoencoder; the interpreter's own share was 3.1-29.9 KiB.
    assert 1.0 < min(ratios.values()) and max(ratios.values()) < 6
    tails = [a["tail"] for a in tflm_arenas.values()]
    assert 3 * 1024 <= min(tails) and max(tails) <= 30 * 1024


def test_plan_is_valid_layout():
    model = read_tflite(mlperf_model("vww_96_int8.tflite"))
    plan = plan_memory(model)
    placements = plan.placements
    activations = {t.index for t in model.tensors if not t.is_constant and t.nbytes}
    assert {p.tensor for p in placements} == activations
    for p in placements:
        assert p.offset % 16 == 0 and p.size % 16 == 0
        assert p.size >= model.tensors[p.tensor].nbytes
        assert p.end <= plan.peak_bytes
    for i, a in enumerate(placements):
        for b in placements[i + 1:]:
            alive_together = a.first_op <= b.last_op and b.first_op <= a.last_op
            if alive_together:
                assert a.end <= b.offset or b.end <= a.offset, (a, b)
    # The peak can be no lower than the bytes alive at the busiest operator.
    busiest = max(sum(p.size for p in placements if p.first_op <= i <= p.last_op)
                  for i in range(len(model.operators)))
    assert plan.peak_bytes >= busiest


def test_lifetimes_follow_producers_and_consumers():
    model = read_tflite(mlperf_model("kws_ref_model.tflite"))
    plan = {p.tensor: p for p in plan_memory(model).placements}
    first = model.inputs[0]
    assert (plan[first].first_op, plan[first].last_op) == (0, 0)
    out = model.outputs[0]
    assert plan[out].last_op == len(model.operators) - 1
    conv_out = model.operators[0].outputs[0]
    assert (plan[conv_out].first_op, plan[conv_out].last_op) == (0, 1)
    assert json.loads(json.dumps(plan_memory(model).to_dict()))["peak_bytes"] == 16000
