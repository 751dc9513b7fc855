"""Analytic latency estimate of a TFLite model on a hardware target.

The model counts work per operator and converts it to time with a handful of
per-target constants (:class:`edgedistill.targets.LatencyModel`)::

    work(op)   = macs * cycles_per_mac[kind]          for conv, depthwise, fully_connected
               = output_elements * cycles_per_element  for pool, elementwise, other
               = 0                                     for reshape (a view, no data moved)
    work(op)  *= float_slowdown                        when the op's input dtype is a float
    cycles(op) = cycles_per_op + work(op) / threads    for the MAC kinds
               = cycles_per_op + work(op)              for the others
    ms(op)     = cycles(op) / clock_hz * 1000,   total_ms = sum of ms(op)

How ``threads`` enters: the MAC-heavy kernels (convolutions, fully-connected)
are split across ``threads`` cores with ideal speedup, while the fixed
per-operator overhead and the element-wise kernels run on one core, as in the
TFLite CPU runtime. The constants of multi-core targets were fitted to
measurements taken with that same thread count, so ``cycles_per_mac`` there
is an *effective* figure that already absorbs the real parallel efficiency;
changing ``threads`` in a YAML file without refitting gives an optimistic
estimate. Microcontrollers have ``threads: 1``.

What it ignores: caches and memory bandwidth (a model whose weights stream
from slow external flash or PSRAM runs slower than estimated), the
kernel-specific fast paths of CMSIS-NN / ESP-NN / XNNPACK (e.g. 1x1
convolutions, channel counts that are multiples of 4 or 16, which change
cycles per MAC several-fold), padding and stride effects, int16 activation
kernels (costed as int8), and input/output pre- and post-processing. It is a
first-order, order-of-magnitude tool for comparing students and targets, not
a replacement for measuring on the board. ``benchmarks/calibrate_latency.py``
fits the Cortex-M4 constants to the published MLPerf Tiny v0.5 latencies and
prints how far each estimate lands from the measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgedistill.profile.analysis import OpCost
from edgedistill.targets import Target

MAC_KINDS = frozenset({"conv", "depthwise", "fully_connected"})
ELEMENT_KINDS = frozenset({"pool", "elementwise", "other"})
OVERHEAD_ONLY_KINDS = frozenset({"reshape"})


@dataclass(frozen=True)
class LatencyEstimate:
    """Estimated latency of one inference on one target.

    Example:
        >>> est = LatencyEstimate(target="nucleo-l4r5zi", total_ms=1.5, per_op_ms=(1.0, 0.5))
        >>> est.to_dict()["total_ms"]
        1.5
    """

    target: str
    total_ms: float
    per_op_ms: tuple[float, ...]

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"target": self.target, "total_ms": self.total_ms, "per_op_ms": list(self.per_op_ms)}


def is_float_dtype(dtype: str) -> bool:
    """True for the floating-point dtypes whose kernels pay ``float_slowdown``."""
    return dtype.startswith(("float", "bfloat"))


def op_cycles(target: Target, op: OpCost) -> float:
    """Clock cycles the model assigns to one operator on ``target``.

    Raises:
        ValueError: if ``op.kind`` is not one of the kinds ``analyze`` produces.

    Example:
        >>> from edgedistill import targets
        >>> from edgedistill.profile.analysis import OpCost
        >>> t = targets.get("nucleo-l4r5zi")
        >>> op = OpCost(0, "RESHAPE", "reshape", "int8", 0, 10, 0, 20)
        >>> op_cycles(t, op) == t.latency.cycles_per_op
        True
    """
    lat = target.latency
    if op.kind in MAC_KINDS:
        work, parallel = op.macs * lat.cycles_per_mac[op.kind], True
    elif op.kind in ELEMENT_KINDS:
        work, parallel = op.output_elements * lat.cycles_per_element, False
    elif op.kind in OVERHEAD_ONLY_KINDS:
        work, parallel = 0.0, False
    else:
        raise ValueError(f"op {op.index} ({op.opcode}): unknown op kind {op.kind!r}")
    if is_float_dtype(op.dtype):
        work *= lat.float_slowdown
    if parallel:
        work /= lat.threads
    return lat.cycles_per_op + work


def estimate_latency(target: Target, ops: Sequence[OpCost]) -> LatencyEstimate:
    """Estimates the latency of one inference of the analysed model on ``target``.

    Args:
        target: the hardware target (its ``latency`` constants and clock).
        ops: per-operator costs from :func:`edgedistill.profile.analysis.analyze`.

    Returns:
        The total and per-operator estimate in milliseconds.

    Example:
        >>> from edgedistill import targets
        >>> from edgedistill.tflite_file import read_tflite
        >>> from edgedistill.profile.analysis import analyze
        >>> ops = analyze(read_tflite("kws_ref_model.tflite"))  # doctest: +SKIP
        >>> round(estimate_latency(targets.get("nucleo-l4r5zi"), ops).total_ms)  # doctest: +SKIP
        195
    """
    per_op = tuple(op_cycles(target, op) / target.clock_hz * 1000.0 for op in ops)
    return LatencyEstimate(target=target.name, total_ms=sum(per_op), per_op_ms=per_op)
