"""Compression while distilling: int8 accuracy, bytes, TFLM arena and MACs, 3 seeds.

The rows, each an int8 .tflite of the same student-cnn with the distill
benchmark's cached teacher (benchmarks/distill.py):

- scratch + PTQ: trained on hard labels, then full-integer post-training quantization;
- distilled + PTQ: distilled in float, then post-training quantization;
- QAT, no distillation: the scratch baseline of a ``qat=True`` run;
- quantization-aware distillation: ``distill(qat=True)``;
- 50% pruning, then PQAT: ``distill(prune=0.5)``, then ``distill(qat=True)`` from
  that student (sparsity-preserving QAT), for half the epochs;
- 2:4 pruning, then PQAT: the same with ``prune="m_by_n=2:4"``;
- channel pruning + distillation: 30% of each hidden layer's channels removed
  from the distilled student (``prune_channels=0.3``; on student-cnn that
  roughly halves the MACs), then distilled again, then PTQ.

Each (stage, seed) is cached in ~/.cache/edgedistill/benchmarks/compress-runs.jsonl,
so an interrupted run continues; RESULTS.md gets its section at the end.

Usage (from the repository root):
    python benchmarks/compress.py [--data fashion-mnist] [--seeds 3] [--epochs 40]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _results import preamble, prepend
from distill import CACHE, teacher_file

RUNS = CACHE / "compress-runs.jsonl"
ROWS = {
    "scratch-ptq": "scratch + PTQ",
    "distilled-ptq": "distilled + PTQ",
    "qat": "QAT, no distillation",
    "qad": "quantization-aware distillation",
    "prune50-pqat": "50% pruning, then PQAT",
    "prune24-pqat": "2:4 pruning, then PQAT",
    "channels30": "30% of channels removed, distilled again, PTQ",
}


def _measure(model_path: str, data, out: Path, float_accuracy: float) -> dict:
    """int8 conversion (with a Micro bundle) and the figures of the table."""
    from edgedistill import targets
    from edgedistill.convert import convert
    from edgedistill.profile import profile_model

    converted = convert(model_path, data, out)
    report = profile_model(converted.tflite_path, targets.list_targets()[:1])
    # Unstructured zeros do not shrink a .tflite; they shrink it compressed.
    gzipped = len(gzip.compress(Path(converted.tflite_path).read_bytes(), compresslevel=9))
    return {"float_accuracy": float_accuracy, "int8_accuracy": converted.tflite_accuracy,
            "tflite_bytes": converted.tflite_bytes, "gzip_bytes": gzipped,
            "arena_bytes": converted.micro["arena"]["measured_bytes"],
            "macs": report.totals.macs}


def _stages(seed: int, args) -> dict[str, dict]:
    """Every row's figures for one seed, trained here."""
    from edgedistill.data import load_dataset
    from edgedistill.distill import distill

    data = load_dataset(args.data, seed=seed)
    teacher = str(teacher_file(args.data, 0))
    common = dict(epochs=args.epochs, seed=seed)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain = distill(teacher, "student-cnn", data, tmp / "plain", **common)
        rows["scratch-ptq"] = _measure(plain.scratch_path, data, tmp / "c1",
                                       plain.scratch_accuracy)
        rows["distilled-ptq"] = _measure(plain.student_path, data, tmp / "c2",
                                         plain.student_accuracy)
        qat = distill(teacher, "student-cnn", data, tmp / "qat", qat=True, **common)
        rows["qat"] = _measure(qat.scratch_path, data, tmp / "c3", qat.scratch_accuracy)
        rows["qad"] = _measure(qat.student_path, data, tmp / "c4", qat.student_accuracy)
        for row, prune in (("prune50-pqat", 0.5), ("prune24-pqat", "m_by_n=2:4")):
            pruned = distill(teacher, "student-cnn", data, tmp / f"{row}-prune", prune=prune,
                             scratch_baseline=False, **common)
            pqat = distill(teacher, pruned.student_path, data, tmp / f"{row}-qat", qat=True,
                           scratch_baseline=False, epochs=max(1, args.epochs // 2), seed=seed)
            rows[row] = {**_measure(pqat.student_path, data, tmp / f"{row}-c",
                                    pqat.student_accuracy),
                         "pruned_layers": pruned.compressed_layers}
        smaller = distill(teacher, plain.student_path, data, tmp / "channels",
                          prune_channels=0.3, scratch_baseline=False, **common)
        rows["channels30"] = _measure(smaller.student_path, data, tmp / "c5",
                                      smaller.student_accuracy)
    return rows


def _runs() -> dict:
    if not RUNS.exists():
        return {}
    return {(r["data"], r["epochs"], r["seed"]): r for r in map(json.loads,
                                                               RUNS.read_text().splitlines())}


def _fmt(values, kind: str) -> str:
    median = statistics.median(values)
    if kind == "accuracy":
        return f"{100 * median:.2f}% ({100 * min(values):.2f}–{100 * max(values):.2f})"
    return f"{int(median):,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    runs = _runs()
    per_seed = []
    for seed in range(args.seeds):
        key = (args.data, args.epochs, seed)
        if key not in runs:
            print(f"seed {seed} ...", file=sys.stderr, flush=True)
            runs[key] = {"data": args.data, "epochs": args.epochs, "seed": seed,
                         "rows": _stages(seed, args)}
            RUNS.parent.mkdir(parents=True, exist_ok=True)
            with RUNS.open("a") as file:
                file.write(json.dumps(runs[key]) + "\n")
        per_seed.append(runs[key]["rows"])

    lines = [
        f"## compression while distilling, {args.data}, {args.epochs} epochs, "
        f"{args.seeds} seeds",
        "",
        *preamble("compress.py"),
        "- student-cnn; teacher: the distill benchmark's cached teacher-cnn; PQAT stages run "
        f"{max(1, args.epochs // 2)} epochs from the pruned student",
        "- accuracy: median (min–max) over seeds; bytes, arena and MACs: median",
        "",
        "| row | int8 accuracy | its float accuracy | .tflite bytes | gzipped | TFLM arena "
        "bytes (measured) | MACs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row, label in ROWS.items():
        values = {name: [seed[row][name] for seed in per_seed] for name in per_seed[0][row]
                  if name != "pruned_layers"}
        lines.append(f"| {label} | {_fmt(values['int8_accuracy'], 'accuracy')} | "
                     f"{_fmt(values['float_accuracy'], 'accuracy')} | "
                     f"{_fmt(values['tflite_bytes'], 'count')} | "
                     f"{_fmt(values['gzip_bytes'], 'count')} | "
                     f"{_fmt(values['arena_bytes'], 'count')} | {_fmt(values['macs'], 'count')} |")
    section = "\n".join(lines) + "\n"
    prepend(section)
    print(section)


if __name__ == "__main__":
    main()
