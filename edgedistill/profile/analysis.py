"""Per-operator cost of a TFLite model: multiply-accumulates, data written, bytes touched.

MACs come from tensor shapes alone (no options needed), per op kind:

* ``CONV_2D``: output elements x kh x kw x filter input channels (the filter's
  last dimension is already ``in_c / groups`` for grouped convolutions).
* ``DEPTHWISE_CONV_2D``: output elements x kh x kw.
* ``TRANSPOSE_CONV``: input elements x kh x kw x output channels (every input
  value is scattered into a kh x kw x out_c window).
* ``CONV_3D``: output elements x kd x kh x kw x filter input channels.
* ``FULLY_CONNECTED``: output elements x input units (weights are ``[units, in]``).
* ``BATCH_MATMUL``: output elements x the contracted dimension.

Every other op has 0 MACs and is costed by the elements it writes. Ops whose
cost TFLite Micro kernels spend mostly on multiply-accumulates (recurrent
cells, for instance) are not modelled and count as ``"other"``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgedistill.tflite_file import Operator, Tensor, TFLiteModel

_KIND = {
    "CONV_2D": "conv", "TRANSPOSE_CONV": "conv", "CONV_3D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "fully_connected", "BATCH_MATMUL": "fully_connected",
    **dict.fromkeys(
        ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D", "MEAN", "SUM", "REDUCE_MAX",
         "REDUCE_MIN", "REDUCE_PROD"), "pool"),
    **dict.fromkeys(
        ("ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "RELU",
         "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "LOGISTIC", "TANH",
         "HARD_SWISH", "ELU", "GELU", "EXP", "LOG", "SQRT", "RSQRT", "SQUARE", "ABS", "NEG",
         "QUANTIZE", "DEQUANTIZE", "CAST", "FLOOR", "CEIL", "ROUND", "ADD_N", "POW"),
        "elementwise"),
    **dict.fromkeys(("RESHAPE", "SQUEEZE", "EXPAND_DIMS"), "reshape"),
}
KINDS = ("conv", "depthwise", "fully_connected", "pool", "elementwise", "reshape", "other")


@dataclass(frozen=True)
class OpCost:
    """What one operator costs, from its tensor shapes.

    Example:
        >>> OpCost(0, "CONV_2D", "conv", "int8", 1000, 10, 64, 30).to_dict()["macs"]
        1000
    """

    index: int
    opcode: str
    kind: str
    dtype: str
    macs: int
    output_elements: int
    param_bytes: int
    activation_bytes: int
    #: Output positions: output elements over output channels (a convolution's output
    #: pixels, the rows of the matrix product a fully-connected layer or a kernel library's
    #: convolution computes).
    output_rows: int = 1
    #: Kernel positions each output reads: kh x kw for 2-D convolutions (kd x kh x kw in
    #: 3-D), 1 for every other op.
    kernel_taps: int = 1

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def analyze(model: TFLiteModel) -> tuple[OpCost, ...]:
    """Cost every operator of subgraph 0, in execution order.

    Args:
        model: A model from :func:`edgedistill.tflite_file.read_tflite`.

    Returns:
        One :class:`OpCost` per operator.

    Example:
        >>> from edgedistill.tflite_file import read_tflite
        >>> ops = analyze(read_tflite("kws_ref_model.tflite"))  # doctest: +SKIP
        >>> sum(op.macs for op in ops)  # doctest: +SKIP
        2656768
    """
    return tuple(_cost(op, model.tensors) for op in model.operators)


def _cost(op: Operator, tensors: tuple[Tensor, ...]) -> OpCost:
    inputs = [tensors[i] for i in op.inputs if i >= 0]
    outputs = [tensors[i] for i in op.outputs]
    variable = [t for t in inputs if not t.is_constant]
    constants = {t.index: t.buffer_bytes for t in inputs if t.is_constant}
    dtype_source = variable or outputs or inputs
    return OpCost(
        index=op.index,
        opcode=op.opcode,
        kind=_KIND.get(op.opcode, "other"),
        dtype=dtype_source[0].dtype if dtype_source else "unknown",
        macs=_macs(op.opcode, inputs, outputs),
        output_elements=sum(math.prod(t.shape) for t in outputs),
        param_bytes=sum(constants.values()),
        activation_bytes=sum(t.nbytes for t in variable) + sum(t.nbytes for t in outputs),
        output_rows=math.prod(outputs[0].shape[:-1]) if outputs and outputs[0].shape else 1,
        kernel_taps=_taps(op.opcode, inputs),
    )


def _taps(opcode: str, inputs: list[Tensor]) -> int:
    weights = inputs[1].shape if len(inputs) >= 2 else ()
    if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and len(weights) == 4:
        return weights[1] * weights[2]
    if opcode == "CONV_3D" and len(weights) == 5:
        return weights[0] * weights[1] * weights[2]
    return 1


def _macs(opcode: str, inputs: list[Tensor], outputs: list[Tensor]) -> int:
    if not outputs:
        return 0
    out = outputs[0].shape
    out_elems = math.prod(out)
    if opcode == "CONV_2D" and len(inputs) >= 2 and len(inputs[1].shape) == 4:
        _, kh, kw, in_c = inputs[1].shape
        return out_elems * kh * kw * in_c
    if opcode == "DEPTHWISE_CONV_2D" and len(inputs) >= 2 and len(inputs[1].shape) == 4:
        _, kh, kw, _ = inputs[1].shape
        return out_elems * kh * kw
    if opcode == "CONV_3D" and len(inputs) >= 2 and len(inputs[1].shape) == 5:
        kd, kh, kw, in_c, _ = inputs[1].shape
        return out_elems * kd * kh * kw * in_c
    if opcode == "TRANSPOSE_CONV" and len(inputs) >= 3 and len(inputs[1].shape) == 4:
        # Inputs are (output_shape, weights [out_c, kh, kw, in_c], data).
        out_c, kh, kw, _ = inputs[1].shape
        return math.prod(inputs[2].shape) * kh * kw * out_c
    if opcode == "FULLY_CONNECTED" and len(inputs) >= 2 and inputs[1].shape:
        return out_elems * inputs[1].shape[-1]
    if opcode == "BATCH_MATMUL" and len(inputs) >= 2 and len(inputs[0].shape) >= 2 and out:
        # A's last two dims are {M, K} in either order (adj_x); removing M leaves K.
        rows = out[-2] if len(out) >= 2 else 1
        a_dims = list(inputs[0].shape[-2:])
        if rows in a_dims:
            a_dims.remove(rows)
            return out_elems * a_dims[0]
    return 0
