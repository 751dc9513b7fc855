"""Every kind of distillation against its scratch baseline, over seeds.

Teachers: teacher-cnn (~390k parameters on Fashion-MNIST) trained once per
seed index with its own budget (shift + flip augmentation, early stopping,
best epoch) and kept in ~/.cache/edgedistill/benchmarks. Students:
student-cnn3 (~12.6k parameters; ``--student`` picks another zoo student) and,
for the capacity-gap case, tiny-cnn (~1.3k) with student-cnn (~9k) as assistant.
A variant's scratch baseline is the same student from the same initial
weights on the same batches (same seed, same augmentation) from hard labels
alone; it depends on the student, the seed and the augmentation only, so it
is trained once per triple and shared. Every run's numbers are kept in
~/.cache/edgedistill/benchmarks/distill-runs.jsonl, so an interrupted
benchmark continues where it stopped; RESULTS.md gets medians, min and max
over seeds of the test accuracy, and seconds per epoch of a plain fit, a
cached-teacher distillation and a per-step teacher from one side-by-side run.

Usage (from the repository root):
    python benchmarks/distill.py [--student student-cnn3] [--seeds 3] [--epochs 40]
        [--variants defaults,feature,...] [--timing-epochs 4 (0: no timing)]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _results import preamble, prepend

CACHE = Path.home() / ".cache" / "edgedistill" / "benchmarks"
RUNS = CACHE / "distill-runs.jsonl"
TEACHER = {"teacher_epochs": 40, "teacher_augment": ("shift", "flip")}
FEATURE = "teacher_layer_name=block2,student_layer_name=block2"
EMBEDDING = "teacher_layer_name=embedding,student_layer_name=embedding"

# name -> (description, distill() arguments); "teachers" is how many cached
# teacher-cnn to give (2: an ensemble), 0 for born-again from scratch.
VARIANTS = {
    "defaults": ("CLI defaults: logits_distillation", {}),
    "logits-mse": ("logits_mse alone", {"losses": ["logits_mse"]}),
    "feature": ("feature_distillation (FitNets hint, block2) alone",
                {"losses": [f"feature_distillation:{FEATURE}"]}),
    "attention": ("attention_transfer (block2) alone",
                  {"losses": [f"attention_transfer:{FEATURE}"]}),
    "rkd": ("rkd_distance + rkd_angle (embeddings) alone",
            {"losses": [f"rkd_distance:{EMBEDDING}", f"rkd_angle:{EMBEDDING}"],
             "loss_weights": [1.0, 2.0]}),
    "standardized": ("logits_distillation on standardized logits (Sun et al. 2024) alone",
                     {"losses": ["logits_distillation:standardize=true"]}),
    "dkd": ("decoupled_kd alone (T=4, target 1, non-target 8)", {"losses": ["decoupled_kd"]}),
    "dkd-2": ("decoupled_kd alone (T=4, target 1, non-target 2)",
              {"losses": ["decoupled_kd:non_target_weight=2"]}),
    "best": ("logits_distillation + feature_distillation (block2)",
             {"losses": ["logits_distillation", f"feature_distillation:{FEATURE}"]}),
    "best-patient": ("logits_distillation + feature_distillation (block2), 80 epochs "
                     "(its scratch baseline too)",
                     {"losses": ["logits_distillation", f"feature_distillation:{FEATURE}"],
                      "epochs": 80}),
    "tuned": ("defaults with T and alpha tuned: 8 trials on the validation split",
              {"tune": 8}),
    "augment": ("defaults with consistent teaching: mixup, teacher every step",
                {"augment": ["mixup"]}),
    "ensemble": ("defaults from a 2-teacher ensemble (teacher-cnn, seeds 0 and 1)",
                 {"teachers": 2}),
    "born-again": ("born-again, no teacher: scratch -> generation 1 -> generation 2",
                   {"teachers": 0, "mode": "born-again", "generations": 2}),
    "data-free": ("data-free: 2,000 inputs synthesized from the teacher's BatchNorm",
                  {"mode": "data-free", "synthetic_samples": 2000}),
    "adversarial": ("adversarial: the student on FGSM inputs (epsilon 0.1) against it "
                    "matches the teacher on the clean ones; its scratch baseline is trained "
                    "on them too",
                    {"mode": "adversarial", "adversary": "fgsm:epsilon=0.1"}),
    "adversarial-rs": ("adversarial, FGSM from a random start (Wong et al. 2020: one PGD step "
                       "of 1.25 epsilon, epsilon 0.1); its scratch baseline is trained on it too",
                       {"mode": "adversarial",
                        "adversary": "pgd:epsilon=0.1,steps=1,step_size=0.125"}),
    "tiny-kd": ("capacity gap: tiny-cnn distilled from the teacher",
                {"student": "tiny-cnn"}),
    "tiny-assistant": ("capacity gap: teacher -> student-cnn -> tiny-cnn",
                       {"student": "tiny-cnn", "mode": "assistant",
                        "assistants": ["student-cnn"]}),
}


def teacher_file(data: str, index: int) -> Path:
    """teacher-cnn trained on ``data`` with seed ``index``, trained here once."""
    from edgedistill.distill import distill

    tag = f"{data.replace(':', '_').replace('/', '_')}-{TEACHER['teacher_epochs']}-" \
          f"{'-'.join(TEACHER['teacher_augment'])}-seed{index}"
    path = CACHE / f"teacher-cnn-{tag}.h5"
    if not path.exists():
        print(f"training teacher {index} on {data} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            result = distill("teacher-cnn", "student-cnn", data, Path(tmp) / "run", epochs=1,
                             seed=index, scratch_baseline=False, **TEACHER)
            path.parent.mkdir(parents=True, exist_ok=True)
            Path(result.teacher_path).replace(path)
    return path


def _key(**fields) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _load_runs() -> dict[str, dict]:
    if not RUNS.exists():
        return {}
    return {record["key"]: record for record in map(json.loads, RUNS.read_text().splitlines())}


def _save_run(record: dict) -> None:
    RUNS.parent.mkdir(parents=True, exist_ok=True)
    with RUNS.open("a") as file:
        file.write(json.dumps(record) + "\n")


def run_variant(name: str, seed: int, args, runs: dict) -> dict:
    """The record of ``name`` at ``seed``: from the cache or trained now."""
    from edgedistill.data import load_dataset
    from edgedistill.distill import adversarial, distill

    kwargs = dict(VARIANTS[name][1])
    student = kwargs.pop("student", args.student)
    teachers = kwargs.pop("teachers", 1)
    epochs = kwargs.pop("epochs", args.epochs)
    # An adversarial run's baseline is trained on the same attack, not the plain one, and
    # both records depend on the attack robustness is measured with (the baseline's run
    # measures the scratch student's robustness, so it is retrained with its variant).
    attacks = {}
    if "adversary" in kwargs:
        # Records before 2026-12-06 10:30 matched the teacher on the perturbed inputs.
        attacks = {"adversary": kwargs["adversary"], "evaluation": adversarial.evaluation_adversary(
            adversarial.get(kwargs["adversary"])).to_dict(), "teacher_on": "clean inputs"}
    baseline_key = _key(student=student, augment=kwargs.get("augment", []), seed=seed,
                        epochs=epochs, data=args.data, **attacks)
    key = _key(variant=name, kwargs=kwargs, student=student, teachers=teachers, seed=seed,
               epochs=epochs, data=args.data, teacher=TEACHER, **attacks)
    if key in runs:
        return runs[key]
    with_baseline = baseline_key not in runs and kwargs.get("mode") != "born-again"
    print(f"seed {seed}: {name}{' + scratch' if with_baseline else ''}", file=sys.stderr,
          flush=True)
    teacher = [str(teacher_file(args.data, i)) for i in range(teachers)] or None
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = distill(teacher[0] if teachers == 1 else teacher, student,
                         load_dataset(args.data, seed=seed), Path(tmp) / "run",
                         epochs=epochs, seed=seed, scratch_baseline=with_baseline,
                         **kwargs)
    record = {"key": key, "variant": name, "seed": seed, "accuracy": result.student_accuracy,
              "teacher_accuracy": result.teacher_accuracy, "teacher_params":
              result.teacher_params, "student_params":
              result.student_params, "chain": [c["accuracy"] for c in result.chain],
              "data_free": result.data_free, "adversarial": result.adversarial,
              "tuning": result.tuning and
              {k: round(float(v), 3) for k, v in result.tuning["chosen"].items()},
              "minutes": (time.perf_counter() - started) / 60, "baseline": baseline_key}
    _save_run(record)
    runs[key] = record
    if result.scratch_accuracy is not None and kwargs.get("mode") != "born-again":
        runs[baseline_key] = {"key": baseline_key, "accuracy": result.scratch_accuracy}
        _save_run(runs[baseline_key])
    if kwargs.get("mode") == "born-again":  # generation 0 is the scratch student itself
        record["scratch"] = result.scratch_accuracy
    return record


def epoch_seconds(args) -> dict[str, float]:
    """Median seconds per epoch of a plain fit, cached and per-step distillation, side by side."""
    from edgedistill.data import load_dataset
    from edgedistill.distill import distill

    data = load_dataset(args.data, seed=0)
    teacher = str(teacher_file(args.data, 0))
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cache_teacher in (True, False):
            result = distill(teacher, args.student, data, Path(tmp) / str(cache_teacher),
                             epochs=args.timing_epochs, scratch_baseline=cache_teacher,
                             cache_teacher=cache_teacher)
            label = "cached-teacher distill" if cache_teacher else "per-step-teacher distill"
            seconds[label] = result.fits["distill"]["median_epoch_seconds"]
            if cache_teacher:
                seconds["plain fit"] = result.fits["scratch"]["median_epoch_seconds"]
    return seconds


def _stats(values) -> str:
    return (f"{100 * statistics.median(values):.2f}% | {100 * min(values):.2f}% | "
            f"{100 * max(values):.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--student", default="student-cnn3",
                        help="the zoo student of every variant but the capacity-gap ones")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--timing-epochs", type=int, default=4,
                        help="epochs of the seconds-per-epoch runs; 0 leaves them out (on a "
                             "busy machine their ratios mean little)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    started = time.perf_counter()
    runs = _load_runs()
    records = {name: [run_variant(name, seed, args, runs) for seed in range(args.seeds)]
               for name in names}
    seconds = epoch_seconds(args) if args.timing_epochs else {}
    minutes = (time.perf_counter() - started) / 60

    def scratch(record):
        return record.get("scratch") or runs[record["baseline"]]["accuracy"]

    lines = [
        f"## distillation vs scratch, {args.data}, {args.epochs} epochs, {args.seeds} seeds",
        "",
        *preamble("distill.py"),
        f"- teacher: teacher-cnn ({records[names[0]][0]['teacher_params']:,} parameters), "
        f"{TEACHER['teacher_epochs']} epochs at "
        f"most with {' + '.join(TEACHER['teacher_augment'])}, test accuracy "
        f"{_stats([r['teacher_accuracy'] for r in records[names[0]] if r['teacher_accuracy']])}"
        " (median | min | max of seeds); students: "
        + ", ".join(sorted({f"{VARIANTS[n][1].get('student', args.student)} "
                            f"({records[n][0]['student_params']:,} parameters)" for n in names})),
        f"- wall time of this invocation: {minutes:.0f} min (runs already in "
        f"{RUNS.name} are reused)",
        "",
        "| variant | median | min | max | its scratch (median) | median gain (points) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        accuracy = [r["accuracy"] for r in records[name]]
        baseline = [scratch(r) for r in records[name]]
        gains = [a - b for a, b in zip(accuracy, baseline, strict=True)]
        lines.append(f"| {name}: {VARIANTS[name][0]} | {_stats(accuracy)} | "
                     f"{100 * statistics.median(baseline):.2f}% | "
                     f"{100 * statistics.median(gains):+.2f} |")
    extra = []
    for name in names:
        for r in records[name]:
            if len(r.get("chain") or ()) > 1:
                extra.append(f"- {name}, seed {r['seed']}: chain accuracies "
                             + ", ".join(f"{100 * a:.2f}%" for a in r["chain"]))
            if r.get("data_free"):
                extra.append(f"- {name}, seed {r['seed']}: real-data reference "
                             f"{100 * r['data_free']['real_data_accuracy']:.2f}%, gap "
                             f"{100 * r['data_free']['gap']:.2f} points")
            if r.get("adversarial"):
                extra.append(f"- {name}, seed {r['seed']}: {_under_attack(r['adversarial'])}")
            if r.get("tuning"):
                extra.append(f"- {name}, seed {r['seed']}: chose {r['tuning']}")
    lines += ["", *extra, ""]
    if seconds:
        lines += [f"| seconds per epoch ({args.timing_epochs} epochs, seed 0, median) | s | "
                  "ratio to plain fit |", "|---|---:|---:|"]
        lines += [f"| {label} | {value:.2f} | {value / seconds['plain fit']:.2f} |"
                  for label, value in seconds.items()]
    section = "\n".join(lines) + "\n"
    prepend(section)
    print(section)


def _under_attack(robust: dict) -> str:
    """Student, scratch and teacher accuracy under the evaluation and the training attack."""
    from edgedistill.distill import adversarial

    def figures(accuracies, adversary):
        attack = adversarial.get(adversary).label
        return (f"under {attack} (epsilon {adversary['epsilon']:g}): " + ", ".join(
            f"{role} {100 * accuracies[f'{role}_accuracy']:.2f}%"
            for role in ("student", "scratch", "teacher") if f"{role}_accuracy" in accuracies))

    parts = [figures(robust, robust["evaluation"])]
    if robust.get("training_attack"):
        parts.append(figures(robust["training_attack"], robust["adversary"]))
    return "; ".join(parts)


if __name__ == "__main__":
    main()
