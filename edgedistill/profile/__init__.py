"""Profile a .tflite model: per-op cost, flash and RAM, and fit and latency per target.

Nothing here imports TensorFlow: the model is read with
:mod:`edgedistill.tflite_file`, costed with :mod:`.analysis`, its activation
arena planned with :mod:`.memory`, and each target judged by :mod:`.fit`:
latency from :mod:`.latency` (or Vela, :mod:`.vela`) beside its roofline
floor (:mod:`.roofline`) and, on the host, a LiteRT measurement
(:mod:`.measure`); verdicts from :mod:`.verdict`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.profile.analysis import OpCost, analyze
from edgedistill.profile.fit import TargetFit, fit_target
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


def profile_model(model_path, targets: Sequence[Target], arena_bytes: int | None = None,
                  runtime: str | None = None, max_latency_ms: float | None = None,
                  measure: bool = True) -> ProfileReport:
    """Profile a .tflite model and check it against hardware targets.

    Args:
        model_path: Path of the .tflite file.
        targets: Targets to check (e.g. ``edgedistill.targets.list_targets()``).
        arena_bytes: A measured TFLite Micro arena size (e.g. a bundle's
            ``manifest.json`` ``arena.recommended_bytes``); when None the RAM
            figure is the planned activation arena.
        runtime: The runtime id to estimate for (``microtvm-cmsis-nn-2022``);
            None keeps each target's own. Every target must have it
            (:func:`edgedistill.targets.select` leaves out those that do not).
        max_latency_ms: A latency budget; each target's verdict says whether
            the estimate meets it.
        measure: Measure the model with LiteRT on the host target.

    Returns:
        The report: model facts, per-op costs, totals, memory plan and one
        :class:`TargetFit` per target, in the order given.

    Raises:
        EdgeDistillError: The model cannot be read, ``arena_bytes`` is not a
            positive integer, ``max_latency_ms`` is not a positive number, or a
            target has no constants for ``runtime``.

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
    if max_latency_ms is not None and (
            isinstance(max_latency_ms, bool) or not isinstance(max_latency_ms, int | float)
            or not 0 < max_latency_ms < math.inf):
        raise EdgeDistillError(f"max_latency_ms={max_latency_ms!r}: the latency budget must be "
                               "a positive number of milliseconds")
    chosen = [t.with_runtime(runtime) if runtime else t for t in targets]
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
    fits = tuple(fit_target(t, model, ops, ram, max_latency_ms, measure) for t in chosen)
    return ProfileReport(model=info, ops=ops, totals=totals, memory=memory, targets=fits)
