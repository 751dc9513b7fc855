"""Shared fixtures: the MLPerf Tiny reference models from ../shared."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MLPERF_DIR = Path(
    os.environ.get("EDGEDISTILL_MLPERF_DIR", REPO_ROOT.parent / "shared" / "models" / "mlperf-tiny")
)
MLPERF_INT8 = (
    "kws_ref_model.tflite",
    "vww_96_int8.tflite",
    "pretrainedResnet_quant.tflite",
    "ad01_int8.tflite",
)
MLPERF_FLOAT = (
    "kws_ref_model_float32.tflite",
    "vww_96_float.tflite",
    "pretrainedResnet.tflite",
    "ad01_fp32.tflite",
)
# Published median latency (ms), MLPerf Tiny v0.5 reference submission:
# TFLM + CMSIS-NN on an STM32 NUCLEO-L4R5ZI at 120 MHz (shared/models/mlperf-tiny/README.md).
MLPERF_PUBLISHED_LATENCY_MS = {
    "kws_ref_model.tflite": 181.9,
    "vww_96_int8.tflite": 600.6,
    "pretrainedResnet_quant.tflite": 704.2,
    "ad01_int8.tflite": 10.05,
}


def mlperf_model(name: str) -> Path:
    """Path of one MLPerf Tiny reference model; skips the test when it is absent."""
    path = MLPERF_DIR / name
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {path} is absent (set EDGEDISTILL_MLPERF_DIR)")
    return path


def strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, as every JSON parser but Python's does."""
    def refuse(constant):
        raise ValueError(f"{constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def bundle_files(path) -> list[str]:
    """Every file under a bundle directory, as sorted POSIX paths relative to it."""
    root = Path(path)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def one_op_model(builtin: int | None = None, custom_code: str | None = None, *,
                 dtype: int | None = None, shape=(1, 4), scale: float | None = None) -> bytes:
    """A .tflite of one operator x -> y, built with the schema: RELU on float32 [1, 4] by
    default; quantized (``scale``, zero point -3) when ``scale`` is given."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    builtin = schema.BuiltinOperator.RELU if builtin is None else builtin
    tensors = []
    for name in ("x", "y"):
        t = schema.TensorT()
        t.shape, t.buffer, t.name = list(shape), 0, name
        t.type = schema.TensorType.FLOAT32 if dtype is None else dtype
        if scale is not None:
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [scale], [-3]
        tensors.append(t)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = tensors, [op]
    subgraph.inputs, subgraph.outputs = [0], [1]
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    code.customCode = custom_code
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [subgraph]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
