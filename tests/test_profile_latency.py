"""The analytic latency model against published MLPerf Tiny latencies."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import MLPERF_INT8, MLPERF_PUBLISHED_LATENCY_MS, REPO_ROOT, mlperf_model

from edgedistill import targets
from edgedistill.profile.analysis import OpCost, analyze
from edgedistill.profile.latency import estimate_latency, op_cycles
from edgedistill.tflite_file import read_tflite

# In-sample errors of the NNLS fit (benchmarks/calibrate_latency.py), measured:
# kws +7.3%, vww -8.7%, resnet +0.1%, ad01 0.0%. Four points, three parameters.
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def mlperf_ops():
    return {name: analyze(read_tflite(mlperf_model(name))) for name in MLPERF_INT8}


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_nucleo_estimate_matches_published_mlperf_latency(mlperf_ops, name):
    est = estimate_latency(targets.get("nucleo-l4r5zi"), mlperf_ops[name])
    published = MLPERF_PUBLISHED_LATENCY_MS[name]
    assert est.total_ms == pytest.approx(published, rel=TOLERANCE)
    assert len(est.per_op_ms) == len(mlperf_ops[name])
    assert sum(est.per_op_ms) == pytest.approx(est.total_ms)
    assert all(ms > 0 for ms in est.per_op_ms)
    assert est.target == "nucleo-l4r5zi"
    json.dumps(est.to_dict())


def test_same_core_at_64_mhz_is_120_over_64_slower(mlperf_ops):
    nucleo, nano = targets.get("nucleo-l4r5zi"), targets.get("nano-33-ble-sense")
    for ops in mlperf_ops.values():
        fast = estimate_latency(nucleo, ops).total_ms
        slow = estimate_latency(nano, ops).total_ms
        assert slow / fast == pytest.approx(120 / 64, rel=1e-9)


def test_float_model_is_slower_than_int8():
    target = targets.get("nucleo-l4r5zi")
    int8 = estimate_latency(target, analyze(read_tflite(mlperf_model("kws_ref_model.tflite"))))
    fp32_ops = analyze(read_tflite(mlperf_model("kws_ref_model_float32.tflite")))
    assert any(op.dtype == "float32" for op in fp32_ops)
    fp32 = estimate_latency(target, fp32_ops)
    assert fp32.total_ms > 3 * int8.total_ms


def _op(kind: str, dtype: str = "int8", macs: int = 0, elements: int = 0) -> OpCost:
    return OpCost(0, kind.upper(), kind, dtype, macs, elements, 0, 0)


def test_model_terms_per_kind_dtype_and_threads():
    pixel = targets.get("pixel-4")
    lat = pixel.latency
    assert op_cycles(pixel, _op("reshape", elements=10**6)) == lat.cycles_per_op
    conv = op_cycles(pixel, _op("conv", macs=10**6))
    assert conv == pytest.approx(lat.cycles_per_op + 10**6 * lat.cycles_per_mac["conv"] / 4)
    fconv = op_cycles(pixel, _op("conv", "float32", macs=10**6))
    assert fconv - lat.cycles_per_op == pytest.approx((conv - lat.cycles_per_op) * 2.8)
    add = op_cycles(pixel, _op("elementwise", elements=1000))
    assert add == pytest.approx(lat.cycles_per_op + 1000 * lat.cycles_per_element)
    one_thread = dataclasses.replace(pixel, latency=dataclasses.replace(lat, threads=1))
    assert op_cycles(one_thread, _op("conv", macs=10**6)) - lat.cycles_per_op == pytest.approx(
        4 * (conv - lat.cycles_per_op)
    )
    assert op_cycles(one_thread, _op("pool", elements=1000)) == op_cycles(
        pixel, _op("pool", elements=1000)
    )
    with pytest.raises(ValueError, match="unknown op kind 'magic'"):
        op_cycles(pixel, _op("magic"))


def test_pixel_tap_and_channel_tile_terms():
    pixel = targets.get("pixel-4")
    lat = dataclasses.replace(pixel.latency, cycles_per_row=30.0, cycles_per_row_tap=6.0,
                              depthwise_channel_tile=16)
    wide = dataclasses.replace(pixel, latency=lat)
    per_mac, threads = lat.cycles_per_mac, lat.threads
    conv = OpCost(0, "CONV_2D", "conv", "int8", 100 * 9 * 8 * 32, 100 * 32, 0, 0, 100, 9)
    assert op_cycles(wide, conv) == pytest.approx(
        lat.cycles_per_op + (conv.macs * per_mac["conv"] + 100 * (30 + 9 * 6)) / threads)
    dense = OpCost(0, "FULLY_CONNECTED", "fully_connected", "int8", 640, 10, 0, 0, 1, 1)
    assert op_cycles(wide, dense) == pytest.approx(
        lat.cycles_per_op + (640 * per_mac["fully_connected"] + 36) / threads)
    # 8 and 16 channels cost one vector of 16; 17 cost two.
    for channels, vectors in ((8, 1), (16, 1), (17, 2)):
        depthwise = OpCost(0, "DEPTHWISE_CONV_2D", "depthwise", "int8", 100 * 9 * channels,
                           100 * channels, 0, 0, 100, 9)
        assert op_cycles(wide, depthwise) == pytest.approx(
            lat.cycles_per_op + 100 * 9 * 16 * vectors * per_mac["depthwise"] / threads)
    # Without the terms (every built-in target but the host), the MACs alone count.
    assert (pixel.latency.cycles_per_row, pixel.latency.depthwise_channel_tile) == (0, 1)
    assert op_cycles(pixel, depthwise) == pytest.approx(
        lat.cycles_per_op + depthwise.macs * per_mac["depthwise"] / threads)


def test_bigger_cores_are_faster_on_vww(mlperf_ops):
    ops = mlperf_ops["vww_96_int8.tflite"]
    ms = {t.name: estimate_latency(t, ops).total_ms for t in targets.list_targets()}
    assert ms["pixel-4"] < ms["raspberry-pi-4"] < ms["esp32-s3-devkitc-1"] < ms["nucleo-l4r5zi"]
    assert ms["nucleo-l4r5zi"] < ms["nano-33-ble-sense"]


def test_estimating_does_not_import_tensorflow():
    code = (
        "import sys; from edgedistill import targets;"
        "from edgedistill.profile.analysis import analyze;"
        "from edgedistill.profile.latency import estimate_latency;"
        "from edgedistill.tflite_file import read_tflite;"
        f"ops = analyze(read_tflite({str(mlperf_model('ad01_int8.tflite'))!r}));"
        "print(estimate_latency(targets.get('nucleo-l4r5zi'), ops).total_ms);"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout) > 0
