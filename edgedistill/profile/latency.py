"""Analytic latency estimate of a TFLite model on a hardware target.

The model counts work per operator and converts it to time with a handful of
per-target constants (:class:`edgedistill.targets.LatencyModel`)::

    work(op)   = macs * cycles_per_mac[kind]          for conv, depthwise, fully_connected
                 + output_rows * (cycles_per_row + kernel_taps * cycles_per_row_tap)
                                                       (conv and fully_connected; a
                                                       depthwise op's macs count its channels
                                                       rounded up to depthwise_channel_tile)
               = output_elements * cycles_per_element  for pool, elementwise, other
               = 0                                     for reshape (a view, no data moved)
    work(op)  *= float_slowdown                        when the op's input dtype is a float
    memory(op) = activation_bytes * cycles_per_byte         (0 for reshape)
    cycles(op) = cycles_per_op + work(op) / threads + memory(op)   for the MAC kinds
               = cycles_per_op + work(op) + memory(op)             for the others
    ms(op)     = cycles(op) / clock_hz * 1000
    total_ms   = cycles_per_invoke / clock_hz * 1000 + sum of ms(op)

The constants belong to one runtime (kernel library and version): a target
file gives its default runtime's under ``latency`` and other runtimes' under
``runtimes`` (:meth:`edgedistill.targets.Target.with_runtime` picks one), and
every estimate names the runtime it is for. ``cycles_per_byte`` is the
memory-traffic term, per byte of activations read and written (weights are
read once per group of MACs, so their traffic is in ``cycles_per_mac``); it is
0 where a fit cannot tell it apart from ``cycles_per_mac`` (the Cortex-M4:
benchmarks/calibrate_latency.py shows why) and on the host, where the
per-pixel terms below carry it (:mod:`.probe`). ``cycles_per_invoke`` is the
fixed cost of one inference.
:mod:`.roofline` gives the floor each estimate is compared with.

Wide-vector kernel libraries need two more terms, 0 and 1 by default (so a
microcontroller's fitted constants mean what they did): a cost per output
position of a convolution or fully-connected layer and per kernel tap it
gathers (``cycles_per_row``, ``cycles_per_row_tap``), and depthwise MACs
counted on channels rounded up to the vector's width
(``depthwise_channel_tile``). Measured on an Intel Xeon with AMX
(``python benchmarks/host_kernels.py``, benchmarks/RESULTS.md), LiteRT's
XNNPACK costs 31 to 39 cycles per output pixel of a 1x1 convolution whether
it has 16 or 64 channels (16 times the MACs, 4 times the bytes), 72 to 102
for a 3x3 one, 157 to 186 for a 5x5, and a 3x3 depthwise convolution the
same for 4, 8 or 16 channels: a per-MAC or per-byte cost alone cannot say
that.

How ``threads`` enters: the MAC-heavy kernels (convolutions, fully-connected)
are split across ``threads`` cores with ideal speedup, while the fixed
per-operator overhead and the element-wise kernels run on one core, as in the
TFLite CPU runtime. The constants of multi-core targets were fitted to
measurements taken with that same thread count, so ``cycles_per_mac`` there
is an *effective* figure that already absorbs the real parallel efficiency;
changing ``threads`` in a YAML file without refitting gives an optimistic
estimate. Microcontrollers have ``threads: 1``.

What it ignores: caches (a model whose weights stream from slow external
flash or PSRAM runs slower than estimated where ``cycles_per_byte`` is 0), the
kernel-specific fast paths of CMSIS-NN / ESP-NN / XNNPACK (e.g. 1x1
convolutions, channel counts that are multiples of 4 or 16, which change
cycles per MAC several-fold), padding and stride effects, int16 activation
kernels (costed as int8), and input/output pre- and post-processing. It is a
first-order, order-of-magnitude tool for comparing students and targets, not
a replacement for measuring on the board. ``benchmarks/calibrate_latency.py``
fits the Cortex-M4 constants of each runtime to its published MLPerf Tiny
latencies on the NUCLEO-L4R5ZI; ``benchmarks/profile_targets.py`` prints how
far each estimate lands from those and from results on other boards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgedistill.profile.analysis import OpCost
from edgedistill.profile.roofline import Peak, floor_ms, peak_macs_per_cycle
from edgedistill.targets import Target

MAC_KINDS = frozenset({"conv", "depthwise", "fully_connected"})
ELEMENT_KINDS = frozenset({"pool", "elementwise", "other"})
OVERHEAD_ONLY_KINDS = frozenset({"reshape"})


@dataclass(frozen=True)
class LatencyEstimate:
    """Estimated latency of one inference on one target, for one runtime, beside its floor.

    ``total_ms`` is ``invoke_ms`` plus the sum of ``per_op_ms``. ``floor_ms``
    is the roofline floor (None when the target's peak is unknown);
    ``floor_pct`` how much of it the estimate reaches.

    Example:
        >>> est = LatencyEstimate("nucleo-l4r5zi", 1.5, (1.0, 0.5), "tflm-cmsis-nn-2020", 0.3)
        >>> est.to_dict()["floor_pct"]
        20.0
    """

    target: str
    total_ms: float
    per_op_ms: tuple[float, ...]
    runtime: str = ""
    floor_ms: float | None = None
    peak: Peak | None = None
    invoke_ms: float = 0.0

    @property
    def floor_pct(self) -> float | None:
        """The floor as a percentage of the estimate: 100 would be a perfect kernel."""
        if self.floor_ms is None or self.total_ms <= 0:
            return None
        return 100.0 * self.floor_ms / self.total_ms

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"target": self.target, "runtime": self.runtime, "total_ms": self.total_ms,
                "per_op_ms": list(self.per_op_ms), "invoke_ms": self.invoke_ms,
                "floor_ms": self.floor_ms,
                "floor_pct": self.floor_pct, "peak": self.peak.to_dict() if self.peak else None}


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
    if op.kind == "depthwise":
        channels = op.output_elements // max(op.output_rows, 1)
        padded = -(-channels // lat.depthwise_channel_tile) * lat.depthwise_channel_tile
        macs = op.macs * padded // channels if channels else op.macs
        work, parallel = macs * lat.cycles_per_mac[op.kind], True
    elif op.kind in MAC_KINDS:
        work = op.macs * lat.cycles_per_mac[op.kind] + op.output_rows * (
            lat.cycles_per_row + op.kernel_taps * lat.cycles_per_row_tap)
        parallel = True
    elif op.kind in ELEMENT_KINDS:
        work, parallel = op.output_elements * lat.cycles_per_element, False
    elif op.kind in OVERHEAD_ONLY_KINDS:
        return lat.cycles_per_op
    else:
        raise ValueError(f"op {op.index} ({op.opcode}): unknown op kind {op.kind!r}")
    if is_float_dtype(op.dtype):
        work *= lat.float_slowdown
    if parallel:
        work /= lat.threads
    return lat.cycles_per_op + work + op.activation_bytes * lat.cycles_per_byte


def estimate_latency(target: Target, ops: Sequence[OpCost]) -> LatencyEstimate:
    """Estimates the latency of one inference of the analysed model on ``target``.

    Args:
        target: the hardware target (its ``latency`` constants and clock).
        ops: per-operator costs from :func:`edgedistill.profile.analysis.analyze`.

    Returns:
        The total and per-operator estimate in milliseconds for the target's
        runtime, with the roofline floor of the model's MACs.

    Example:
        >>> from edgedistill import targets
        >>> from edgedistill.tflite_file import read_tflite
        >>> from edgedistill.profile.analysis import analyze
        >>> ops = analyze(read_tflite("kws_ref_model.tflite"))  # doctest: +SKIP
        >>> round(estimate_latency(targets.get("nucleo-l4r5zi"), ops).total_ms)  # doctest: +SKIP
        195
    """
    per_op = tuple(op_cycles(target, op) / target.clock_hz * 1000.0 for op in ops)
    invoke = target.latency.cycles_per_invoke / target.clock_hz * 1000.0
    peak = peak_macs_per_cycle(target)
    return LatencyEstimate(target=target.name, total_ms=invoke + sum(per_op), per_op_ms=per_op,
                           runtime=target.runtime.id, invoke_ms=invoke,
                           floor_ms=floor_ms(sum(op.macs for op in ops), target, peak), peak=peak)
