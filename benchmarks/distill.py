"""Distillation against its scratch baseline, variant by variant, over seeds.

One zoo teacher (teacher-cnn, ~390k parameters on Fashion-MNIST) is trained
once with its own budget and cached; every variant distills the zoo student
(student-cnn, ~9k parameters) from it. A variant's scratch baseline is the
same student from the same initial weights on the same batches (same seed,
same augmentation) from hard labels alone; it depends only on the seed and
the augmentation, so it is trained once per pair and shared by variants.
Medians, min and max over seeds of the test accuracy; seconds per epoch of
the plain fit, the cached-teacher distillation and the per-step teacher.

Usage (from the repository root):
    python benchmarks/distill.py [--data fashion-mnist] [--seeds 3] [--epochs 20]
        [--variants kd,kd-augment,...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _results import preamble, prepend

TEACHER_CACHE = Path.home() / ".cache" / "edgedistill" / "benchmarks"

# name -> (description, distill() arguments). The CLI defaults are "kd".
VARIANTS = {
    "kd": ("CLI defaults: logits_distillation T=4, alpha=0.1", {}),
    "kd-per-step": ("kd with the teacher run every step (timing only)",
                    {"cache_teacher": False}),
    "logits-mse": ("logits_mse alone", {"losses": ["logits_mse"]}),
    "feature": ("logits_distillation + feature_distillation block2",
                {"losses": ["logits_distillation",
                            "feature_distillation:teacher_layer_name=block2,"
                            "student_layer_name=block2"]}),
    "attention": ("logits_distillation + attention_transfer block2",
                  {"losses": ["logits_distillation",
                              "attention_transfer:teacher_layer_name=block2,"
                              "student_layer_name=block2"], "loss_weights": [1.0, 10.0]}),
    "rkd": ("logits_distillation + rkd_distance + rkd_angle on embeddings",
            {"losses": ["logits_distillation",
                        "rkd_distance:teacher_layer_name=embedding,student_layer_name=embedding",
                        "rkd_angle:teacher_layer_name=embedding,student_layer_name=embedding"],
             "loss_weights": [1.0, 1.0, 2.0]}),
    "kd-augment": ("kd with consistent teaching: shift + mixup",
                   {"augment": ["shift", "mixup"]}),
    "kd-augment-alpha0": ("function matching: shift + mixup, alpha=0",
                          {"augment": ["shift", "mixup"], "alpha": 0.0}),
}


def _teacher(data: str, epochs: int) -> Path:
    """The zoo teacher for ``data``, trained once (seed 0) and kept between runs."""
    from edgedistill.distill import distill

    path = TEACHER_CACHE / f"teacher-cnn-{data.replace(':', '_').replace('/', '_')}-{epochs}.h5"
    if not path.exists():
        print(f"training the teacher on {data} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            result = distill("teacher-cnn", "student-cnn", data, Path(tmp) / "run", epochs=1,
                             teacher_epochs=epochs, scratch_baseline=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            Path(result.teacher_path).replace(path)
    return path


def _augment_key(kwargs: dict) -> tuple:
    return tuple(kwargs.get("augment", ()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--teacher-epochs", type=int, default=30)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    from edgedistill.data import load_dataset
    from edgedistill.distill import distill

    teacher = _teacher(args.data, args.teacher_epochs)
    accuracy: dict[str, list[float]] = {name: [] for name in names}
    scratch: dict[tuple, list[float]] = {}
    epoch_seconds: dict[str, list[float]] = {}
    teacher_accuracy = None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            data = load_dataset(args.data, seed=seed)
            for name in names:
                kwargs = VARIANTS[name][1]
                key = _augment_key(kwargs)
                baseline = len(scratch.get(key, [])) <= seed
                print(f"seed {seed}: {name}{' + scratch' if baseline else ''}", file=sys.stderr,
                      flush=True)
                result = distill(teacher, "student-cnn", data, Path(tmp) / f"{name}-{seed}",
                                 epochs=args.epochs, seed=seed, scratch_baseline=baseline,
                                 **kwargs)
                teacher_accuracy = result.teacher_accuracy
                accuracy[name].append(result.student_accuracy)
                epoch_seconds.setdefault(name, []).append(
                    result.fits["distill"]["median_epoch_seconds"])
                if baseline:
                    scratch.setdefault(key, []).append(result.scratch_accuracy)
                    epoch_seconds.setdefault("plain fit", []).append(
                        result.fits["scratch"]["median_epoch_seconds"])
    minutes = (time.perf_counter() - started) / 60

    def stats(values):
        return (f"{100 * statistics.median(values):.2f}% | {100 * min(values):.2f}% | "
                f"{100 * max(values):.2f}%")

    lines = [
        f"## distillation vs scratch, {args.data}, {args.epochs} epochs, {args.seeds} seeds",
        "",
        *preamble("distill.py"),
        f"- teacher: teacher-cnn (391,082 parameters), {args.teacher_epochs} epochs at most, "
        f"test accuracy {100 * teacher_accuracy:.2f}%; student: student-cnn (9,098 parameters)",
        f"- wall time: {minutes:.0f} min",
        "",
        "| variant | median | min | max | median gain over its scratch (points) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, values in scratch.items():
        label = "scratch" + (f" + {' + '.join(key)}" if key else "")
        lines.append(f"| {label} | {stats(values)} | |")
    for name in names:
        kwargs = VARIANTS[name][1]
        gains = [a - b for a, b in zip(accuracy[name], scratch[_augment_key(kwargs)],
                                       strict=True)]
        lines.append(f"| {name}: {VARIANTS[name][0]} | {stats(accuracy[name])} | "
                     f"{100 * statistics.median(gains):+.2f} |")
    lines += ["", "| seconds per epoch (median) | s | ratio to plain fit |", "|---|---:|---:|"]
    plain = statistics.median(epoch_seconds["plain fit"])
    for name, values in epoch_seconds.items():
        lines.append(f"| {name} | {statistics.median(values):.2f} | "
                     f"{statistics.median(values) / plain:.2f} |")
    section = "\n".join(lines) + "\n"
    prepend(section)
    print(section)


if __name__ == "__main__":
    main()
