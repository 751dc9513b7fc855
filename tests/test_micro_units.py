"""The micro bundle's pieces: C array text, op table, margin, search steps."""

from __future__ import annotations

import os
import re
import time

import pytest
from conftest import one_op_model

from edgedistill.errors import EdgeDistillError
from edgedistill.micro import (
    TFLM_RESOLVER_METHODS,
    c_array_body,
    margin_for,
    model_data_cc,
    resolver_methods,
)
from edgedistill.micro._child import Workdir, load_model, sample_inputs
from edgedistill.micro._search import ARENA_STEP, GENEROUS_ARENA, next_arena
from edgedistill.micro.arena import _search


def _parse(text: str) -> bytes:
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", text))


@pytest.mark.parametrize("n", [1, 11, 12, 13, 24, 25, 1000])
def test_c_array_round_trips_every_length(n):
    data = os.urandom(n)
    body = c_array_body(data)
    assert _parse(body) == data
    lines = body.splitlines()
    assert all(line.startswith("  0x") and line.endswith(",") for line in lines)
    assert len(lines) == -(-n // 12)


def test_c_array_of_a_megabyte_is_fast():
    data = os.urandom(1 << 20)
    started = time.perf_counter()
    text = model_data_cc(data, "big.tflite", "g_big_data")
    seconds = time.perf_counter() - started
    # Measured about 25 ms on the 2-core CI machine; a per-byte loop takes ~10x longer.
    assert seconds < 0.5
    assert _parse(text.split("{", 1)[1].split("}", 1)[0]) == data


def test_resolver_methods_use_tflm_names():
    assert resolver_methods(["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                             "AVERAGE_POOL_2D", "MAX_POOL_2D", "QUANTIZE", "DEQUANTIZE"]) == (
        "AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected",
        "AddAveragePool2D", "AddMaxPool2D", "AddQuantize", "AddDequantize")
    assert len(set(TFLM_RESOLVER_METHODS.values())) == len(TFLM_RESOLVER_METHODS)


def test_resolver_methods_refuse_unknown_and_custom_ops():
    with pytest.raises(EdgeDistillError, match="m.tflite: op NO_SUCH_OP has no TFLM kernel"):
        resolver_methods(["ADD", "NO_SUCH_OP"], "m.tflite")
    with pytest.raises(EdgeDistillError, match="custom op 'Foo'"):
        resolver_methods(["CUSTOM:Foo"])


def test_margin_is_ten_percent_at_least_1k_rounded_to_16():
    assert margin_for(24272) == 2432
    assert margin_for(4640) == 1024
    assert margin_for(100_001) % 16 == 0 and margin_for(100_001) >= 10_000.1
    assert margin_for(5000, 0.0, 0) == 0
    with pytest.raises(EdgeDistillError, match="non-negative"):
        margin_for(5000, -0.1)


def test_search_steps_end_on_adjacent_sizes():
    lo, hi, steps, smallest_ok = 0, None, 0, 4640
    while (arena := next_arena(lo, hi)) is not None:
        assert arena % ARENA_STEP == 0 and lo < arena and (hi is None or arena < hi)
        lo, hi = (lo, arena) if arena >= smallest_ok else (arena, hi)
        steps += 1
    assert hi == smallest_ok and lo == smallest_ok - ARENA_STEP
    assert steps <= 2 + GENEROUS_ARENA.bit_length()


def test_search_survives_children_that_crash():
    # Sizes below ~300 bytes make tflite-micro segfault; the search treats each
    # crash as "too small" and carries on in a new child.
    data, parsed = load_model(one_op_model())
    with Workdir(data, sample_inputs(parsed)) as work:
        hi, probes, last_error = _search(work, "relu.tflite", lo=0, hi=320)
    assert hi == 320 and probes >= 1 and "crashed" in last_error
