"""Read a .tflite file into plain frozen dataclasses, without TensorFlow.

The flatbuffer is parsed with ``ai_edge_litert.schema_py_generated`` (the
official TFLite schema; it imports only ``flatbuffers``) through its lazy
accessors, so even large models are read without building the object tree.
Only subgraph 0 (the one interpreters run) is described in detail.

The flatbuffers runtime does not bounds-check slices, so a truncated file would
silently yield short strings and buffers; every vector this module relies on is
checked against the data length and any failure becomes an
:class:`~edgedistill.errors.EdgeDistillError` naming the file. Shapes are
checked before any arithmetic on them: no negative dimension, rank at most
``MAX_RANK``, at most ``MAX_ELEMENTS`` elements, and a constant's buffer
exactly as large as its shape and type say; so every figure derived from a
model that reads is one the model can mean. LiteRT's own verifier is not
used as a first gate: ai_edge_litert reaches it only by building an
interpreter, native code run in this process on the hostile bytes.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edgedistill.errors import EdgeDistillError

_IDENTIFIER = b"TFL3"
_UOFFSET = 4
# Bounds that keep every analysis finite and fast; real models are far inside them
# (TFLite indexes elements with int32, and kernels support ranks up to 6).
MAX_RANK = 8
MAX_ELEMENTS = 2**31 - 1

# Bits per element for each schema TensorType name; 0 = variable-sized (strings, resources).
_TYPE_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "STRING": 0,
    "BOOL": 8, "INT16": 16, "COMPLEX64": 64, "INT8": 8, "FLOAT64": 64, "COMPLEX128": 128,
    "UINT64": 64, "RESOURCE": 0, "VARIANT": 0, "UINT32": 32, "UINT16": 16, "INT4": 4,
    "BFLOAT16": 16, "INT2": 2, "UINT4": 4, "FLOAT8_E4M3FN": 8, "FLOAT8_E5M2": 8,
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = scale * (q - zero_point).

    Per-tensor when ``len(scales) == 1``, otherwise per channel along ``axis``.

    Example:
        >>> Quantization((0.5,), (-128,), 0).to_dict()["scales"]
        [0.5]
    """

    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"scales": list(self.scales), "zero_points": list(self.zero_points),
                "axis": self.axis}


def quantize(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """Real values to the integer type of a per-tensor quantized tensor, rounded and clipped.

    Example:
        >>> quantize(np.array([0.0, 1.0, 100.0]), np.int8, 0.5, -1).tolist()
        [-1, 1, 127]
    """
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


@dataclass(frozen=True)
class Tensor:
    """One tensor of subgraph 0.

    Example:
        >>> Tensor(0, "x", (1, 4), "int8", None, 0).nbytes
        4
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None
    buffer_bytes: int

    @property
    def is_constant(self) -> bool:
        """True when the tensor's data is stored in the file (weights, biases)."""
        return self.buffer_bytes > 0

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data: elements times element size (0 for strings)."""
        bits = _TYPE_BITS.get(self.dtype.upper(), 0)
        return math.ceil(math.prod(self.shape) * bits / 8)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["quantization"] = self.quantization.to_dict() if self.quantization else None
        d["nbytes"] = self.nbytes
        return d


@dataclass(frozen=True)
class Operator:
    """One operator of subgraph 0, in execution order.

    Example:
        >>> Operator(0, "CONV_2D", (0, 1, 2), (3,)).to_dict()["opcode"]
        'CONV_2D'
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"index": self.index, "opcode": self.opcode, "inputs": list(self.inputs),
                "outputs": list(self.outputs)}


@dataclass(frozen=True)
class TFLiteModel:
    """What a .tflite file holds: file facts plus subgraph 0's tensors and operators.

    Example:
        >>> m = read_tflite("model.tflite")  # doctest: +SKIP
        >>> m.opcodes  # doctest: +SKIP
        ('CONV_2D', 'FULLY_CONNECTED', 'SOFTMAX')
    """

    path: str
    size_bytes: int
    sha256: str
    version: int
    description: str
    subgraph_count: int
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    @property
    def opcodes(self) -> tuple[str, ...]:
        """Sorted unique opcode names used by subgraph 0."""
        return tuple(sorted({op.opcode for op in self.operators}))

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "path": self.path, "size_bytes": self.size_bytes, "sha256": self.sha256,
            "version": self.version, "description": self.description,
            "subgraph_count": self.subgraph_count,
            "tensors": [t.to_dict() for t in self.tensors],
            "operators": [op.to_dict() for op in self.operators],
            "inputs": list(self.inputs), "outputs": list(self.outputs),
            "opcodes": list(self.opcodes),
        }


@functools.cache
def _enum_names(enum_class: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items()
            if not k.startswith("_") and isinstance(v, int)}


def read_tflite(path) -> TFLiteModel:
    """Read and validate a .tflite file.

    Args:
        path: Path of the .tflite file.

    Returns:
        The parsed model (subgraph 0 in detail).

    Raises:
        EdgeDistillError: The file is missing, unreadable, not a TFLite
            flatbuffer, truncated or has no subgraph.

    Example:
        >>> model = read_tflite("kws_ref_model.tflite")  # doctest: +SKIP
        >>> model.operators[0].opcode  # doctest: +SKIP
        'CONV_2D'
    """
    p = Path(path)
    if p.is_dir():
        raise EdgeDistillError(f"{p}: is a directory; pass the path of a .tflite model file")
    if not p.is_file():
        raise EdgeDistillError(f"{p}: no such file; pass the path of an existing .tflite model")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise EdgeDistillError(f"{p}: cannot read ({exc.strerror}); check permissions") from exc
    return parse_tflite(data, str(p))


def parse_tflite(data: bytes, path: str = "<bytes>") -> TFLiteModel:
    """Parse the bytes of a .tflite file.

    Args:
        data: The whole file content.
        path: Name used in error messages and stored in the result.

    Returns:
        The parsed model.

    Raises:
        EdgeDistillError: Not a TFLite flatbuffer, truncated or no subgraph.

    Example:
        >>> from pathlib import Path
        >>> model = parse_tflite(Path("m.tflite").read_bytes(), "m.tflite")  # doctest: +SKIP
        >>> len(model.tensors)  # doctest: +SKIP
        35
    """
    data = bytes(data)
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise EdgeDistillError(
            f"{path}: not a TFLite model (file is {len(data)} bytes; no 'TFL3' flatbuffer "
            "identifier); pass a .tflite file written by the TFLite converter")
    try:
        return _parse(data, path)
    except EdgeDistillError:
        raise
    # TypeError: the flatbuffers runtime's own check of an offset that left the uint32 range.
    except (struct.error, IndexError, ValueError, OverflowError, UnicodeDecodeError,
            TypeError) as exc:
        raise EdgeDistillError(
            f"{path}: corrupt or truncated TFLite file ({type(exc).__name__}: {exc}); "
            "re-export the model") from exc


class _Reader:
    """Bounds-checked access to the parts of the flatbuffer that are slices."""

    def __init__(self, data: bytes, path: str):
        self.data = data
        self.path = path

    def fail(self, what: str) -> EdgeDistillError:
        return EdgeDistillError(
            f"{self.path}: truncated or corrupt TFLite file ({what} lies outside the "
            f"{len(self.data)}-byte file); re-export or re-copy the model")

    def vector_bytes(self, table, vt_offset: int, elem_size: int, what: str) -> int:
        """Byte length of a vector field, after checking it lies within the data."""
        tab = table._tab
        o = tab.Offset(vt_offset)
        if o == 0:
            return 0
        start = tab.Vector(o)
        nbytes = tab.VectorLen(o) * elem_size
        if start < 0 or start + nbytes > len(self.data):
            raise self.fail(what)
        return nbytes

    def string(self, table, vt_offset: int, what: str) -> str:
        self.vector_bytes(table, vt_offset, 1, what)
        tab = table._tab
        o = tab.Offset(vt_offset)
        return tab.String(o + tab.Pos).decode("utf-8", "replace") if o else ""

    def int_vector(self, table, vt_offset: int, what: str) -> tuple[int, ...]:
        tab = table._tab
        if not self.vector_bytes(table, vt_offset, 4, what):
            return ()
        o = tab.Offset(vt_offset)
        start, n = tab.Vector(o), tab.VectorLen(o)
        return struct.unpack_from(f"<{n}i", self.data, start)


# vtable offsets of the schema fields read as slices (see schema_py_generated).
_MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_DESCRIPTION, _MODEL_BUFFERS = 6, 8, 10, 12
_SUBGRAPH_TENSORS, _SUBGRAPH_OPERATORS = 4, 10
_BUFFER_DATA = 4
_TENSOR_SHAPE, _TENSOR_NAME = 4, 10
_OPCODE_CUSTOM = 6
_OPERATOR_INPUTS, _OPERATOR_OUTPUTS = 6, 8
_SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 6, 8
_QUANT_SCALE, _QUANT_ZERO_POINT = 8, 10


def _parse(data: bytes, path: str) -> TFLiteModel:
    rd = _Reader(data, path)
    model = schema.Model.GetRootAs(data, 0)
    # Vectors of tables are checked whole before they are walked, so a forged
    # count fails at once instead of after millions of reads.
    for field, what in ((_MODEL_OPCODES, "operator codes"), (_MODEL_SUBGRAPHS, "subgraphs"),
                        (_MODEL_BUFFERS, "buffers")):
        rd.vector_bytes(model, field, 4, what)
    if model.SubgraphsLength() == 0:
        raise EdgeDistillError(f"{path}: the model has no subgraph; re-export it with the "
                               "TFLite converter")
    opcodes = _opcode_names(model, rd)
    buffer_bytes = _buffer_sizes(model, rd)
    sg = model.Subgraphs(0)
    rd.vector_bytes(sg, _SUBGRAPH_TENSORS, 4, "subgraph 0 tensors")
    rd.vector_bytes(sg, _SUBGRAPH_OPERATORS, 4, "subgraph 0 operators")
    tensors = tuple(_tensor(sg.Tensors(i), i, buffer_bytes, rd)
                    for i in range(sg.TensorsLength()))
    n = len(tensors)

    def check(indices: tuple[int, ...], what: str, optional: bool) -> tuple[int, ...]:
        for t in indices:
            if not (0 <= t < n or (optional and t == -1)):
                raise EdgeDistillError(f"{path}: {what} refers to tensor {t} but subgraph 0 "
                                       f"has {n} tensors; the file is corrupt, re-export it")
        return indices

    operators = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = op.OpcodeIndex()
        if code >= len(opcodes):
            raise EdgeDistillError(f"{path}: operator {i} uses opcode index {code} but the model "
                                   f"defines {len(opcodes)}; the file is corrupt, re-export it")
        what = f"operator {i} ({opcodes[code]})"
        operators.append(Operator(
            index=i, opcode=opcodes[code],
            inputs=check(rd.int_vector(op, _OPERATOR_INPUTS, what + " inputs"), what, True),
            outputs=check(rd.int_vector(op, _OPERATOR_OUTPUTS, what + " outputs"), what, False),
        ))
    return TFLiteModel(
        path=path, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        version=model.Version(),
        description=rd.string(model, _MODEL_DESCRIPTION, "model description"),
        subgraph_count=model.SubgraphsLength(),
        tensors=tensors, operators=tuple(operators),
        inputs=check(rd.int_vector(sg, _SUBGRAPH_INPUTS, "subgraph inputs"),
                     "subgraph 0 inputs", False),
        outputs=check(rd.int_vector(sg, _SUBGRAPH_OUTPUTS, "subgraph outputs"),
                      "subgraph 0 outputs", False),
    )


def _opcode_names(model, rd: _Reader) -> tuple[str, ...]:
    names = _enum_names(schema.BuiltinOperator)
    out = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        # Codes above 127 live only in builtin_code; older files only set the deprecated one.
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        # The converter writes opcode tables last, so reading every field of them
        # (version included) catches a file cut short by only a few bytes.
        oc.Version()
        if code == schema.BuiltinOperator.CUSTOM:
            out.append("CUSTOM:" + rd.string(oc, _OPCODE_CUSTOM, f"custom code of opcode {i}"))
        else:
            out.append(names.get(code, f"BUILTIN_{code}"))
    return tuple(out)


def _buffer_sizes(model, rd: _Reader) -> tuple[int, ...]:
    sizes = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        nbytes = rd.vector_bytes(buf, _BUFFER_DATA, 1, f"buffer {i}")
        # Models over 2 GB keep data after the flatbuffer; offset is only valid when > 1.
        if nbytes == 0 and buf.Offset() > 1:
            nbytes = buf.Size()
            if buf.Offset() + nbytes > len(rd.data):
                raise rd.fail(f"buffer {i} (offset {buf.Offset()}, size {nbytes})")
        sizes.append(nbytes)
    return tuple(sizes)


def _tensor(t, index: int, buffer_bytes: tuple[int, ...], rd: _Reader) -> Tensor:
    what = f"tensor {index}"
    type_name = _enum_names(schema.TensorType).get(t.Type())
    if type_name is None:
        raise EdgeDistillError(f"{rd.path}: {what} has unknown type code {t.Type()}; "
                               "the file is corrupt or newer than this reader")
    buf = t.Buffer()
    if buf >= len(buffer_bytes) and buf != 0:
        raise EdgeDistillError(f"{rd.path}: {what} refers to buffer {buf} but the model has "
                               f"{len(buffer_bytes)}; the file is corrupt, re-export it")
    if not t._tab.Offset(_TENSOR_SHAPE) and t.ShapeSignatureLength():
        raise EdgeDistillError(f"{rd.path}: {what} has a shape signature but no shape; "
                               "the file is corrupt, re-export it")
    shape = _shape(rd.int_vector(t, _TENSOR_SHAPE, what + " shape"), rd, what)
    tensor = Tensor(
        index=index,
        name=rd.string(t, _TENSOR_NAME, what + " name"),
        shape=shape,
        dtype=type_name.lower(),
        quantization=_quantization(t.Quantization(), rd, what),
        buffer_bytes=buffer_bytes[buf] if buf < len(buffer_bytes) else 0,
    )
    q = tensor.quantization
    if q is not None and len(q.scales) > 1 and not (
            0 <= q.axis < len(shape) and shape[q.axis] == len(q.scales)):
        raise EdgeDistillError(
            f"{rd.path}: {what} has {len(q.scales)} per-channel scales along axis {q.axis} of "
            f"shape {list(shape)}; the file is corrupt, re-export it")
    bits = _TYPE_BITS.get(type_name, 0)
    if tensor.buffer_bytes and bits and t.Sparsity() is None:
        # Sub-byte types may be stored packed or one per byte.
        fits = (tensor.nbytes <= tensor.buffer_bytes <= math.prod(shape) if bits < 8
                else tensor.nbytes == tensor.buffer_bytes)
        if not fits:
            raise EdgeDistillError(
                f"{rd.path}: {what} ({tensor.name[:60]!r}) has shape "
                f"{list(shape)} of {type_name.lower()}, {tensor.nbytes} bytes, but its buffer "
                f"holds {tensor.buffer_bytes}; the file is corrupt, re-export it")
    return tensor


def _shape(dims: tuple[int, ...], rd: _Reader, what: str) -> tuple[int, ...]:
    """``dims``, once each is known to be a size and their product is bounded."""
    if len(dims) > MAX_RANK:
        raise EdgeDistillError(f"{rd.path}: {what} has rank {len(dims)} (at most {MAX_RANK} "
                               "supported); the file is corrupt, re-export it")
    elements = 1
    for d in dims:
        if d < 0:
            raise EdgeDistillError(f"{rd.path}: {what} has a negative dimension {d} in its "
                                   f"shape {list(dims)}; the file is corrupt, re-export it")
        elements *= d
        if elements > MAX_ELEMENTS:
            raise EdgeDistillError(
                f"{rd.path}: {what} has shape {list(dims)}, more than {MAX_ELEMENTS:,} elements; "
                "the file is corrupt, re-export it")
    return dims


def _quantization(q, rd: _Reader, what: str) -> Quantization | None:
    if q is None or q.ScaleIsNone() or q.ScaleLength() == 0:
        return None
    rd.vector_bytes(q, _QUANT_SCALE, 4, what + " scales")
    rd.vector_bytes(q, _QUANT_ZERO_POINT, 8, what + " zero points")
    zero_points = q.ZeroPointAsNumpy() if not q.ZeroPointIsNone() else ()
    scales = tuple(float(s) for s in q.ScaleAsNumpy())
    if not all(math.isfinite(s) and s >= 0 for s in scales):
        bad = next(s for s in scales if not (math.isfinite(s) and s >= 0))
        raise EdgeDistillError(f"{rd.path}: {what} has quantization scale {bad}, not a finite "
                               "number >= 0; the file is corrupt, re-export it")
    if len(zero_points) not in (0, len(scales)):
        raise EdgeDistillError(f"{rd.path}: {what} has {len(scales)} quantization scales but "
                               f"{len(zero_points)} zero points; the file is corrupt, re-export it")
    return Quantization(
        scales=scales,
        zero_points=tuple(int(z) for z in zero_points),
        axis=q.QuantizedDimension(),
    )
