"""Conversion and TFLite Micro bundles, measured: MLPerf Tiny bundles and every mode on FMNIST.

1. For each MLPerf Tiny int8 reference model (../shared/models/mlperf-tiny):
   the bundle's measured arena and what it holds, the flash the model array
   takes (the .rodata of model_data.cc compiled for a Cortex-M4 when
   arm-none-eabi-g++ is installed), TFLM-vs-LiteRT parity on 100 random
   inputs, and the seconds to write the bundle (median of 3).
2. A Fashion-MNIST student (student-cnn, trained from scratch for --epochs)
   converted in every mode and I/O type: accuracy of the Keras model and of
   the .tflite on the 10,000 test images, top-1 agreement, bytes and
   conversion seconds.

Usage (from the repository root):
    python benchmarks/convert.py [--data fashion-mnist] [--epochs 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import preamble, prepend

MLPERF = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf-tiny"
MLPERF_INT8 = ("ad01_int8.tflite", "kws_ref_model.tflite", "pretrainedResnet_quant.tflite",
               "vww_96_int8.tflite")
CONVERSIONS = (("float32", None), ("float16", None), ("dynamic", None), ("int8", "int8"),
               ("int8", "uint8"), ("int8", "float32"), ("16x8", "int16"), ("16x8", "float32"))
CORTEX_M4 = ("-mcpu=cortex-m4", "-mthumb", "-Os")


def rodata_bytes(bundle_dir: Path, work: Path) -> int | None:
    """Bytes of model_data.cc's read-only data compiled for a Cortex-M4, if the compiler is here."""
    compiler = shutil.which("arm-none-eabi-g++")
    if compiler is None:
        return None
    obj = work / "model_data.o"
    subprocess.run([compiler, *CORTEX_M4, "-c", str(bundle_dir / "model_data.cc"), "-o", str(obj)],
                   check=True)
    sizes = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True,
                           capture_output=True, text=True).stdout
    return sum(int(line.split()[1]) for line in sizes.splitlines() if line.startswith(".rodata"))


def bundle_rows(work: Path) -> list[str]:
    from edgedistill.micro import write_micro_bundle

    rows = []
    for name in MLPERF_INT8:
        model = MLPERF / name
        seconds = []
        for run in range(3):
            out = work / f"{name}-{run}"
            started = time.perf_counter()
            bundle = write_micro_bundle(model, out)
            seconds.append(time.perf_counter() - started)
        arena, check = bundle.arena, bundle.check
        rodata = rodata_bytes(Path(bundle.out_dir), work)
        top1 = "—" if check.top1_agreement is None else f"{100 * check.top1_agreement:.0f}%"
        rows.append(
            f"| {name} | {bundle.model_bytes:,} | {'—' if rodata is None else f'{rodata:,}'} | "
            f"{arena.measured_bytes:,} | {arena.head_bytes:,} / {arena.tail_bytes:,} | "
            f"{arena.recommended_bytes:,} | {max(check.max_diffs):g} / "
            f"{max(check.mean_diffs):.3f} | {top1} | {'yes' if check.passed else 'NO'} | "
            f"{statistics.median(seconds):.2f} |")
        print(f"{name}: arena {arena.measured_bytes}", file=sys.stderr, flush=True)
    return rows


def student(data, epochs: int, work: Path) -> Path:
    from edgedistill._tf import keras
    from edgedistill.zoo import build

    k = keras()
    k.utils.set_random_seed(0)
    model = build("student-cnn", input_shape=data.input_shape, num_classes=data.num_classes)
    model.compile(k.optimizers.Adam(3e-3),
                  k.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=128, epochs=epochs,
              validation_data=(data.x_val, data.y_val), verbose=0)
    path = work / "student.h5"
    model.save(path)
    return path


def _largest_op_error(result) -> str:
    report = result.quantization
    if report is None:
        return "—"
    worst = max(report.rows, key=lambda row: row.rmse_over_scale)
    return f"{worst.rmse_over_scale:.2f} ({worst.layer}), {len(report.flagged)} flagged"


def mode_rows(data, model: Path, work: Path) -> list[str]:
    from edgedistill.convert import convert

    rows = []
    for mode, io_type in CONVERSIONS:
        result = convert(model, data, work / f"{mode}-{io_type}", mode=mode, io_type=io_type)
        rows.append(
            f"| {mode} | {result.io_type} | {100 * result.keras_accuracy:.2f}% | "
            f"{100 * result.tflite_accuracy:.2f}% | "
            f"{100 * (result.tflite_accuracy - result.keras_accuracy):+.2f} | "
            f"{100 * result.agreement:.2f}% | {result.max_abs_diff:.3g} / "
            f"{result.mean_abs_diff:.3g} | {_largest_op_error(result)} | "
            f"{result.tflite_bytes:,} | {result.seconds['convert']:.1f} |")
        print(f"{mode}/{result.io_type}: {result.tflite_accuracy:.4f}", file=sys.stderr,
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    if not MLPERF.is_dir():
        sys.exit(f"{MLPERF}: the MLPerf Tiny models are not there")
    from edgedistill.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundles = bundle_rows(work)
        data = load_dataset(args.data)
        modes = mode_rows(data, student(data, args.epochs, work), work)
    lines = [
        "## conversion and TFLite Micro bundles",
        "",
        *preamble("convert.py"),
        "",
        "MLPerf Tiny int8 reference models: `write_micro_bundle` (arena by bisection with "
        "the tflite-micro interpreter, head/tail from its recording allocator; parity: TFLM "
        "against LiteRT's reference kernels on 100 random inputs, in quantization steps; "
        "flash: `arm-none-eabi-size -A` of model_data.o for a Cortex-M4, -Os: the array, "
        "its 4-byte length and padding to 16).",
        "",
        "| model | .tflite bytes | .rodata bytes | arena measured | head / tail | arena + margin "
        "| parity max / mean (steps) | same class | passed | seconds (median of 3) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        *bundles,
        "",
        f"{args.data}: student-cnn trained from scratch for {args.epochs} epochs (seed 0, "
        f"Adam 3e-3), converted in every mode (calibration: 50 per class); accuracy on the "
        f"{len(data.x_test):,} test images.",
        "",
        "| mode | I/O | Keras accuracy | .tflite accuracy | change (points) | top-1 agreement "
        "| output diff max / mean | largest op error (int8 steps, rms) | bytes "
        "| convert seconds |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
        *modes,
    ]
    prepend("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
