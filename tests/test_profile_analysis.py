"""Per-op costs: MACs cross-checked against the LiteRT interpreter and hand counts."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from conftest import MLPERF_FLOAT, MLPERF_INT8, mlperf_model

from edgedistill.profile.analysis import KINDS, analyze
from edgedistill.tflite_file import parse_tflite, read_tflite


def _litert_macs(path) -> dict[int, int]:
    """MACs per op from the LiteRT interpreter's own view of the graph (not our reader)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    shapes = {d["index"]: tuple(int(x) for x in d["shape"])
              for d in interp.get_tensor_details()}
    macs = {}
    for op in interp._get_ops_details():
        out = math.prod(shapes[int(op["outputs"][0])])
        name = op["op_name"]
        if name == "CONV_2D":  # filter [out_c, kh, kw, in_c]
            macs[op["index"]] = out * math.prod(shapes[int(op["inputs"][1])][1:])
        elif name == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out_c]
            macs[op["index"]] = out * math.prod(shapes[int(op["inputs"][1])][1:3])
        elif name == "FULLY_CONNECTED":  # weights [units, in]
            macs[op["index"]] = out * shapes[int(op["inputs"][1])][1]
        else:
            macs[op["index"]] = 0
    return macs


@pytest.mark.parametrize("name", MLPERF_INT8 + MLPERF_FLOAT)
def test_macs_match_litert_graph(name):
    path = mlperf_model(name)
    ops = analyze(read_tflite(path))
    assert {op.index: op.macs for op in ops} == _litert_macs(path)


def test_int8_and_float_twins_have_the_same_macs():
    for q, f in zip(MLPERF_INT8, MLPERF_FLOAT, strict=True):
        q_ops, f_ops = analyze(read_tflite(mlperf_model(q))), analyze(read_tflite(mlperf_model(f)))
        assert sum(op.macs for op in q_ops) == sum(op.macs for op in f_ops)


def test_mlperf_totals():
    # Totals computed by hand from the published architectures (MLPerf Tiny
    # training scripts), e.g. DS-CNN KWS: a 10x4 stride-2 conv to 25x5x64
    # (25*5*64*40 = 320000), four 3x3 depthwise (4 * 25*5*64*9) and four 1x1
    # pointwise convs (4 * 25*5*64*64), then a 64->12 dense layer.
    kws = analyze(read_tflite(mlperf_model("kws_ref_model.tflite")))
    assert sum(op.macs for op in kws) == 320000 + 4 * 72000 + 4 * 512000 + 768 == 2656768
    # FC autoencoder: 640-128-128-128-128-8-128-128-128-128-640.
    ad = analyze(read_tflite(mlperf_model("ad01_int8.tflite")))
    assert sum(op.macs for op in ad) == 2 * 640 * 128 + 6 * 128 * 128 + 2 * 128 * 8


def test_op_fields_on_kws():
    model = read_tflite(mlperf_model("kws_ref_model.tflite"))
    ops = analyze(model)
    assert [op.kind for op in ops] == (
        ["conv"] + ["depthwise", "conv"] * 4 + ["pool", "reshape", "fully_connected", "other"])
    assert all(op.dtype == "int8" and op.kind in KINDS for op in ops)
    first = ops[0]
    # 64 int8 filters of 10x4x1 plus 64 int32 biases.
    assert first.param_bytes == 64 * 40 + 64 * 4
    # int8 input 49x10x1 and output 25x5x64.
    assert first.activation_bytes == 490 + 8000
    assert first.output_elements == 8000
    assert (first.output_rows, first.kernel_taps) == (25 * 5, 10 * 4)
    assert [(op.output_rows, op.kernel_taps) for op in ops[1:3]] == [(125, 9), (125, 1)]
    pool = ops[9]
    assert pool.macs == 0 and pool.output_elements == 64
    assert (ops[11].output_rows, ops[11].kernel_taps) == (1, 1)  # a 64 -> 12 dense layer
    assert sum(op.param_bytes for op in ops) <= model.size_bytes
    assert json.loads(json.dumps(first.to_dict()))["macs"] == 320000


def test_hand_counted_keras_model():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")

    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3)(inp)                                   # -> 6x6x4
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)               # -> 6x6x4
    x = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")(x)  # -> 12x12x2
    x = keras.layers.Flatten()(x)                                        # -> 288
    out = keras.layers.Dense(5, bias_initializer="ones")(x)  # a zero bias would be dropped
    data = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out)).convert()
    ops = analyze(parse_tflite(data, "tiny.tflite"))
    by_op = {op.opcode: op for op in ops}
    assert by_op["CONV_2D"].macs == 6 * 6 * 4 * (3 * 3 * 3)
    assert by_op["DEPTHWISE_CONV_2D"].macs == 6 * 6 * 4 * (3 * 3)
    # Each of the 6x6x4 inputs is scattered into a 3x3 window of 2 channels.
    assert by_op["TRANSPOSE_CONV"].macs == 6 * 6 * 4 * (3 * 3 * 2)
    assert by_op["FULLY_CONNECTED"].macs == 288 * 5
    assert {name: (op.output_rows, op.kernel_taps) for name, op in by_op.items()
            if name != "RESHAPE"} == {"CONV_2D": (36, 9), "DEPTHWISE_CONV_2D": (36, 9),
                                      "TRANSPOSE_CONV": (144, 9), "FULLY_CONNECTED": (1, 1)}
    assert by_op["FULLY_CONNECTED"].param_bytes == (288 * 5 + 5) * 4
    assert all(op.dtype == "float32" for op in ops)

    @tf.function(input_signature=[tf.TensorSpec([2, 3, 4]), tf.TensorSpec([2, 5, 4])])
    def matmul(a, b):
        return tf.matmul(a, b, transpose_b=True)

    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [matmul.get_concrete_function()], matmul)
    (op,) = analyze(parse_tflite(conv.convert(), "matmul.tflite"))
    assert (op.opcode, op.kind, op.macs) == ("BATCH_MATMUL", "fully_connected", 2 * 3 * 5 * 4)


def test_analysis_does_not_import_tensorflow():
    path = mlperf_model("pretrainedResnet_quant.tflite")
    code = (
        "import sys\n"
        "import edgedistill.tflite_file, edgedistill.profile.analysis, edgedistill.profile.memory\n"
        "from edgedistill.profile.analysis import analyze\n"
        "from edgedistill.profile.memory import plan_memory\n"
        f"m = edgedistill.tflite_file.read_tflite({str(path)!r})\n"
        "assert sum(op.macs for op in analyze(m)) > 0 and plan_memory(m).peak_bytes > 0\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
