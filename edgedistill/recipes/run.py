"""Running a staged recipe: each stage continues from the one before.

Every stage writes its own directory under the recipe's output directory
(``1-distill/``, ``2-prune/``, ``4-int8/student/``, ...), and ``recipe.json``
and ``report.md`` collect every stage's figures. A killed run continues
with ``resume``: finished stages are read back, the interrupted one resumes
from its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

from edgedistill._fileio import json_text, relocated, resumable_output_dir, write_text_atomic
from edgedistill.convert import ConversionResult
from edgedistill.distill import DistillResult
from edgedistill.errors import EdgeDistillError
from edgedistill.micro import MicroBundle
from edgedistill.models import is_zoo_name
from edgedistill.progress import Progress, SilentProgress
from edgedistill.recipes.schema import Recipe, Stage

RESULT_FILE = "recipe.json"
REPORT_MD = "report.md"
# Finished stages' results, kept while the recipe runs so that --resume can skip them.
_DONE_DIR = "stages-done"


@dataclasses.dataclass(frozen=True)
class StageResult:
    """One stage's outcome: a distill stage's result, or a convert stage's two conversions
    (the student's and the scratch student's) and the zeros and distinct values of the
    student's kernels as the .tflite holds them."""

    stage: Stage
    out_dir: str
    distill: DistillResult | None = None
    student: ConversionResult | None = None
    scratch: ConversionResult | None = None
    micro: MicroBundle | None = None
    kernels: tuple[dict, ...] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"stage": self.stage.to_dict(), "out_dir": self.out_dir,
                "distill": self.distill.to_dict() if self.distill else None,
                "student": self.student.to_dict() if self.student else None,
                "scratch": self.scratch.to_dict() if self.scratch else None,
                "micro": self.micro.to_dict() if self.micro else None,
                "kernels": self.kernels, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> StageResult:
        return cls(stage=Stage(**data["stage"]), out_dir=data["out_dir"],
                   distill=_rebuilt(DistillResult, data["distill"]),
                   student=data["student"] and ConversionResult.from_dict(data["student"]),
                   scratch=data["scratch"] and ConversionResult.from_dict(data["scratch"]),
                   micro=MicroBundle.from_dict(data["micro"]) if data["micro"] else None,
                   kernels=None if data["kernels"] is None else tuple(data["kernels"]),
                   seconds=data["seconds"])


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """Every stage's result, in order; the last student is the recipe's product."""

    out_dir: str
    recipe: Recipe
    stages: tuple[StageResult, ...]
    seconds: float

    @property
    def student_path(self) -> str | None:
        """The last model the recipe produced: the latest .tflite, else the latest student."""
        for stage in reversed(self.stages):
            if stage.student:
                return stage.student.tflite_path
            if stage.distill:
                return stage.distill.student_path
        return None

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "recipe": self.recipe.to_dict(),
                "stages": [stage.to_dict() for stage in self.stages],
                "student_path": self.student_path, "seconds": self.seconds}


def _rebuilt(cls, data: dict | None):
    """A result dataclass from its ``to_dict()``: lists back to tuples, derived keys dropped."""
    if data is None:
        return None
    values = {}
    for field in dataclasses.fields(cls):
        value = data[field.name]
        values[field.name] = tuple(value) if str(field.type).startswith("tuple") and \
            value is not None else value
    return cls(**values)


@dataclasses.dataclass
class _Chain:
    """What the next stage starts from."""

    student: object
    scratch: str | None = None
    trained_teachers: dict = dataclasses.field(default_factory=dict)

    def teacher(self, spec):
        """``spec`` with zoo teachers an earlier stage trained replaced by their files."""
        if isinstance(spec, list | tuple):
            return [self.trained_teachers.get(s, s) if isinstance(s, str) else s for s in spec]
        return self.trained_teachers.get(spec, spec) if isinstance(spec, str) else spec

    def advance(self, result: StageResult, teacher_spec) -> None:
        if result.distill is None:
            return
        self.student, self.scratch = result.distill.student_path, result.distill.scratch_path
        specs = teacher_spec if isinstance(teacher_spec, list | tuple) else [teacher_spec]
        for spec, path in zip(specs, result.distill.teacher_paths, strict=False):
            if isinstance(spec, str) and is_zoo_name(spec):
                self.trained_teachers[spec] = path


def run_recipe(recipe: Recipe, out_dir: str | os.PathLike | None = None, *,
               force: bool = False, resume: bool = False,
               progress: Progress | None = None) -> RecipeResult:
    """Runs ``recipe``'s stages in order into ``out_dir`` (default: the recipe's ``out``).

    Example:
        >>> recipe = recipes.get("prune-pqat").with_shared(
        ...     {"teacher": "teacher.h5", "student": "student-cnn", "data": "fashion-mnist"})
        >>> result = run_recipe(recipe, "runs/pruned")
        >>> [s.distill.student_accuracy for s in result.stages if s.distill]
    """
    from edgedistill.data import load_dataset

    progress = progress or SilentProgress()
    shared = dict(recipe.shared)
    recipe_out = shared.pop("out_dir", None)
    out_dir = out_dir or recipe_out
    for key, option in (("student", "--student"), ("data", "--data")):
        if not shared.get(key):
            raise EdgeDistillError(f"{option}: required (on the command line or in the recipe)")
    if not out_dir:
        raise EdgeDistillError("--out: required (on the command line or in the recipe)")
    data = shared.pop("data")
    if not hasattr(data, "num_classes"):
        data = load_dataset(data, seed=shared.get("seed", 0))
    chain = _Chain(student=shared.pop("student"), scratch=shared.pop("scratch_student", None))
    started = time.perf_counter()
    results = []
    with resumable_output_dir(out_dir, force, resume,
                              progress_dir=(_DONE_DIR, ".*.partial/checkpoints")) as work:
        for index, stage in enumerate(recipe.stages, 1):
            progress.stage("recipe", f"stage {index}/{len(recipe.stages)}: {stage.name}")
            settings = {**shared, **stage.settings}
            result = _finished(work, stage) if resume else None
            if result is None:
                stage_started = time.perf_counter()
                run = _RUNNERS[stage.kind]
                result = dataclasses.replace(
                    run(stage, settings, chain, work / stage.name, data, resume, progress),
                    seconds=time.perf_counter() - stage_started)
                record = work / _DONE_DIR / stage.name / "result.json"
                record.parent.mkdir(parents=True, exist_ok=True)
                # Renamed into place: a kill mid-write must not spoil --resume.
                write_text_atomic(record, json_text(result.to_dict()))
            chain.advance(result, settings.get("teacher"))
            results.append(result)
        result = relocated(RecipeResult(str(work), recipe, tuple(results),
                                        time.perf_counter() - started), work, Path(out_dir))
        from edgedistill.reports.training import recipe_report

        write_text_atomic(work / RESULT_FILE, json_text(result.to_dict()))
        write_text_atomic(work / REPORT_MD, recipe_report(result).render("md"))
    return result


def _finished(work: Path, stage: Stage) -> StageResult | None:
    """A stage that finished before the run was interrupted, read back."""
    record = work / _DONE_DIR / stage.name / "result.json"
    if not record.is_file():
        return None
    try:
        result = StageResult.from_dict(json.loads(record.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EdgeDistillError(f"{record}: unreadable ({type(error).__name__}); pass --force "
                               "to start the recipe over") from None
    if result.stage.to_dict() != stage.to_dict():
        raise EdgeDistillError(f"{record}: the recipe's stage {stage.name} has changed since "
                               "the interrupted run; pass --force to start over")
    return result


def _start_stage(directory: Path, resume: bool) -> bool:
    """Clears ``directory`` for a stage and says whether it resumes its own interrupted
    run. A stage that finished just before a kill, but was not yet recorded, runs again."""
    if directory.exists():
        shutil.rmtree(directory)
    return resume and directory.with_name(f".{directory.name}.partial").exists()


def _distill_stage(stage, settings, chain: _Chain, directory: Path, data, resume,
                   progress) -> StageResult:
    from edgedistill.distill import distill

    settings = dict(settings)
    teacher = chain.teacher(settings.pop("teacher", None))
    result = distill(teacher, chain.student, data, directory, scratch_student=chain.scratch,
                     resume=_start_stage(directory, resume), progress=progress, **settings)
    return StageResult(stage=stage, out_dir=str(directory), distill=result)


def _convert_stage(stage, settings, chain: _Chain, directory: Path, data, resume,
                   progress) -> StageResult:
    from edgedistill.convert import convert, modes
    from edgedistill.convert.litert import kernel_statistics
    from edgedistill.micro import BUNDLE_DIR, write_evaluated_bundle

    _start_stage(directory, resume)
    if isinstance(chain.student, str) and is_zoo_name(chain.student):
        raise EdgeDistillError(f"stage {stage.name}: nothing to convert yet: the student is "
                               f"the zoo name {chain.student}; put a distill stage first")
    options = {key: stage.settings[key] for key in ("mode", "io_type", "calibration_per_class",
                                                    "max_accuracy_drop")
               if key in stage.settings}
    seed = settings.get("seed", 0)
    student = convert(chain.student, data, directory / "student", seed=seed, progress=progress,
                      **options)
    scratch = None
    if chain.scratch:
        scratch = convert(chain.scratch, data, directory / "scratch", seed=seed,
                          progress=progress, **{**options, "max_accuracy_drop": None})
    bundle = None
    if stage.settings.get("micro", modes.get(student.mode).full_integer):
        bundle = write_evaluated_bundle(student.tflite_path,
                                        directory / "student" / BUNDLE_DIR, data,
                                        progress=progress)
    return StageResult(stage=stage, out_dir=str(directory), student=student, scratch=scratch,
                       micro=bundle, kernels=kernel_statistics(student.tflite_path))


_RUNNERS = {"distill": _distill_stage, "convert": _convert_stage}
