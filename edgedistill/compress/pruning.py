"""Magnitude pruning inside the distillation loop (tfmot ``prune_low_magnitude``).

``prune_student`` wraps the student's prunable layers so that training drives
the smallest weights to zero on a schedule; :func:`strip_student` removes the
wrappers before export, and :func:`sparsity_report` says how sparse each
layer came out. The verbs follow tfmot's ``prune_low_magnitude`` /
``strip_pruning``.

Example:
    >>> pruning = Pruning(sparsity=0.5)
    >>> wrapped = prune_student(student, pruning, total_steps=40 * 100)
    >>> wrapped.fit(..., callbacks=pruning_callbacks())
    >>> sparsity_report(strip_student(wrapped))[0].sparsity
    0.5
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from edgedistill import specs
from edgedistill._tf import keras, tfmot
from edgedistill.compress.schemes import CompressionScheme, register
from edgedistill.errors import EdgeDistillError

_keras = keras()
_sparsity = tfmot().sparsity.keras
SCHEDULES = ("polynomial", "constant")
# Layers whose kernel is pruned.
_PRUNED = (_keras.layers.Conv1D, _keras.layers.Conv2D, _keras.layers.Dense)


@register("prune")
@dataclasses.dataclass(frozen=True)
class Pruning(CompressionScheme):
    """How the student is pruned while it is distilled.

    Attributes:
        sparsity: the fraction of each pruned kernel that ends at zero, in (0, 1).
        schedule: ``"polynomial"`` ramps sparsity from 0 to ``sparsity``
            between ``begin`` and ``end`` (Zhu and Gupta 2017); ``"constant"``
            holds ``sparsity`` from ``begin`` on.
        begin, end: where the ramp begins and ends, as fractions of the
            training steps. The steps after ``end`` fine-tune at full sparsity.
        frequency: training steps between two updates of the masks.
        m_by_n: ``(m, n)``: ``m`` zeros in every ``n`` consecutive weights
            (2:4 for sparse accelerators); ``sparsity`` is then ``m / n``.
        block: ``(rows, columns)``: prune whole blocks of the kernel's rank-2 view.
        layers: prune only these layers, each to its own sparsity
            (``{name: sparsity}``); by default every Conv and Dense layer.
    """

    sparsity: float = 0.5
    schedule: str = "polynomial"
    begin: float = 0.0
    end: float = 0.6
    frequency: int = 10
    m_by_n: tuple[int, int] | None = None
    block: tuple[int, int] | None = None
    layers: dict | None = None

    def __post_init__(self):
        if self.m_by_n is not None:
            m, n = _pair(self.m_by_n, "m_by_n")
            if not 0 < m < n:
                raise EdgeDistillError(f"pruning m_by_n: need 0 < m < n, got {m}:{n}")
            object.__setattr__(self, "m_by_n", (m, n))
            object.__setattr__(self, "sparsity", m / n)
        if self.block is not None:
            object.__setattr__(self, "block", _pair(self.block, "block"))
        if self.m_by_n is not None and self.block is not None:
            raise EdgeDistillError("pruning: give m_by_n or block, not both")
        _check_sparsity(self.sparsity, "sparsity")
        for name, value in (self.layers or {}).items():
            _check_sparsity(value, f"layers: {name}")
        if self.schedule not in SCHEDULES:
            raise EdgeDistillError(
                f"pruning schedule: {self.schedule!r} unknown; use one of {', '.join(SCHEDULES)}")
        if not (0 <= self.begin < self.end <= 1):
            raise EdgeDistillError(
                f"pruning begin, end: need 0 <= begin < end <= 1 (fractions of the training "
                f"steps), got {self.begin}, {self.end}")
        if not isinstance(self.frequency, int) or self.frequency < 1:
            raise EdgeDistillError(f"pruning frequency: a whole number of steps >= 1, got "
                                   f"{self.frequency!r}")

    @classmethod
    def from_spec(cls, spec) -> Pruning:
        """A Pruning from itself, a sparsity, a ``key=value,...`` text or a mapping.

        Example:
            >>> Pruning.from_spec("sparsity=0.8,schedule=constant").sparsity
            0.8
            >>> Pruning.from_spec("m_by_n=2:4").sparsity
            0.5
        """
        if isinstance(spec, Pruning):
            return spec
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            return cls(sparsity=spec)
        if isinstance(spec, str):
            try:
                return cls(sparsity=float(spec))
            except ValueError:
                spec = specs.parse(f"prune:{spec}", "prune")["config"]
        if not isinstance(spec, dict):
            raise EdgeDistillError(f"prune: expected a sparsity or key=value settings, got "
                                   f"{spec!r:.60}")
        return specs.build(cls, spec, "prune")

    def settled_epoch(self, epochs: int) -> int:
        """The first epoch (from 0) that ends with every layer at its target sparsity."""
        return max(0, min(epochs, math.ceil(self.end * epochs)) - 1)

    def schedule_for(self, sparsity: float, total_steps: int):
        """The tfmot PruningSchedule that reaches ``sparsity`` within ``total_steps``."""
        begin = int(self.begin * total_steps)
        end = max(begin + 1, int(self.end * total_steps))
        frequency = min(self.frequency, max(1, (end - begin) // 4))
        if self.schedule == "constant":
            return _sparsity.ConstantSparsity(sparsity, begin, end, frequency)
        return _sparsity.PolynomialDecay(0.0, sparsity, begin, end, frequency=frequency)

    def wrap(self, model, total_steps: int):
        """:func:`prune_student` with these settings."""
        return prune_student(model, self, total_steps)

    def fit_options(self, epochs: int) -> dict:
        """What a fit of the wrapped model needs: the callback, and the first epoch to keep."""
        return {"callbacks": pruning_callbacks(), "best_from_epoch": self.settled_epoch(epochs)}

    def strip(self, model):
        return strip_student(model)

    def report(self, model) -> tuple[dict, ...]:
        """Each pruned-kind layer's weights and zeros (:func:`sparsity_report`)."""
        return tuple(r.to_dict() for r in sparsity_report(model))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, str):  # "2:4" or "4x2" from a command line or recipe
        value = value.replace("x", ":").split(":")
    try:
        first, second = (int(v) for v in value)
    except (TypeError, ValueError):
        raise EdgeDistillError(f"pruning {name}: two whole numbers, got {value!r:.40}") from None
    if first < 1 or second < 1:
        raise EdgeDistillError(f"pruning {name}: both numbers must be >= 1, got {value!r:.40}")
    return first, second


def _check_sparsity(value, name: str) -> None:
    if not isinstance(value, int | float) or not 0 < value < 1 or not math.isfinite(value):
        raise EdgeDistillError(f"pruning {name}: must lie in (0, 1) (the fraction of weights "
                               f"set to zero), got {value!r:.40}")


def _why_not_prunable(layer, pruning: Pruning) -> str | None:
    """Why tfmot cannot prune ``layer`` with this pattern, or None when it can."""
    if not isinstance(layer, _PRUNED):
        return (f"is a {type(layer).__name__}; prune "
                f"{', '.join(kind.__name__ for kind in _PRUNED)} layers")
    if pruning.block:
        if not isinstance(layer, _keras.layers.Dense):
            return "is not Dense; block sparsity needs a rank-2 kernel (Dense layers)"
        rows, columns = pruning.block
        if layer.kernel.shape[0] % rows or layer.kernel.shape[1] % columns:
            return (f"has a {layer.kernel.shape[0]}x{layer.kernel.shape[1]} kernel, which "
                    f"{rows}x{columns} blocks do not tile")
    if pruning.m_by_n:
        if isinstance(layer, _keras.layers.Conv1D):
            return "is a Conv1D; m-by-n sparsity takes Conv2D and Dense layers"
        inputs = layer.kernel.shape[-2]
        if inputs % pruning.m_by_n[1]:
            return (f"has {inputs} input channels; {pruning.m_by_n[0]}:{pruning.m_by_n[1]} "
                    f"sparsity needs a multiple of {pruning.m_by_n[1]}")
    return None


def _targets(model, pruning: Pruning) -> dict[str, float]:
    """The layers to prune and their sparsity.

    By default every layer the pattern applies to (a first convolution over 1
    input channel takes no 2:4 pattern, say); layers the user names must all
    take it.
    """
    if pruning.layers is None:
        return {layer.name: pruning.sparsity for layer in model.layers
                if _why_not_prunable(layer, pruning) is None}
    names = {layer.name: layer for layer in model.layers}
    for name in pruning.layers:
        if name not in names:
            raise EdgeDistillError(f"pruning layers: {model.name} has no layer {name!r}; its "
                                   f"layers: {', '.join(names)}")
        reason = _why_not_prunable(names[name], pruning)
        if reason:
            raise EdgeDistillError(f"pruning layers: {name!r} {reason}")
    return dict(pruning.layers)


def prune_student(model, pruning: Pruning, total_steps: int):
    """A copy of ``model`` whose chosen layers are wrapped for magnitude pruning.

    The weights are kept. Train it with :func:`pruning_callbacks`, then
    :func:`strip_student` it before saving for export.

    Raises:
        EdgeDistillError: a subclassed model, a layer name the model lacks,
            or a pattern (2:4, block) a layer's shape does not allow.
    """
    targets = _targets(model, pruning)
    if not targets:
        raise EdgeDistillError(f"pruning: {model.name} has no layer this pattern can prune "
                               "(Conv1D, Conv2D or Dense; Conv2D or Dense with enough input "
                               "channels for m-by-n; Dense for blocks)")
    try:
        fresh = _keras.models.clone_model(model)
    except ValueError as e:
        raise EdgeDistillError(f"pruning: cannot copy {model.name} ({_first_line(e)}); use a "
                               "Sequential or functional model") from None
    fresh.set_weights(model.get_weights())
    options = {}
    if pruning.m_by_n:
        options["sparsity_m_by_n"] = pruning.m_by_n
    if pruning.block:
        options["block_size"] = pruning.block

    def wrap(layer):
        if layer.name not in targets:
            return layer
        return _sparsity.prune_low_magnitude(
            layer, pruning_schedule=pruning.schedule_for(targets[layer.name], total_steps),
            **options)

    try:
        return _keras.models.clone_model(fresh, clone_function=wrap)
    except (ValueError, TypeError) as e:
        raise EdgeDistillError(f"pruning {model.name}: {_first_line(e)}") from None


def pruning_callbacks() -> list:
    """The callbacks a fit of a pruned model needs (tfmot's ``UpdatePruningStep``)."""
    return [_sparsity.UpdatePruningStep()]


def is_prune_wrapped(model) -> bool:
    """True when ``model`` carries tfmot's pruning wrappers."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    return any(isinstance(layer, pruning_wrapper.PruneLowMagnitude) for layer in model.layers)


def strip_student(model):
    """``model`` without pruning wrappers, its zeros in place (tfmot ``strip_pruning``)."""
    return _sparsity.strip_pruning(model) if is_prune_wrapped(model) else model


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """How many of one layer's kernel weights are zero."""

    layer: str
    weights: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.weights if self.weights else 0.0

    def to_dict(self) -> dict:
        return {"layer": self.layer, "weights": self.weights, "zeros": self.zeros,
                "sparsity": round(self.sparsity, 4)}


def sparsity_report(model) -> tuple[LayerSparsity, ...]:
    """The zeros in each Conv and Dense kernel of a (stripped) model."""
    report = []
    for layer in strip_student(model).layers:
        if isinstance(layer, _PRUNED):
            kernel = np.asarray(layer.kernel)
            report.append(LayerSparsity(layer.name, int(kernel.size),
                                        int(np.count_nonzero(kernel == 0))))
    return tuple(report)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
