"""Estimate the activation RAM a model needs, the way TensorFlow Lite Micro plans it.

Every non-constant tensor lives from the operator that writes it (operator 0
for model inputs) to the last operator that reads it (the last operator for
model outputs). Tensors are placed largest first, each at the lowest offset
where it overlaps no already-placed tensor that is alive at the same time, with
sizes and offsets rounded up to 16 bytes. This is the algorithm of TFLM's
``GreedyMemoryPlanner`` (the default planner), so ``peak_bytes`` predicts the
"head" (non-persistent) section of a TFLM arena.

The real arena is larger: its "tail" holds interpreter structures (eval
tensors, node registrations, quantization parameters, kernel persistent
buffers) and kernels may request scratch buffers that depend on the kernel
library (CMSIS-NN, reference, ...). Neither is modelled here; use a measured
arena size when one is available.

Measured with tflite-micro 0.dev20261023182759 (reference kernels, 64-bit host)
on the MLPerf Tiny models: ``peak_bytes`` equals the arena head exactly for all
seven models TFLM can run (tests/test_profile_memory.py). The tail added 3.1
KiB (FC autoencoder) to 29.9 KiB (MobileNetV1 VWW, per-channel quantization
data of 28 conv layers): the whole arena was 1.03x (float ResNet-8) to 1.52x
(int8 DS-CNN KWS) the head, and 2.0x / 5.2x for the float / int8 autoencoder
whose activations are tiny. Struct sizes on a 32-bit MCU are smaller than on
this 64-bit host, so the host tail is an upper bound for TFLM's own part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgedistill.tflite_file import TFLiteModel

ALIGNMENT = 16  # TFLM's MicroArenaBufferAlignment()


@dataclass(frozen=True)
class TensorPlacement:
    """Where one activation tensor sits in the arena and when it is alive.

    Example:
        >>> TensorPlacement(3, "conv1", 0, 8000, 0, 1).end
        8000
    """

    tensor: int
    name: str
    offset: int
    size: int        # bytes, rounded up to the alignment
    first_op: int    # operator that writes it (0 for model inputs)
    last_op: int     # last operator that reads it (last operator for model outputs)

    @property
    def end(self) -> int:
        """First byte after the tensor."""
        return self.offset + self.size

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class MemoryPlan:
    """The activation arena layout of a model.

    Example:
        >>> plan = MemoryPlan(peak_bytes=16000, alignment=16, placements=())
        >>> plan.to_dict()["peak_bytes"]
        16000
    """

    peak_bytes: int
    alignment: int
    placements: tuple[TensorPlacement, ...]   # in tensor index order

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"peak_bytes": self.peak_bytes, "alignment": self.alignment,
                "placements": [p.to_dict() for p in self.placements]}


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def plan_memory(model: TFLiteModel, alignment: int = ALIGNMENT) -> MemoryPlan:
    """Lay out the model's activation tensors with a greedy, lifetime-aware planner.

    Args:
        model: A model from :func:`edgedistill.tflite_file.read_tflite`.
        alignment: Byte alignment of sizes and offsets (16 in TFLM).

    Returns:
        The layout; ``peak_bytes`` is the arena size the activations need.

    Example:
        >>> from edgedistill.tflite_file import read_tflite
        >>> plan_memory(read_tflite("kws_ref_model.tflite")).peak_bytes  # doctest: +SKIP
        16000
    """
    last = max(len(model.operators) - 1, 0)
    first_op: dict[int, int] = {}
    last_op: dict[int, int] = {}

    def touch(index: int, op: int) -> None:
        if index < 0 or model.tensors[index].is_constant:
            return
        first_op.setdefault(index, op)
        last_op[index] = max(last_op.get(index, op), op)

    for index in model.inputs:
        touch(index, 0)
    for op in model.operators:
        for index in op.inputs:
            touch(index, op.index)
        for index in op.outputs:
            touch(index, op.index)
    for index in model.outputs:
        touch(index, last)

    buffers = [(index, _align(model.tensors[index].nbytes, alignment))
               for index in first_op if model.tensors[index].nbytes > 0]
    # Largest first. TFLM fills its sort array from the tail before a stable
    # sort, so equal sizes are taken in descending tensor index; matching that
    # reproduces its layout byte for byte (a different tie order can cost 10-15%).
    buffers.sort(key=lambda b: (-b[1], -b[0]))
    placed: list[TensorPlacement] = []
    for index, size in buffers:
        start, stop = first_op[index], last_op[index]
        live = sorted((p for p in placed if p.first_op <= stop and start <= p.last_op),
                      key=lambda p: p.offset)
        offset = 0
        for p in live:
            if p.offset - offset >= size:
                break
            offset = max(offset, p.end)
        placed.append(TensorPlacement(index, model.tensors[index].name, offset, size,
                                      start, stop))
    placed.sort(key=lambda p: p.tensor)
    return MemoryPlan(peak_bytes=max((p.end for p in placed), default=0),
                      alignment=alignment, placements=tuple(placed))
