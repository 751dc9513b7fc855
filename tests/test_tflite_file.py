"""The .tflite reader: real MLPerf Tiny models, cross-checked with the LiteRT interpreter."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import MLPERF_DIR, MLPERF_FLOAT, MLPERF_INT8, mlperf_model

from edgedistill.errors import EdgeDistillError
from edgedistill.tflite_file import parse_tflite, read_tflite

ALL_MODELS = MLPERF_INT8 + MLPERF_FLOAT


def _pack(model_t) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_reader_matches_litert_interpreter(name):
    from ai_edge_litert.interpreter import Interpreter

    path = mlperf_model(name)
    model = read_tflite(path)
    interp = Interpreter(model_path=str(path))

    assert model.subgraph_count == 1
    assert model.size_bytes == path.stat().st_size
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.inputs == tuple(d["index"] for d in interp.get_input_details())
    assert model.outputs == tuple(d["index"] for d in interp.get_output_details())

    details = sorted(interp.get_tensor_details(), key=lambda d: d["index"])
    assert len(model.tensors) == len(details)
    for tensor, d in zip(model.tensors, details, strict=True):
        assert tensor.index == d["index"]
        assert tensor.name == d["name"]
        assert tensor.shape == tuple(int(x) for x in d["shape"])
        assert tensor.dtype == np.dtype(d["dtype"]).name
        q = d["quantization_parameters"]
        if tensor.quantization is None:
            assert len(q["scales"]) == 0
        else:
            np.testing.assert_allclose(tensor.quantization.scales, q["scales"], rtol=1e-7)
            assert tensor.quantization.zero_points == tuple(int(z) for z in q["zero_points"])
            assert tensor.quantization.axis == q["quantized_dimension"]

    ops = interp._get_ops_details()
    assert [op.opcode for op in model.operators] == [o["op_name"] for o in ops]
    for op, o in zip(model.operators, ops, strict=True):
        assert op.inputs == tuple(int(i) for i in o["inputs"])
        assert op.outputs == tuple(int(i) for i in o["outputs"])


def test_sha256_matches_published_sums():
    mlperf_model(ALL_MODELS[0])  # skips when the shared models are absent
    sums = dict(reversed(line.split()) for line in (MLPERF_DIR / "SHA256SUMS").read_text()
                .splitlines() if line.strip())
    for name in ALL_MODELS:
        assert read_tflite(mlperf_model(name)).sha256 == sums[name]


def test_constants_and_to_dict():
    model = read_tflite(mlperf_model("kws_ref_model.tflite"))
    # The first conv's int8 weights are 64 filters of 10x4x1.
    conv = model.operators[0]
    weights = model.tensors[conv.inputs[1]]
    assert weights.shape == (64, 10, 4, 1)
    assert weights.is_constant and weights.buffer_bytes == weights.nbytes == 64 * 10 * 4
    assert not model.tensors[model.inputs[0]].is_constant
    assert model.opcodes == ("AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                             "FULLY_CONNECTED", "RESHAPE", "SOFTMAX")
    d = json.loads(json.dumps(model.to_dict()))
    assert d["operators"][0] == {"index": 0, "opcode": "CONV_2D",
                                 "inputs": list(conv.inputs), "outputs": list(conv.outputs)}
    assert d["tensors"][weights.index]["nbytes"] == 2560


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.tflite"
    with pytest.raises(EdgeDistillError, match="nope.tflite: no such file"):
        read_tflite(missing)
    with pytest.raises(EdgeDistillError, match="is a directory"):
        read_tflite(tmp_path)  # a directory is not a model file


def test_text_file_named_tflite(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_text("this is not a model\n" * 10)
    with pytest.raises(EdgeDistillError, match=r"model\.tflite: not a TFLite model"):
        read_tflite(path)
    (tmp_path / "empty.tflite").write_bytes(b"")
    with pytest.raises(EdgeDistillError, match="file is 0 bytes"):
        read_tflite(tmp_path / "empty.tflite")


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "vww_96_int8.tflite"])
def test_truncated_file(tmp_path, name):
    data = mlperf_model(name).read_bytes()
    path = tmp_path / "cut.tflite"
    for cut in (9, 64, 1000, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(EdgeDistillError, match=r"cut\.tflite: .*(truncated|not a TFLite)"):
            read_tflite(path)


def test_every_cut_of_a_small_model_is_rejected():
    data = mlperf_model("kws_ref_model.tflite").read_bytes()
    for cut in range(0, len(data), 7):
        with pytest.raises(EdgeDistillError):
            parse_tflite(data[:cut], "kws")


def test_zero_subgraphs():
    model_t = schema.ModelT()
    model_t.version = 3
    with pytest.raises(EdgeDistillError, match="empty.tflite: the model has no subgraph"):
        parse_tflite(_pack(model_t), "empty.tflite")


def _external_buffer_model(extra: int) -> bytes:
    """The KWS model with its first weight buffer moved after the flatbuffer (>2 GB layout)."""
    data = mlperf_model("kws_ref_model.tflite").read_bytes()
    model_t = schema.ModelT.InitFromPackedBuf(data, 0)
    index = model_t.subgraphs[0].tensors[model_t.subgraphs[0].operators[0].inputs[1]].buffer
    payload = bytes(model_t.buffers[index].data)
    model_t.buffers[index].data = None
    model_t.buffers[index].offset, model_t.buffers[index].size = 2, len(payload)
    offset = len(_pack(model_t))  # offset/size are fixed-width: repacking keeps the length
    model_t.buffers[index].offset = offset
    packed = _pack(model_t)
    assert len(packed) == offset
    return packed + payload[: len(payload) + extra]


def test_buffers_stored_after_the_flatbuffer():
    model = parse_tflite(_external_buffer_model(0), "big.tflite")
    weights = model.tensors[model.operators[0].inputs[1]]
    assert weights.buffer_bytes == 2560 and weights.is_constant
    with pytest.raises(EdgeDistillError, match=r"big.tflite: truncated .*buffer \d+ \(offset"):
        parse_tflite(_external_buffer_model(-1), "big.tflite")


def test_custom_op_and_bad_references():
    data = mlperf_model("ad01_int8.tflite").read_bytes()
    model_t = schema.ModelT.InitFromPackedBuf(data, 0)
    code = model_t.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "MyOp"
    model = parse_tflite(_pack(model_t), "custom.tflite")
    assert model.opcodes == ("CUSTOM:MyOp",)

    op_t = model_t.subgraphs[0].operators[0]
    op_t.inputs = [999, *op_t.inputs[1:]]
    with pytest.raises(EdgeDistillError, match="operator 0 .* refers to tensor 999"):
        parse_tflite(_pack(model_t), "bad.tflite")


def _kws_with_tensor(edit) -> bytes:
    """The KWS model with ``edit`` applied to its first conv's weight tensor."""
    model_t = schema.ModelT.InitFromPackedBuf(mlperf_model("kws_ref_model.tflite").read_bytes(), 0)
    graph = model_t.subgraphs[0]
    edit(graph.tensors[graph.operators[0].inputs[1]])
    return _pack(model_t)


@pytest.mark.parametrize(("shape", "message"), [
    ([64, -10, 4, 1], r"negative dimension -10 in its shape \[64, -10, 4, 1\]"),
    ([1] * 9, "has rank 9 .at most 8"),
    ([65536, 65536, 1, 1], "more than 2,147,483,647 elements"),
    ([64, 10, 4, 2], r"shape \[64, 10, 4, 2\] of int8, 5120 bytes, but its buffer holds 2560"),
])
def test_shapes_the_data_cannot_have_are_refused_before_any_arithmetic(shape, message):
    def set_shape(tensor):
        tensor.shape = shape
    with pytest.raises(EdgeDistillError, match="bad.tflite: tensor .*" + message):
        parse_tflite(_kws_with_tensor(set_shape), "bad.tflite")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda q: setattr(q, "scale", [float("nan")] * len(q.scale)), "quantization scale nan"),
    (lambda q: setattr(q, "zeroPoint", [0, 0]), "scales but 2 zero points"),
    (lambda q: setattr(q, "quantizedDimension", 3), "per-channel scales along axis 3"),
])
def test_quantization_the_data_cannot_have_is_refused(edit, message):
    def set_quantization(tensor):
        if len(tensor.quantization.scale) == 1:  # make it per channel first
            tensor.quantization.scale = [tensor.quantization.scale[0]] * tensor.shape[0]
            tensor.quantization.zeroPoint = [0] * tensor.shape[0]
        edit(tensor.quantization)
    with pytest.raises(EdgeDistillError, match="bad.tflite: tensor .*" + message):
        parse_tflite(_kws_with_tensor(set_quantization), "bad.tflite")


def test_a_forged_vector_length_fails_at_once():
    data = bytearray(mlperf_model("kws_ref_model.tflite").read_bytes())
    model = schema.Model.GetRootAs(bytes(data), 0)
    tab = model._tab
    start = tab.Vector(tab.Offset(12))  # the buffers vector; its length sits just before it
    data[start - 4:start] = (0x3FFFFFFF).to_bytes(4, "little")
    with pytest.raises(EdgeDistillError, match="buffers lies outside"):
        parse_tflite(bytes(data), "forged.tflite")


def test_reader_does_not_import_tensorflow():
    path = mlperf_model("vww_96_int8.tflite")
    code = (
        "import sys\n"
        "from edgedistill.tflite_file import read_tflite\n"
        f"m = read_tflite({str(path)!r})\n"
        "assert len(m.operators) == 31\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
