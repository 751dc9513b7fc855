"""Runs the quickstart pipeline for several seeds and records medians in RESULTS.md.

Measures, per seed: teacher accuracy; distilled student float (QAT Keras) and
int8 (LiteRT) accuracy; from-scratch student int8 accuracy; bytes of each
model; the measured TFLite Micro arena; seconds per stage. All accuracies are
on the data's test split (Fashion-MNIST: all 10,000 test images, whatever
--max-train-samples). Runs happen one after another in one process, so the
seeds share the machine's noise.

Usage (from the repository root):
    python benchmarks/quickstart.py [--seeds 3] [--epochs 40] [--data fashion-mnist]
        [--max-train-samples 8000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _results import preamble, prepend


def run_once(out: Path, data: str, max_train_samples: int, epochs: int, seed: int) -> dict:
    from edgedistill.convert import convert
    from edgedistill.pipeline import run_pipeline

    result = run_pipeline(out, data=data, max_train_samples=max_train_samples, epochs=epochs,
                          seed=seed)
    teacher = convert(result.distill.teacher_path, data, out / "teacher-float32",
                      mode="float32", seed=seed)
    return {
        "teacher accuracy": result.distill.teacher_accuracy,
        "student float accuracy (QAT Keras)": result.distill.student_accuracy,
        "student int8 accuracy": result.student.tflite_accuracy,
        "scratch float accuracy (QAT Keras)": result.distill.scratch_accuracy,
        "scratch int8 accuracy": result.scratch.tflite_accuracy,
        "int8 gain of distillation (points)":
            100 * (result.student.tflite_accuracy - result.scratch.tflite_accuracy),
        "teacher bytes (float32 .tflite)": teacher.tflite_bytes,
        "student bytes (int8 .tflite)": result.student.tflite_bytes,
        "scratch bytes (int8 .tflite)": result.scratch.tflite_bytes,
        "TFLM arena bytes (measured)": result.micro.arena.measured_bytes,
        **{f"seconds: {k}": v for k, v in result.seconds.items()},
    }


def _fmt(key: str, value: float) -> str:
    if "points" in key:
        return f"{value:+.2f}"
    if "accuracy" in key:
        return f"{100 * value:.2f}%"
    if "bytes" in key:
        return f"{int(value):,}"
    return f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--max-train-samples", type=int, default=8_000)
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            print(f"seed {seed}...", file=sys.stderr, flush=True)
            runs.append(run_once(Path(tmp) / f"seed{seed}", args.data, args.max_train_samples,
                                 args.epochs, seed))

    lines = [
        f"## quickstart pipeline, {args.data} (at most {args.max_train_samples:,} training "
        f"samples), {args.epochs} epochs, {args.seeds} seeds",
        "",
        *preamble("quickstart.py"),
        "",
        "| figure | median | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " |",
        "|---|---:|" + "---:|" * args.seeds,
    ]
    for key in runs[0]:
        values = [run[key] for run in runs]
        lines.append(
            f"| {key} | {_fmt(key, statistics.median(values))} | "
            + " | ".join(_fmt(key, v) for v in values) + " |"
        )
    section = "\n".join(lines) + "\n"
    prepend(section)
    print(section)


if __name__ == "__main__":
    main()
