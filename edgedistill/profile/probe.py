"""Latency constants of this machine, measured with LiteRT on small probe models.

The host target's ``latency`` fields read ``value: auto``; this module gives
them. Each probe is an int8 model built here (no TensorFlow: the LiteRT
flatbuffer schema), timed like :func:`edgedistill.profile.measure.measure_litert`
on the host's thread count, and the constants follow by subtraction:

* ``one``, ``chain``: one and 32 chained 1x1 convolutions on 4x4x16 values;
  their difference over 31 is one small layer, the rest of ``one`` is
  ``cycles_per_invoke``;
* ``conv1``, ``conv3``, ``conv_wide``: 1x1 and 3x3 convolutions 16 -> 16 and
  a 1x1 convolution 256 -> 256, each on 16x16 output pixels; with the small
  layer, four equations give ``cycles_per_op``, ``cycles_per_row`` (per
  output pixel), ``cycles_per_row_tap`` (per pixel and kernel tap) and
  ``cycles_per_mac.conv``, solved for the best fit with no negative term;
* ``depthwise4`` ... ``depthwise64``: 3x3 depthwise convolutions of 4 to 64
  channels on 16x16 pixels: ``depthwise_channel_tile`` is the most channels
  that cost what 4 do (XNNPACK's kernels run a vector of channels at a time),
  ``cycles_per_mac.depthwise`` is the 64-channel one's cost per MAC;
* ``fully_connected``: four layers 256 -> 256, weights small enough to stay
  in cache as a small model's do;
* ``element``: one ADD of 65536 values;
* ``float``: ``conv3`` in float32 over int8, ``float_slowdown``.

``cycles_per_byte`` is 0: probes with 4 times the activation bytes per pixel
cost the same per pixel (a small model's activations stay in cache), so the
per-pixel terms carry what a byte term would.

A per-MAC constant is never below one MAC per peak cycle of the ISA
(:func:`.roofline.peak_per_core`): where the subtraction leaves nothing (on a
Xeon with AMX a convolution's MACs cost next to nothing beside its pixels),
the constant is that floor, not zero, so no estimate beats the roofline.

The models being profiled are never among the probes, so the host estimate of
those models checks the constants rather than restating a fit. Results are
kept for the life of the process.
"""

from __future__ import annotations

import functools

import flatbuffers
import numpy as np

from edgedistill.profile.measure import measure_litert
from edgedistill.profile.roofline import PEAK_WORDS, peak_per_core

# LAYERS fully-connected layers make one probe: one alone costs about what an invoke does.
RUNS, WARMUP, CHAIN, LAYERS, SETTLE_INVOKES = 100, 5, 32, 4, 5000


class _Graph:
    """A one-subgraph TFLite model under construction, int8 unless ``float32``."""

    def __init__(self, float32: bool = False) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self.s, self.float32 = schema, float32
        self.rng = np.random.default_rng(0)
        self.buffers, self.tensors, self.ops, self.codes = [schema.BufferT()], [], [], []

    def tensor(self, shape, data=None, bias=False, channels=1, axis=0) -> int:
        s, t = self.s, self.s.TensorT()
        t.shape, t.name, t.buffer = list(shape), f"t{len(self.tensors)}".encode(), 0
        dtype = np.float32 if self.float32 else (np.int32 if bias else np.int8)
        t.type = {np.int8: s.TensorType.INT8, np.int32: s.TensorType.INT32,
                  np.float32: s.TensorType.FLOAT32}[dtype]
        if not self.float32:
            t.quantization = s.QuantizationParametersT()
            t.quantization.scale = [1 / 64] * channels
            t.quantization.zeroPoint = [0] * channels
            t.quantization.quantizedDimension = axis
        if data is not None:
            buffer = s.BufferT()
            buffer.data = np.frombuffer(np.asarray(data, dtype).tobytes(), np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def _weights(self, shape, channels=1, axis=0) -> int:
        data = (self.rng.standard_normal(shape) if self.float32
                else self.rng.integers(-127, 128, shape))
        return self.tensor(shape, data, channels=channels, axis=axis)

    def _op(self, code, inputs, outputs, options_type, options) -> int:
        if code not in self.codes:
            self.codes.append(code)
        o = self.s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), inputs, outputs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.ops.append(o)
        return outputs[0]

    def conv(self, x: int, side: int, cin: int, cout: int, k: int) -> int:
        s = self.s
        w = self._weights((cout, k, k, cin), channels=cout)
        b = self.tensor((cout,), np.zeros(cout), bias=True, channels=cout)
        options = s.Conv2DOptionsT()
        options.padding, options.strideW, options.strideH = s.Padding.SAME, 1, 1
        return self._op(s.BuiltinOperator.CONV_2D, [x, w, b], [self.tensor((1, side, side, cout))],
                        s.BuiltinOptions.Conv2DOptions, options)

    def depthwise(self, x: int, side: int, c: int) -> int:
        s = self.s
        w = self._weights((1, 3, 3, c), channels=c, axis=3)
        b = self.tensor((c,), np.zeros(c), bias=True, channels=c)
        options = s.DepthwiseConv2DOptionsT()
        options.padding, options.strideW, options.strideH = s.Padding.SAME, 1, 1
        options.depthMultiplier = 1
        return self._op(s.BuiltinOperator.DEPTHWISE_CONV_2D, [x, w, b],
                        [self.tensor((1, side, side, c))],
                        s.BuiltinOptions.DepthwiseConv2DOptions, options)

    def fully_connected(self, x: int, n: int) -> int:
        s = self.s
        w, b = self._weights((n, n)), self.tensor((n,), np.zeros(n), bias=True)
        return self._op(s.BuiltinOperator.FULLY_CONNECTED, [x, w, b], [self.tensor((1, n))],
                        s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT())

    def add(self, x: int, n: int) -> int:
        s = self.s
        return self._op(s.BuiltinOperator.ADD, [x, x], [self.tensor((1, n))],
                        s.BuiltinOptions.AddOptions, s.AddOptionsT())

    def pack(self, x: int, y: int) -> bytes:
        s = self.s
        graph = s.SubGraphT()
        graph.tensors, graph.inputs, graph.outputs, graph.operators = self.tensors, [x], [y], \
            self.ops
        model = s.ModelT()
        model.version, model.subgraphs, model.buffers, model.operatorCodes = 3, [graph], \
            self.buffers, []
        for code in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            model.operatorCodes.append(c)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


TILES = (4, 8, 16, 32, 64)

# name -> (builder, input shape, MACs, output rows, kernel taps, elements written)
_PROBES = {
    "one": (lambda g, x: g.conv(x, 4, 16, 16, 1), (1, 4, 4, 16), 16 * 16 * 16, 16, 1, 0),
    "chain": (lambda g, x: functools.reduce(lambda y, _: g.conv(y, 4, 16, 16, 1), range(CHAIN),
                                            x), (1, 4, 4, 16), CHAIN * 16 * 16 * 16,
              CHAIN * 16, 1, 0),
    "conv1": (lambda g, x: g.conv(x, 16, 16, 16, 1), (1, 16, 16, 16), 256 * 16 * 16, 256, 1, 0),
    "conv3": (lambda g, x: g.conv(x, 16, 16, 16, 3), (1, 16, 16, 16), 256 * 9 * 16 * 16, 256, 9,
              0),
    "conv_wide": (lambda g, x: g.conv(x, 16, 256, 256, 1), (1, 16, 16, 256), 256 * 256 * 256,
                  256, 1, 0),
    **{f"depthwise{c}": (lambda g, x, c=c: g.depthwise(x, 16, c), (1, 16, 16, c), 256 * 9 * c,
                         256, 9, 0) for c in TILES},
    "fully_connected": (lambda g, x: functools.reduce(lambda y, _: g.fully_connected(y, 256),
                                                      range(LAYERS), x), (1, 256),
                        LAYERS * 256 * 256, LAYERS, 1, 0),
    "element": (lambda g, x: g.add(x, 65536), (1, 65536), 0, 0, 0, 65536),
}


@functools.cache
def _model(name: str, float32: bool = False) -> bytes:
    build, shape = _PROBES[name][:2]
    graph = _Graph(float32)
    x = graph.tensor(shape)
    return graph.pack(x, build(graph, x))


@functools.cache
def _cycles(name: str, threads: int, clock_hz: int, float32: bool = False) -> float:
    ms = measure_litert(_model(name, float32), threads, warmup=WARMUP, runs=RUNS).median_ms
    return ms * 1e-3 * clock_hz


def _settle(threads: int) -> None:
    """Keeps the cores busy for about 50 ms first: on a shared Xeon, a process's first probe
    timed from idle once took 3.8 times what it took a moment later (10,931 against 2,911
    cycles), which skews every constant subtracted from it."""
    measure_litert(_model("chain"), threads, warmup=SETTLE_INVOKES, runs=1)


def _nonnegative_solve(a: np.ndarray, b: np.ndarray) -> list[float]:
    """The x >= 0 that fits ``a @ x = b`` best (least squares).

    A cost is never negative, yet on some machines the exact solution has a negative term
    (a CI runner gave a per-pixel cost below zero). Zeroing that term alone would leave
    the others fitted to equations it no longer helps to meet; here the terms that stay
    free are fitted again. With four unknowns every subset of free terms is tried: the
    best non-negative fit is the least-squares fit on one of them.

    Example:
        The exact solution of x + y = 2, x + 2y = 1 is x = 3, y = -1:

        >>> x = _nonnegative_solve(np.array([[1.0, 1.0], [1.0, 2.0]]), np.array([2.0, 1.0]))
        >>> [round(v, 6) for v in x]
        [1.5, 0.0]
    """
    best, best_residual = [0.0] * a.shape[1], float(np.sum(b ** 2))
    for mask in range(1, 2 ** a.shape[1]):
        free = [i for i in range(a.shape[1]) if mask >> i & 1]
        fit = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
        if np.any(fit < 0):
            continue
        x = np.zeros(a.shape[1])
        x[free] = fit
        residual = float(np.sum((a @ x - b) ** 2))
        if residual < best_residual - 1e-12 * max(best_residual, 1.0):
            best, best_residual = [float(v) for v in x], residual
    return best


@functools.cache
def host_constants(clock_hz: int, threads: int, isa: tuple[str, ...] = ()) -> dict[str, float]:
    """Every ``latency`` constant of this machine, keyed by its field path.

    Args:
        clock_hz: the clock the cycles are counted at.
        threads: LiteRT's thread count.
        isa: the machine's ISA features; their peak MAC rate floors the per-MAC constants
            (the fastest rate :mod:`.roofline` knows when it knows none of them).

    Example:
        >>> host_constants(2_100_000_000, 1, ("amx",))["depthwise_channel_tile"]  # doctest: +SKIP
        16
    """
    peak = peak_per_core(isa) or max(peak_per_core([word]) for word in PEAK_WORDS)
    least_per_mac = 1.0 / peak[0]

    def cycles(name: str) -> float:
        return _cycles(name, threads, clock_hz)

    _settle(threads)
    # One more small convolution costs an op, its pixels, taps and MACs; bigger ones cost the
    # same terms in other proportions, beside one invoke. Four equations, four unknowns.
    small = (cycles("chain") - cycles("one")) / (CHAIN - 1)
    invoke = max(cycles("one") - small, 0.0)
    names = ("one", "conv1", "conv3", "conv_wide")
    rows = [[1.0, *(x / threads for x in (p[3], p[3] * p[4], p[2]))]
            for p in map(_PROBES.get, names)]
    rhs = [small] + [cycles(name) - invoke for name in names[1:]]
    per_op, per_row, per_tap, conv = _nonnegative_solve(np.array(rows), np.array(rhs))
    fixed = per_op + invoke

    def work(name: str) -> float:
        return max(cycles(name) - fixed, 0.0)

    # Narrow depthwise convolutions cost what a whole vector of channels does.
    tile = TILES[0]
    for channels in TILES[1:]:
        if work(f"depthwise{channels}") > 1.5 * work(f"depthwise{TILES[0]}"):
            break
        tile = channels
    widest = _PROBES[f"depthwise{TILES[-1]}"]
    padded_macs = widest[2] // TILES[-1] * -(-TILES[-1] // tile) * tile
    fc_rows = per_row + per_tap
    return {
        "cycles_per_op": per_op, "cycles_per_invoke": invoke, "cycles_per_byte": 0.0,
        "cycles_per_row": per_row, "cycles_per_row_tap": per_tap,
        "depthwise_channel_tile": tile,
        "cycles_per_mac.conv": max(conv, least_per_mac),
        "cycles_per_mac.depthwise": max(work(f"depthwise{TILES[-1]}") * threads / padded_macs,
                                        least_per_mac),
        "cycles_per_mac.fully_connected": max(
            (work("fully_connected") - (LAYERS - 1) * per_op - LAYERS * fc_rows / threads)
            * threads / _PROBES["fully_connected"][2], least_per_mac),
        "cycles_per_element": work("element") / _PROBES["element"][5],
        "float_slowdown": _cycles("conv3", threads, clock_hz, True) / cycles("conv3"),
    }


def host_constant(field: str, clock_hz: int, threads: int,
                  isa: tuple[str, ...] = ()) -> tuple[float, str]:
    """One ``latency`` field of this machine (``cycles_per_mac.conv`` ...) and how it was got."""
    how = (f"LiteRT on int8 probe models (edgedistill/profile/probe.py), {threads} thread(s), "
           f"median of {RUNS} invokes after {WARMUP}, at {clock_hz / 1e9:.2f} GHz")
    value = host_constants(clock_hz, threads, isa)[field]
    peak = peak_per_core(isa)
    if field.startswith("cycles_per_mac.") and peak and value == 1.0 / peak[0]:
        how += ("; floored at the ISA's peak: the probe left less after its fixed and pixel "
                "costs (probe.py says why)")
    if field == "cycles_per_byte":
        how = ("LiteRT on int8 probe models (edgedistill/profile/probe.py): 0, the per-pixel "
               "terms carry a small model's activation traffic (probe.py says why)")
    return value, how
