"""What LiteRT's XNNPACK kernels cost on this machine, per output pixel, and the host model's fit.

One-operator int8 models (built like the host probes, edgedistill/profile/probe.py,
so no TensorFlow), 16x16 output pixels each, one thread: 1x1, 3x3 and 5x5
convolutions of 3 to 256 channels and 3x3 depthwise convolutions of 4 to 128
channels. Each is timed with LiteRT (median of 300 invokes, best of 3
rounds), and its cost per output pixel is what it takes beyond a 1-pixel
convolution (the invoke and op overheads). Beside it, the host target's latency
estimate of the same layer: most of these layers are not probes, so the
column checks the latency model's form (per pixel, per kernel tap, per MAC,
depthwise channels in vectors) on shapes it was not measured on.

Run it on a quiet machine: other processes make the timings vary twofold.

Usage (from the repository root):
    python benchmarks/host_kernels.py
"""

from __future__ import annotations

import math

from _results import preamble, prepend

from edgedistill import targets
from edgedistill.profile import probe
from edgedistill.profile.analysis import OpCost
from edgedistill.profile.latency import op_cycles
from edgedistill.profile.measure import measure_litert

SIDE = 16
CONVS = [(1, 16, 16), (1, 64, 64), (1, 16, 64), (1, 64, 16), (1, 128, 128), (1, 256, 256),
         (3, 3, 16), (3, 16, 16), (3, 32, 32), (3, 64, 64), (3, 16, 64), (3, 64, 16),
         (5, 16, 16)]
DEPTHWISE = [4, 8, 16, 24, 32, 64, 128]


def _microseconds(build, shape) -> float:
    graph = probe._Graph()
    x = graph.tensor(shape)
    content = graph.pack(x, build(graph, x))
    return min(measure_litert(content, 1, warmup=20, runs=300).median_ms for _ in range(3)) * 1e3


def main() -> None:
    host = targets.get("host")
    to_us = 1e6 / host.clock_hz
    base = _microseconds(lambda g, x: g.conv(x, 1, 16, 16, 1), (1, 1, 1, 16))
    rows = SIDE * SIDE
    lines = ["| layer (16x16 output pixels, int8) | MACs per pixel | activation bytes per pixel "
             "| measured µs | cycles per pixel | estimate µs | error |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def row(label, build, shape, op):
        us = _microseconds(build, shape)
        per_pixel = (us - base) / to_us / rows
        estimate = (op_cycles(host, op) + host.latency.cycles_per_invoke) * to_us
        lines.append(f"| {label} | {op.macs // rows:,} | {op.activation_bytes // rows} | "
                     f"{us:.2f} | {per_pixel:.1f} | {estimate:.2f} | {estimate / us - 1:+.0%} |")
        print(lines[-1], flush=True)

    for k, cin, cout in CONVS:
        op = OpCost(0, "CONV_2D", "conv", "int8", rows * k * k * cin * cout, rows * cout, 0,
                    rows * (cin + cout), rows, k * k)
        row(f"{k}x{k} convolution {cin} -> {cout}",
            lambda g, x, k=k, cin=cin, cout=cout: g.conv(x, SIDE, cin, cout, k),
            (1, SIDE, SIDE, cin), op)
    for c in DEPTHWISE:
        op = OpCost(0, "DEPTHWISE_CONV_2D", "depthwise", "int8", rows * 9 * c, rows * c, 0,
                    rows * 2 * c, rows, 9)
        row(f"3x3 depthwise, {c} channels", lambda g, x, c=c: g.depthwise(x, SIDE, c),
            (1, SIDE, SIDE, c), op)

    lat = host.latency
    constants = (f"cycles_per_invoke {lat.cycles_per_invoke:.0f}, cycles_per_op "
                 f"{lat.cycles_per_op:.0f}, cycles_per_row {lat.cycles_per_row:.1f}, "
                 f"cycles_per_row_tap {lat.cycles_per_row_tap:.2f}, cycles_per_mac.conv "
                 f"{lat.cycles_per_mac['conv']:.4f}, cycles_per_mac.depthwise "
                 f"{lat.cycles_per_mac['depthwise']:.3f}, depthwise_channel_tile "
                 f"{lat.depthwise_channel_tile}")
    errors = [abs(float(line.rsplit("|", 2)[1].strip().rstrip("%"))) for line in lines[2:]]
    section = "\n".join([
        "## LiteRT's XNNPACK kernels on this machine, per output pixel (issue 16 §3)", "",
        *preamble("host_kernels.py"),
        f"- host: {host.processor}, {host.clock_hz / 1e9:.2f} GHz, one LiteRT thread; a 1-pixel "
        f"1x1 convolution (the invoke and op overheads) takes {base:.2f} µs and is subtracted "
        "before dividing by the 256 pixels",
        f"- the host's constants, measured on the probe models at load: {constants}", "",
        *lines, "",
        f"- estimate against measured: worst {max(errors):.0f}%, mean |error| "
        f"{math.fsum(errors) / len(errors):.0f}%", ""])
    prepend(section)


if __name__ == "__main__":
    main()
