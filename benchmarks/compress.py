"""Compression while distilling: int8 accuracy, bytes, TFLM arena and MACs, 3 seeds.

Every row runs the built-in recipes (``edgedistill recipes``) with the
distill benchmark's cached teacher (benchmarks/distill.py) and its student
(student-cnn3 unless ``--student`` names another zoo student),
and every row has its baseline: the same stages without a teacher, from the
same weights on the same batches.

- PTQ: distilled in float (40 epochs), then full-integer post-training
  quantization; its baseline is scratch + PTQ.
- the ``qad``, ``prune-pqat``, ``sparse-2-4``, ``shrink-channels`` and
  ``cluster`` recipes, each continuing from that float student (and its
  baseline from the float scratch student): quantization-aware distillation;
  50% pruning then sparsity-preserving QAT; 2:4 then PQAT; 30% of the channels
  removed (about half the MACs), distilled again, then QAT; 16 values per
  kernel, then cluster-preserving QAT.

Each seed is cached in ~/.cache/edgedistill/benchmarks/compress-runs.jsonl, so
an interrupted run continues; RESULTS.md gets its section at the end.

Usage (from the repository root):
    python benchmarks/compress.py [--data fashion-mnist] [--student student-cnn3] [--seeds 3]
        [--epochs 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _results import preamble, prepend
from distill import CACHE, teacher_file

RUNS = CACHE / "compress-runs.jsonl"
LAYOUT = 3  # rows from the built-in recipes, cluster included
ROWS = {
    "ptq": "float distillation, then PTQ",
    "qad": "quantization-aware distillation (qad)",
    "prune-pqat": "50% pruning, then PQAT (prune-pqat)",
    "sparse-2-4": "2:4 pruning, then PQAT (sparse-2-4)",
    "shrink-channels": "30% of channels removed, distilled, QAT (shrink-channels)",
    "cluster": "16 values per kernel, then CQAT (cluster)",
}


def _measure(conversion, kernels, bundle=None) -> dict:
    """The figures of one int8 model: accuracy, bytes (also gzipped), arena, MACs, zeros."""
    from edgedistill import targets
    from edgedistill.profile import profile_model

    report = profile_model(conversion.tflite_path, targets.list_targets()[:1])
    # Unstructured zeros do not shrink a .tflite; they shrink it compressed.
    gzipped = len(gzip.compress(Path(conversion.tflite_path).read_bytes(), compresslevel=9))
    elements = sum(k["elements"] for k in kernels or ()) or 1
    return {"float_accuracy": conversion.keras_accuracy,
            "int8_accuracy": conversion.tflite_accuracy,
            "tflite_bytes": conversion.tflite_bytes, "gzip_bytes": gzipped,
            "arena_bytes": bundle.arena.measured_bytes if bundle else None,
            "macs": report.totals.macs,
            "zeros": sum(k["zeros"] * k["elements"] for k in kernels or ()) / elements,
            "values_per_channel": max((k["distinct_values"] for k in kernels or ()),
                                      default=None)}


def _row(stage) -> dict:
    """A convert stage's distilled and no-teacher figures."""
    from edgedistill.convert.litert import kernel_statistics

    return {"distilled": _measure(stage.student, stage.kernels, stage.micro),
            "scratch": _measure(stage.scratch, kernel_statistics(stage.scratch.tflite_path))}


def _stages(seed: int, args) -> dict[str, dict]:
    """Every row's figures for one seed, trained here."""
    from edgedistill import recipes
    from edgedistill.data import load_dataset
    from edgedistill.recipes.schema import Recipe, Stage

    data = load_dataset(args.data, seed=seed)
    shared = {"teacher": str(teacher_file(args.data, 0)), "student": args.student,
              "data": data, "epochs": args.epochs, "seed": seed}
    ptq = Recipe("ptq", "float distillation, then int8", {}, (
        Stage("distill", "1-distill", {}), Stage("convert", "2-int8", {"mode": "int8"})))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = recipes.run_recipe(ptq.with_shared(shared), tmp / "ptq")
        rows["ptq"] = _row(base.stages[-1])
        float_stage = base.stages[0].distill
        for name in list(ROWS)[1:]:
            print(f"seed {seed}: {name}", file=sys.stderr, flush=True)
            recipe = recipes.get(name)
            # The recipe's first stage is the float distillation done above.
            recipe = dataclasses.replace(recipe, stages=recipe.stages[1:]).with_shared({
                **shared, "student": float_stage.student_path,
                "scratch_student": float_stage.scratch_path})
            result = recipes.run_recipe(recipe, tmp / name)
            rows[name] = _row(result.stages[-1])
    return rows


def _runs() -> dict:
    if not RUNS.exists():
        return {}
    # Runs from before --student existed are of student-cnn.
    return {(r["data"], r.get("student", "student-cnn"), r["epochs"], r["seed"]): r
            for r in map(json.loads, RUNS.read_text().splitlines()) if r.get("layout") == LAYOUT}


def _accuracy(values) -> str:
    median = statistics.median(values)
    return f"{100 * median:.2f}% ({100 * min(values):.2f}–{100 * max(values):.2f})"


def _points(values) -> str:
    return f"{100 * statistics.median(values):+.2f}"


def _count(values) -> str:
    return "—" if None in values else f"{int(statistics.median(values)):,}"


def _goals(per_seed: list[dict]) -> list[str]:
    """The issue's goals, each median over seeds of the per-seed difference."""
    def median(row, who, figure, minus=None):
        return statistics.median(
            seed[row][who][figure] - (0 if minus is None else seed[minus[0]][minus[1]][figure])
            for seed in per_seed)

    qad_gain = median("qad", "distilled", "int8_accuracy", ("ptq", "scratch"))
    qad_drop = statistics.median(seed["qad"]["distilled"]["float_accuracy"]
                                 - seed["qad"]["distilled"]["int8_accuracy"]
                                 for seed in per_seed)
    shrink_loss = -median("shrink-channels", "distilled", "int8_accuracy",
                          ("ptq", "distilled"))
    macs = statistics.median(seed["shrink-channels"]["distilled"]["macs"]
                             / seed["ptq"]["distilled"]["macs"] for seed in per_seed)

    def verdict(ok):
        return "met" if ok else "NOT met"

    return [
        f"- goal, QAD int8 ≥ scratch + PTQ + 1.5 points: {100 * qad_gain:+.2f} points, "
        f"{verdict(qad_gain >= 0.015)}",
        f"- goal, QAD int8 within 0.3 points of its float accuracy: {100 * qad_drop:.2f} "
        f"points below, {verdict(qad_drop <= 0.003)}",
        f"- goal, channel pruning to about half the MACs ({macs:.2f}x) loses ≤ 1 point against "
        f"the distilled student + PTQ: {100 * shrink_loss:.2f} points lost, "
        f"{verdict(shrink_loss <= 0.01)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--student", default="student-cnn3")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    runs = _runs()
    per_seed = []
    for seed in range(args.seeds):
        key = (args.data, args.student, args.epochs, seed)
        if key not in runs:
            print(f"seed {seed} ...", file=sys.stderr, flush=True)
            runs[key] = {"layout": LAYOUT, "data": args.data, "student": args.student,
                         "epochs": args.epochs, "seed": seed, "rows": _stages(seed, args)}
            RUNS.parent.mkdir(parents=True, exist_ok=True)
            with RUNS.open("a") as file:
                file.write(json.dumps(runs[key]) + "\n")
        per_seed.append(runs[key]["rows"])

    lines = [
        f"## compression while distilling, {args.data}, {args.epochs} epochs, "
        f"{args.seeds} seeds",
        "",
        *preamble("compress.py"),
        f"- {args.student}; teacher: the distill benchmark's cached teacher-cnn; each row runs a "
        "built-in recipe from the same float-distilled student (`edgedistill recipes NAME` "
        "shows its stages and budgets)",
        "- no teacher: the same stages on hard labels alone, from the float scratch student "
        "(same initial weights, same batches); gain: median over seeds of the per-seed "
        "difference",
        "- accuracy: median (min–max) over seeds; bytes, arena, MACs and zeros: median, of the "
        "distilled student",
        "",
        "| row | int8, distilled | int8, no teacher | gain (points) | float, distilled | "
        ".tflite bytes | gzipped | TFLM arena bytes (measured) | MACs | kernel zeros | "
        "values per channel (at most) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, label in ROWS.items():
        def values(who, figure, row=row):
            return [seed[row][who][figure] for seed in per_seed]

        gains = [seed[row]["distilled"]["int8_accuracy"] - seed[row]["scratch"]["int8_accuracy"]
                 for seed in per_seed]
        lines.append(
            f"| {label} | {_accuracy(values('distilled', 'int8_accuracy'))} | "
            f"{_accuracy(values('scratch', 'int8_accuracy'))} | {_points(gains)} | "
            f"{_accuracy(values('distilled', 'float_accuracy'))} | "
            f"{_count(values('distilled', 'tflite_bytes'))} | "
            f"{_count(values('distilled', 'gzip_bytes'))} | "
            f"{_count(values('distilled', 'arena_bytes'))} | "
            f"{_count(values('distilled', 'macs'))} | "
            f"{100 * statistics.median(values('distilled', 'zeros')):.0f}% | "
            f"{_count(values('distilled', 'values_per_channel'))} |")
    section = "\n".join([*lines, "", *_goals(per_seed)]) + "\n"
    prepend(section)
    print(section)


if __name__ == "__main__":
    main()
