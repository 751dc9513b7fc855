"""The whole path in one call: teacher, distilled QAT student, int8, Micro, profile.

This is what ``edgedistill quickstart`` runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill._fileio import json_text, output_dir, relocated, write_text_atomic
from edgedistill.progress import Progress, SilentProgress

if TYPE_CHECKING:  # The stages import TensorFlow; the pipeline imports them when it runs.
    from edgedistill.convert import ConversionResult
    from edgedistill.distill import DistillResult
    from edgedistill.micro import MicroBundle
    from edgedistill.profile import ProfileReport

DISTILL_DIR = "distill"
STUDENT_DIR = "student-int8"
SCRATCH_DIR = "scratch-int8"
# The report in every format a file takes, by name (see edgedistill.reports).
REPORT_FILES = {"report.json": "json", "report.md": "md", "report.html": "html"}


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """Every stage's result, and the wall-clock seconds of each stage."""

    out_dir: str
    distill: DistillResult
    student: ConversionResult  # the distilled student, int8
    scratch: ConversionResult  # the from-scratch student, int8
    micro: MicroBundle  # of the distilled student's int8 model
    profile: ProfileReport  # of the distilled student's int8 model, with its measured arena
    seconds: dict

    def to_dict(self) -> dict:
        return {
            "out_dir": self.out_dir,
            "distill": self.distill.to_dict(),
            "student": self.student.to_dict(),
            "scratch": self.scratch.to_dict(),
            "micro": self.micro.to_dict(),
            "profile": self.profile.to_dict(),
            "seconds": self.seconds,
        }


def run_pipeline(
    out_dir: str | os.PathLike,
    *,
    data: str = "fashion-mnist",
    max_train_samples: int | None = 8_000,
    teacher: str = "teacher-cnn",
    student: str = "student-cnn",
    temperature: float = 2.0,
    alpha: float = 0.5,
    epochs: int = 40,
    learning_rate: float = 5e-3,
    schedule: str = "cosine",
    patience: int | None = None,
    teacher_epochs: int = 20,
    teacher_learning_rate: float = 1e-3,
    teacher_augment: tuple = ("shift",),
    batch_size: int = 64,
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> PipelineResult:
    """Trains, distills with QAT, converts to int8, bundles for TFLM and profiles.

    Each stage takes the one before's result: distill, convert, micro, profile.
    Writes ``out_dir/distill``, ``out_dir/student-int8`` (with ``micro/``),
    ``out_dir/scratch-int8``, and the report as ``report.json``, ``report.md`` and
    ``report.html``.

    The defaults are the quickstart's: 8,000 Fashion-MNIST training images
    (``max_train_samples``; validation and test splits whole), where the
    distilled student beats the same student trained from scratch in under
    3 minutes on 2 cores (benchmarks/quickstart.py). On digits the student
    from scratch is already within 2 points of the teacher, and distillation
    has no room to show.

    Example:
        >>> result = run_pipeline("quickstart")
        >>> result.student.tflite_accuracy, result.scratch.tflite_accuracy
        (0.88..., 0.87...)
    """
    from edgedistill import targets
    from edgedistill.convert import convert
    from edgedistill.convert.run import RESULT_FILE as conversion_result_file
    from edgedistill.data import load_dataset
    from edgedistill.distill import distill
    from edgedistill.distill.run import RESULT_FILE as distill_result_file
    from edgedistill.micro import BUNDLE_DIR, write_evaluated_bundle
    from edgedistill.profile import profile_model
    from edgedistill.reports.pipeline import pipeline_report

    progress = progress or SilentProgress()
    dataset = load_dataset(data, seed=seed, max_train_samples=max_train_samples)
    with output_dir(out_dir, force) as out:
        seconds = {}
        started = time.perf_counter()
        distilled = distill(
            teacher, student, dataset, out / DISTILL_DIR, temperature=temperature, alpha=alpha,
            epochs=epochs, learning_rate=learning_rate, schedule=schedule, patience=patience,
            teacher_epochs=teacher_epochs, teacher_learning_rate=teacher_learning_rate,
            teacher_augment=teacher_augment,
            batch_size=batch_size, seed=seed, qat=True, progress=progress,
        )
        seconds.update(distilled.seconds)
        stage_started = time.perf_counter()
        converted = convert(
            distilled.student_path, dataset, out / STUDENT_DIR, seed=seed, progress=progress
        )
        scratch = convert(
            distilled.scratch_path, dataset, out / SCRATCH_DIR, seed=seed, progress=progress
        )
        seconds["convert"] = time.perf_counter() - stage_started

        stage_started = time.perf_counter()
        bundle = write_evaluated_bundle(converted.tflite_path, out / STUDENT_DIR / BUNDLE_DIR,
                                        dataset, progress=progress)
        seconds["micro"] = time.perf_counter() - stage_started

        progress.stage("profile", "int8 student on every built-in target")
        stage_started = time.perf_counter()
        report = profile_model(converted.tflite_path, targets.list_targets(),
                               arena_bytes=bundle.arena.recommended_bytes)
        seconds["profile"] = time.perf_counter() - stage_started
        seconds["total"] = time.perf_counter() - started
        result = relocated(PipelineResult(str(out), distilled, converted, scratch, bundle, report,
                                          seconds), out, Path(out_dir))
        write_text_atomic(out / DISTILL_DIR / distill_result_file,
                          json_text(result.distill.to_dict()), force=True)
        for stage, conversion in ((STUDENT_DIR, result.student), (SCRATCH_DIR, result.scratch)):
            write_text_atomic(out / stage / conversion_result_file,
                              json_text(conversion.to_dict()), force=True)
        summary = pipeline_report(result)
        for name, fmt in REPORT_FILES.items():
            write_text_atomic(out / name, summary.render(fmt))
    return result
