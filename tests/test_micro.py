"""TFLite Micro bundles for the MLPerf Tiny int8 models, built and run for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import MLPERF_INT8, bundle_files, mlperf_model, one_op_model

from edgedistill.errors import EdgeDistillError
from edgedistill.micro import (
    TFLM_RESOLVER_METHODS,
    check_run,
    measure_arena,
    try_arena,
    write_micro_bundle,
)
from edgedistill.tflite_file import read_tflite


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """One bundle per MLPerf Tiny int8 model, written once for the module."""
    root = tmp_path_factory.mktemp("bundles")
    return {name: write_micro_bundle(mlperf_model(name), root / name) for name in MLPERF_INT8}


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_bundle_runs_in_tflm_like_litert(bundles, name):
    bundle = bundles[name]
    bundle_dir = Path(bundle.out_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert bundle_files(bundle_dir) == sorted(bundle.files)
    # On 100 random inputs: KWS and VWW exact, the AD01 autoencoder within 3
    # LSB (99.4% of values within 1), ResNet-8 within 6 (one value in 1,000);
    # see edgedistill.micro.check.
    check = bundle.check
    assert check.passed and check.samples == 100
    assert max(check.max_diffs) <= {"ad01_int8.tflite": 3, "pretrainedResnet_quant.tflite": 6}.get(
        name, 0)
    assert max(check.mean_diffs) <= 0.35
    assert check.top1_agreement == (None if name == "ad01_int8.tflite" else 1.0)
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["max_diffs"] == list(check.max_diffs)
    model = read_tflite(mlperf_model(name))
    assert manifest["model"] == {"file": name, "sha256": model.sha256, "bytes": model.size_bytes,
                                 "array": f"g_{name.removesuffix('.tflite').lower()}_data"}
    assert manifest["ops"] == list(model.opcodes)
    arena = manifest["arena"]
    assert arena["recommended_bytes"] == arena["measured_bytes"] + arena["margin_bytes"]
    assert arena["recommended_bytes"] % 16 == 0 and arena["margin_bytes"] >= 1024
    # What the recording allocator saw fits in what the search measured: equal on
    # KWS, ResNet and VWW; AD01 needs 656 bytes more while allocating (the memory
    # planner's temporary data, in the head before the tensors are placed).
    assert 0 < arena["head_bytes"] and 0 < arena["tail_bytes"]
    assert arena["head_bytes"] + arena["tail_bytes"] <= arena["measured_bytes"]
    assert 0 < sum(use["used_bytes"] for use in arena["uses"]) <= arena["tail_bytes"]
    assert "Persistent buffer data" in {use["kind"] for use in arena["uses"]}
    (inp,) = manifest["inputs"]
    t = model.tensors[model.inputs[0]]
    assert inp["dtype"] == "int8" and inp["shape"] == list(t.shape)
    assert inp["quantization"] == {"scale": t.quantization.scales[0],
                                   "zero_point": t.quantization.zero_points[0]}
    settings = (bundle_dir / "model_settings.h").read_text()
    assert f"constexpr int kTensorArenaSize = {arena['recommended_bytes']};" in settings
    readme = (bundle_dir / "README.md").read_text()
    assert f"`kTensorArenaSize` = **{arena['recommended_bytes']} bytes**" in readme


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_measured_arena_is_minimal(bundles, name):
    measured = bundles[name].arena.measured_bytes
    below = try_arena(mlperf_model(name), measured - 16)
    assert not below.ok and below.reason.startswith("too small")
    assert try_arena(mlperf_model(name), measured).ok


def test_tiny_arena_crash_is_reported_not_raised():
    # tflite-micro segfaults with a 64-byte arena; the parent must survive it.
    probe = try_arena(mlperf_model("ad01_int8.tflite"), 64)
    assert not probe.ok and "too small" in probe.reason


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_op_resolver_lists_exactly_the_models_ops(bundles, name):
    header = (Path(bundles[name].out_dir) / "op_resolver.h").read_text()
    by_method = {m: op for op, m in TFLM_RESOLVER_METHODS.items()}
    added = re.findall(r"resolver\.(Add\w+)\(\)", header)
    assert len(added) == len(set(added))
    assert sorted(by_method[m] for m in added) == list(read_tflite(mlperf_model(name)).opcodes)
    assert f"constexpr int kNumModelOps = {len(added)};" in header
    assert "tflite::MicroMutableOpResolver<kNumModelOps>" in header


def test_float_model_bundle_and_given_inputs(tmp_path):
    path = mlperf_model("ad01_fp32.tflite")
    x = np.random.default_rng(1).normal(size=(7, 640)).astype(np.float32)
    bundle = write_micro_bundle(path, tmp_path / "b", inputs=x)
    assert bundle.check.passed and (bundle.check.inputs, bundle.check.samples) == ("given", 7)
    assert 0 < bundle.check.tolerances[0] < 1
    assert "kInput0Scale" not in (tmp_path / "b" / "model_settings.h").read_text()


def test_float_inputs_are_quantized_for_an_integer_model():
    model = read_tflite(mlperf_model("kws_ref_model.tflite"))
    q = model.tensors[model.inputs[0]].quantization
    x = np.random.default_rng(2).normal(size=(5, 49, 10, 1)).astype(np.float32) * 20
    given = check_run(mlperf_model("kws_ref_model.tflite"), 30000, inputs=x)
    quantized = np.clip(np.round(x / q.scales[0]) + q.zero_points[0], -128, 127).astype(np.int8)
    assert given == check_run(mlperf_model("kws_ref_model.tflite"), 30000, inputs=quantized)
    assert given.samples == 5 and given.top1_agreement == 1.0


@pytest.mark.parametrize(("inputs", "message"), [
    (np.zeros((1, 640), np.int16), r"sample_input\[0\]: int16 data .* of int8"),
    (np.zeros((1, 64), np.int8), r"sample_input\[0\]: shape \(1, 64\) does not fit"),
    ([np.zeros((1, 640), np.int8)] * 2, r"2 array\(s\) for a model with 1 input"),
    ("text", r"sample_input\[0\]: str for input"),
])
def test_wrong_inputs_are_refused(inputs, message):
    with pytest.raises(EdgeDistillError, match=message):
        check_run(mlperf_model("ad01_int8.tflite"), 8192, inputs=inputs)


def test_model_tflm_cannot_run_is_refused(tmp_path):
    # The float32 KWS reference model mixes float activations with int8
    # weights (hybrid), which TFLM rejects.
    with pytest.raises(EdgeDistillError, match="cannot run this model.*Hybrid"):
        write_micro_bundle(mlperf_model("kws_ref_model_float32.tflite"), tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_bad_inputs_write_nothing(tmp_path):
    with pytest.raises(EdgeDistillError, match="missing.tflite"):
        write_micro_bundle(tmp_path / "missing.tflite", tmp_path / "a")
    text = tmp_path / "notes.tflite"
    text.write_text("this is not a model\n")
    with pytest.raises(EdgeDistillError, match="notes.tflite"):
        write_micro_bundle(text, tmp_path / "b")
    with pytest.raises(EdgeDistillError, match="notes.tflite"):
        measure_arena(text)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(EdgeDistillError, match="not empty"):
        write_micro_bundle(mlperf_model("ad01_int8.tflite"), full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "notes.tflite"]
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_force_replaces_a_bundle(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "old.txt").write_text("old")
    bundle = write_micro_bundle(mlperf_model("ad01_int8.tflite"), out, force=True)
    assert bundle_files(out) == sorted(bundle.files)


@pytest.mark.parametrize(("builtin", "custom", "message"), [
    (schema.BuiltinOperator.UNIQUE, None, "op UNIQUE (node 0, output 'y') has no TFLM kernel"),
    (schema.BuiltinOperator.CUSTOM, "MyOp",
     "custom op 'MyOp' (node 0, output 'y') has no built-in TFLM kernel"),
])
def test_unsupported_op_is_refused(tmp_path, builtin, custom, message):
    path = tmp_path / "odd.tflite"
    path.write_bytes(one_op_model(builtin, custom))
    assert read_tflite(path).opcodes == ((f"CUSTOM:{custom}",) if custom else ("UNIQUE",))
    with pytest.raises(EdgeDistillError, match=re.escape(message)):
        write_micro_bundle(path, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_bundle_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from edgedistill.micro import write_micro_bundle\n"
        f"write_micro_bundle({str(mlperf_model('ad01_int8.tflite'))!r}, {str(tmp_path / 'b')!r})\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
