"""Fits and checks the constants of the latency model (edgedistill/profile/latency.py).

1. Cortex-M4 (targets/nucleo-l4r5zi.yaml): fits ``cycles_per_mac`` for conv,
   depthwise and fully_connected to the four published MLPerf Tiny v0.5
   reference latencies (TFLM + CMSIS-NN on an STM32 NUCLEO-L4R5ZI at 120 MHz),
   with per-op MACs from ``edgedistill.profile.analysis.analyze``.

   Fit: non-negative least squares on the *relative* error, i.e. each row of
   ``cycles = A @ p`` is divided by the measured cycles, so the 10 ms anomaly
   detector weighs as much as the 700 ms ResNet. ``cycles_per_element`` and
   ``cycles_per_op`` are held at their YAML values (sourced estimates): the
   four models hold too little element-wise work and too few operators to
   identify them (a free fit drives both to zero), and four measurements
   cannot support five free parameters. With three parameters and four
   measurements the residuals printed below are in-sample, not a validation.

2. ESP32-S3 (targets/esp32-s3-devkitc-1.yaml): its constants come from the
   ESP-NN kernel table; this checks them against the published person-detection
   latency (54 ms, esp-tflite-micro README). That model is MobileNetV1 x0.25 on
   a 96x96x1 image: the MLPerf VWW model (96x96x3) with a first convolution on
   one input channel instead of three, which is how it is approximated here.

3. Pixel 4 and Raspberry Pi 4: derives the effective cycles per MAC from one
   published MobileNet v1 1.0 224 int8 latency each (569 M MACs, Howard et
   al. 2017, Table 8), as the YAML files state.

Run from the repository root: ``python benchmarks/calibrate_latency.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import MLPERF_DIR, MLPERF_INT8, MLPERF_PUBLISHED_LATENCY_MS  # noqa: E402

from edgedistill import targets  # noqa: E402
from edgedistill.profile.analysis import analyze  # noqa: E402
from edgedistill.profile.latency import estimate_latency, op_cycles  # noqa: E402
from edgedistill.tflite_file import read_tflite  # noqa: E402

MAC_KINDS = ("conv", "depthwise", "fully_connected")
MOBILENET_V1_MACS = 569e6  # Howard et al. 2017, MobileNets, Table 8 (1.0 MobileNet-224)
ESP_PERSON_DETECTION_MS = 54.0  # esp-tflite-micro README, ESP32-S3 @ 240 MHz with ESP-NN


def with_cycles_per_mac(target: targets.Target, cpm: dict[str, float]) -> targets.Target:
    """The same target with other ``cycles_per_mac`` values."""
    latency = dataclasses.replace(target.latency, cycles_per_mac=cpm)
    return dataclasses.replace(target, latency=latency)


def fit_cortex_m4() -> dict[str, float]:
    """Prints and returns the NNLS fit of the Cortex-M4 cycles per MAC."""
    base = targets.get("nucleo-l4r5zi")
    zero = with_cycles_per_mac(base, dict.fromkeys(MAC_KINDS, 0.0))
    rows, fixed, measured = [], [], []
    models = {}
    for name in MLPERF_INT8:
        ops = analyze(read_tflite(MLPERF_DIR / name))
        models[name] = ops
        rows.append([sum(op.macs for op in ops if op.kind == kind) for kind in MAC_KINDS])
        fixed.append(sum(op_cycles(zero, op) for op in ops))
        measured.append(MLPERF_PUBLISHED_LATENCY_MS[name] * 1e-3 * base.clock_hz)
    a, c, y = np.array(rows, float), np.array(fixed), np.array(measured)
    params, _ = nnls(a / y[:, None], (y - c) / y)
    cpm = {kind: float(round(v, 4)) for kind, v in zip(MAC_KINDS, params, strict=True)}

    print(f"Cortex-M4 fit on {base.name} ({base.clock_hz / 1e6:g} MHz), NNLS on relative error")
    print(
        "  fixed: cycles_per_element =",
        base.latency.cycles_per_element,
        " cycles_per_op =",
        base.latency.cycles_per_op,
    )
    for kind in MAC_KINDS:
        print(
            f"  cycles_per_mac.{kind:<16} fitted {cpm[kind]:9.4f}   in YAML "
            f"{base.latency.cycles_per_mac[kind]:9.4f}"
        )
    fitted = with_cycles_per_mac(base, cpm)
    print(
        f"  {'model':<32}{'MACs':>12}{'published ms':>14}{'fit ms':>10}{'ratio':>8}"
        f"{'YAML ms':>10}{'ratio':>8}"
    )
    for name, ops in models.items():
        pub = MLPERF_PUBLISHED_LATENCY_MS[name]
        est = estimate_latency(fitted, ops).total_ms
        yaml_est = estimate_latency(base, ops).total_ms
        macs = sum(op.macs for op in ops)
        print(
            f"  {name:<32}{macs:>12,}{pub:>14.2f}{est:>10.2f}{est / pub:>8.3f}"
            f"{yaml_est:>10.2f}{yaml_est / pub:>8.3f}"
        )
    return cpm


def check_esp32_s3() -> None:
    """Compares the ESP32-S3 target's estimate with the published person-detection latency."""
    target = targets.get("esp32-s3-devkitc-1")
    ops = list(analyze(read_tflite(MLPERF_DIR / "vww_96_int8.tflite")))
    first = next(i for i, op in enumerate(ops) if op.kind == "conv")
    ops[first] = dataclasses.replace(ops[first], macs=ops[first].macs // 3)
    est = estimate_latency(target, ops).total_ms
    print(f"\nESP32-S3 check ({target.clock_hz / 1e6:g} MHz, constants from the ESP-NN table)")
    macs = sum(op.macs for op in ops)
    print(
        f"  person detection (VWW with a 1-channel first conv, {macs:,} MACs):"
        f" estimate {est:.1f} ms, published {ESP_PERSON_DETECTION_MS} ms,"
        f" ratio {est / ESP_PERSON_DETECTION_MS:.3f}"
    )


def derive_application_cores() -> None:
    """Effective cycles per MAC from one MobileNet v1 int8 measurement per device."""
    print("\nApplication cores: cycles_per_mac = latency * measured clock * threads / 569e6 MACs")
    measurements = (
        ("pixel-4", 5.0e-3, 2.42e9, 4, "TFLite benchmarks page, Pixel 4, CPU 4 threads"),
        ("raspberry-pi-4", 1 / 38.5, 1.95e9, 4, "Q-engineering, 38.5 FPS at 1950 MHz, 4 threads"),
    )
    for name, seconds, clock, threads, source in measurements:
        cpm = seconds * clock * threads / MOBILENET_V1_MACS
        yaml_cpm = targets.get(name).latency.cycles_per_mac["conv"]
        print(f"  {name:<16} {cpm:.4f} (YAML {yaml_cpm:.4f})  [{source}]")


def main() -> None:
    fit_cortex_m4()
    check_esp32_s3()
    derive_application_cores()


if __name__ == "__main__":
    main()
