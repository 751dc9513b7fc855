"""Fits and checks the constants of the latency model (edgedistill/profile/latency.py).

1. Cortex-M4 (targets/_cortex-m4f.yaml): fits ``cycles_per_mac`` for conv,
   depthwise and fully_connected, one set per runtime, to the four published
   MLPerf Tiny latencies of that runtime on an STM32 NUCLEO-L4R5ZI at 120 MHz
   (benchmarks/_published.py: the v0.5 TFLM + CMSIS-NN reference, and the
   later microTVM + CMSIS-NN and ONNC + CMSIS-NN submissions), with per-op
   MACs from ``edgedistill.profile.analysis.analyze``.

   Fit: non-negative least squares on the *relative* error, i.e. each row of
   ``cycles = A @ p`` is divided by the measured cycles, so the 10 ms anomaly
   detector weighs as much as the 700 ms ResNet. ``cycles_per_element`` and
   ``cycles_per_op`` are held at their YAML values (sourced estimates): the
   four models hold too little element-wise work and too few operators to
   identify them (a free fit drives both to zero), and four measurements
   cannot support five free parameters. With three parameters and four
   measurements the residuals printed below are in-sample, not a validation
   (benchmarks/profile_targets.py checks the constants on other boards).
   ``cycles_per_byte`` (memory traffic) is not identifiable either: as a
   fourth free parameter (printed below) its value, and which kernel kind's
   cost drops to 0, swing with the bytes it counts; it is held at 0.

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
sys.path.insert(0, str(REPO / "benchmarks"))

from _published import FIT, MODELS, Published  # noqa: E402
from conftest import MLPERF_DIR  # noqa: E402

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


def _mac_rows(ops_by_model: dict) -> np.ndarray:
    return np.array([[sum(op.macs for op in ops if op.kind == kind) for kind in MAC_KINDS]
                     for ops in ops_by_model.values()], float)


def fit_cortex_m4(published: Published, ops_by_model: dict) -> dict[str, float]:
    """Prints and returns the NNLS fit of the Cortex-M4 cycles per MAC for one runtime."""
    base = targets.get("nucleo-l4r5zi")
    zero = with_cycles_per_mac(base, dict.fromkeys(MAC_KINDS, 0.0))
    fixed = np.array([sum(op_cycles(zero, op) for op in ops) for ops in ops_by_model.values()])
    y = np.array([published.ms[name] * 1e-3 * base.clock_hz for name in ops_by_model])
    a = _mac_rows(ops_by_model)
    params, _ = nnls(a / y[:, None], (y - fixed) / y)
    cpm = {kind: float(round(v, 4)) for kind, v in zip(MAC_KINDS, params, strict=True)}
    print(f"\n{published.runtime}: fit on {base.name} ({base.clock_hz / 1e6:g} MHz), NNLS on "
          f"relative error, cycles_per_element and cycles_per_op held at the YAML values")
    for kind in MAC_KINDS:
        print(f"  cycles_per_mac.{kind:<16} fitted {cpm[kind]:9.4f}")
    fitted = with_cycles_per_mac(base, cpm)
    print(f"  {'model':<32}{'published ms':>14}{'fit ms':>10}{'error':>9}   source")
    for name, ops in ops_by_model.items():
        pub = published.ms[name]
        est = estimate_latency(fitted, ops).total_ms
        print(f"  {name:<32}{pub:>14.2f}{est:>10.2f}{est / pub - 1:>+9.1%}   "
              f"{published.source_of(name)}")
    return cpm


def memory_term_identifiability(published: Published, ops_by_model: dict) -> None:
    """Shows that four models cannot identify cycles_per_byte beside the three cycles_per_mac.

    With a fourth free parameter the split between the parameters swings with
    the choice of bytes (one kernel kind's cycles per MAC drops to 0 either
    way), so the term is held at 0 on the Cortex-M4 rather than fitted.
    """
    y = np.array([published.ms[name] * 1e-3 * 120e6 for name in ops_by_model])
    macs = _mac_rows(ops_by_model)
    print(f"\n{published.runtime}: cycles_per_byte as a fourth free parameter")
    for label, count in (("activations (the model's)", lambda o: o.activation_bytes),
                         ("weights + activations", lambda o: o.param_bytes + o.activation_bytes)):
        nbytes = [sum(count(o) for o in ops) for ops in ops_by_model.values()]
        a = np.column_stack([macs, nbytes])
        params, _ = nnls(a / y[:, None], np.ones(len(y)))
        worst = np.max(np.abs(a @ params / y - 1))
        print(f"  bytes = {label:<26} cycles_per_mac {np.round(params[:3], 3)}  "
              f"cycles_per_byte {params[3]:.3f}  worst error {worst:.1%}")


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
    ops_by_model = {name: analyze(read_tflite(MLPERF_DIR / name)) for name in MODELS}
    for published in FIT:
        fit_cortex_m4(published, ops_by_model)
    memory_term_identifiability(FIT[0], ops_by_model)
    check_esp32_s3()
    derive_application_cores()


if __name__ == "__main__":
    main()
