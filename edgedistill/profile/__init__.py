"""Profile a .tflite model: per-op cost, flash and RAM, and fit and latency per target.

Nothing here imports TensorFlow: the model is read with
:mod:`edgedistill.tflite_file`, costed with :mod:`.analysis`, its activation
arena planned with :mod:`.memory` and its latency estimated with
:mod:`.latency`. Renderers for the result live in :mod:`.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.profile.analysis import OpCost, analyze
from edgedistill.profile.latency import estimate_latency
from edgedistill.profile.memory import MemoryPlan, plan_memory
from edgedistill.targets import Target
from edgedistill.tflite_file import Tensor, read_tflite

RAM_MEASURED = "measured"
RAM_ESTIMATED = "estimated"


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape, dtype and (per-tensor) quantization of a model input or output.

    Example:
        >>> TensorSpec("x", (1, 4), "int8", 0.5, -128).to_dict()["shape"]
        [1, 4]
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None

    @classmethod
    def of(cls, tensor: Tensor) -> TensorSpec:
        """The spec of a tensor read from a model."""
        q = tensor.quantization
        per_tensor = q is not None and len(q.scales) == 1
        return cls(tensor.name, tensor.shape, tensor.dtype,
                   q.scales[0] if per_tensor else None,
                   q.zero_points[0] if per_tensor and q.zero_points else None)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class ModelInfo:
    """File facts of the profiled model.

    Example:
        >>> ModelInfo("m.tflite", 10, "ab", (), (), ("CONV_2D",), 1).to_dict()["op_count"]
        1
    """

    path: str
    size_bytes: int
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opcodes: tuple[str, ...]
    op_count: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"path": self.path, "size_bytes": self.size_bytes, "sha256": self.sha256,
                "inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs],
                "opcodes": list(self.opcodes), "op_count": self.op_count}


@dataclass(frozen=True)
class Totals:
    """Whole-model figures.

    ``ram_bytes`` is the measured arena when one was given (``ram_source ==
    "measured"``), else the planned activation arena (``"estimated"``), which
    leaves out TFLM's interpreter state (see :mod:`edgedistill.profile.memory`).

    Example:
        >>> Totals(100, 64, 1000, 512, "estimated", 512).to_dict()["ram_source"]
        'estimated'
    """

    macs: int
    param_bytes: int
    flash_bytes: int
    ram_bytes: int
    ram_source: str
    activation_arena_bytes: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dict(vars(self))


@dataclass(frozen=True)
class TargetFit:
    """Whether the model fits a target, with room to spare, and how fast it runs there.

    Headroom is what is left after the model and the target's reserved bytes;
    negative when it does not fit.

    Example:
        >>> fit = TargetFit("b", "Board", "mcu", 1.0, (1.0,), True, False, 10, -5, "too big: RAM")
        >>> fit.to_dict()["verdict"]
        'too big: RAM'
    """

    target: str
    title: str
    kind: str
    latency_ms: float
    per_op_ms: tuple[float, ...]
    fits_flash: bool
    fits_ram: bool
    flash_headroom_bytes: int
    ram_headroom_bytes: int
    verdict: str

    @property
    def fits(self) -> bool:
        """True when both flash and RAM fit."""
        return self.fits_flash and self.fits_ram

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = dict(vars(self))
        d["per_op_ms"] = list(self.per_op_ms)
        d["fits"] = self.fits
        return d


@dataclass(frozen=True)
class ProfileReport:
    """Everything :func:`profile_model` found out about one model.

    Example:
        >>> report = profile_model("kws.tflite", [])  # doctest: +SKIP
        >>> report.totals.macs  # doctest: +SKIP
        2656768
    """

    model: ModelInfo
    ops: tuple[OpCost, ...]
    totals: Totals
    memory: MemoryPlan
    targets: tuple[TargetFit, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"model": self.model.to_dict(), "totals": self.totals.to_dict(),
                "targets": [t.to_dict() for t in self.targets],
                "ops": [op.to_dict() for op in self.ops],
                "memory": self.memory.to_dict()}


def _fit(target: Target, ops: Sequence[OpCost], flash: int, ram: int) -> TargetFit:
    latency = estimate_latency(target, ops)
    flash_room = target.model_flash_bytes - flash
    ram_room = target.model_ram_bytes - ram
    short = [name for name, room in (("flash", flash_room), ("RAM", ram_room)) if room < 0]
    return TargetFit(
        target=target.name, title=target.title, kind=target.kind,
        latency_ms=latency.total_ms, per_op_ms=latency.per_op_ms,
        fits_flash=flash_room >= 0, fits_ram=ram_room >= 0,
        flash_headroom_bytes=flash_room, ram_headroom_bytes=ram_room,
        verdict="too big: " + ", ".join(short) if short else "fits",
    )


def profile_model(model_path, targets: Sequence[Target],
                  arena_bytes: int | None = None) -> ProfileReport:
    """Profile a .tflite model and check it against hardware targets.

    Args:
        model_path: Path of the .tflite file.
        targets: Targets to check (e.g. ``edgedistill.targets.list_targets()``).
        arena_bytes: A measured TFLite Micro arena size (e.g. a bundle's
            ``manifest.json`` ``arena.recommended_bytes``); when None the RAM
            figure is the planned activation arena.

    Returns:
        The report: model facts, per-op costs, totals, memory plan and one
        :class:`TargetFit` per target, in the order given.

    Raises:
        EdgeDistillError: The model cannot be read or ``arena_bytes`` is not a
            positive integer.

    Example:
        >>> from edgedistill import targets
        >>> report = profile_model("kws.tflite", [targets.get("nucleo-l4r5zi")])  # doctest: +SKIP
        >>> report.targets[0].verdict  # doctest: +SKIP
        'fits'
    """
    if arena_bytes is not None and (
            isinstance(arena_bytes, bool) or not isinstance(arena_bytes, int) or arena_bytes <= 0):
        raise EdgeDistillError(f"arena_bytes={arena_bytes!r}: the measured arena must be a "
                               "positive number of bytes; omit it to use the estimate")
    model = read_tflite(Path(model_path))
    ops = analyze(model)
    memory = plan_memory(model)
    ram = arena_bytes if arena_bytes is not None else memory.peak_bytes
    # Constant buffers can be shared by several ops; count each tensor once.
    params = sum(t.buffer_bytes for t in model.tensors if t.is_constant)
    totals = Totals(
        macs=sum(op.macs for op in ops), param_bytes=params, flash_bytes=model.size_bytes,
        ram_bytes=ram, ram_source=RAM_MEASURED if arena_bytes is not None else RAM_ESTIMATED,
        activation_arena_bytes=memory.peak_bytes,
    )
    info = ModelInfo(
        path=model.path, size_bytes=model.size_bytes, sha256=model.sha256,
        inputs=tuple(TensorSpec.of(model.tensors[i]) for i in model.inputs),
        outputs=tuple(TensorSpec.of(model.tensors[i]) for i in model.outputs),
        opcodes=model.opcodes, op_count=len(model.operators),
    )
    fits = tuple(_fit(t, ops, model.size_bytes, ram) for t in targets)
    return ProfileReport(model=info, ops=ops, totals=totals, memory=memory, targets=fits)
