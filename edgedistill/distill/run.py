"""``distill``: the stage behind ``edgedistill distill`` and its Python API twin."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from edgedistill import zoo
from edgedistill._fileio import check_output_dir, output_dir
from edgedistill._tf import keras, tfmot
from edgedistill.compress import quantize_student
from edgedistill.data import Dataset, load_dataset
from edgedistill.distill.distiller import Distiller
from edgedistill.distill.losses import LogitsDistillation
from edgedistill.errors import EdgeDistillError
from edgedistill.models import is_zoo_name, load_keras_model, output_units, save_keras_model
from edgedistill.progress import Progress, SilentProgress

# HDF5, because tfmot's QAT wrappers do not round-trip through tf_keras 2.21's
# .keras format (the reloaded quantize_layer expects 5 variables, finds 3).
STUDENT_FILE = "student.h5"
TEACHER_FILE = "teacher.h5"
SCRATCH_FILE = "scratch_student.h5"
RESULT_FILE = "distill.json"


@dataclasses.dataclass(frozen=True)
class DistillResult:
    """What ``distill`` produced and measured; accuracies are on the test split."""

    out_dir: str
    student_path: str
    teacher_path: str | None
    scratch_path: str | None
    teacher_accuracy: float
    student_accuracy: float
    scratch_accuracy: float | None
    teacher_params: int
    student_params: int
    temperature: float
    alpha: float
    epochs: int
    batch_size: int
    seed: int
    qat: bool
    data: dict
    seconds: dict

    @property
    def size_ratio(self) -> float:
        return self.teacher_params / max(self.student_params, 1)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "size_ratio": self.size_ratio}


class _EpochProgress:
    """Builds the Keras callback that forwards epoch ends to a Progress."""

    def __new__(cls, progress: Progress, stage: str, epochs: int):
        k = keras()

        class Callback(k.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                progress.epoch(stage, epoch + 1, epochs, dict(logs or {}))

        return Callback()


def _count_params(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.weights if "quantize" not in w.name))


def _accuracy(model, data: Dataset, batch_size: int) -> float:
    k = keras()
    model.compile(metrics=[k.metrics.SparseCategoricalAccuracy(name="accuracy")])
    results = model.evaluate(data.tf_dataset("test", batch_size), verbose=0, return_dict=True)
    return float(results["accuracy"])


def _fit(model, data: Dataset, *, epochs, batch_size, seed, progress, stage):
    """Fits a compiled model (or Distiller) on the train split, validating on val."""
    model.fit(
        data.tf_dataset("train", batch_size, shuffle=True, seed=seed),
        validation_data=data.tf_dataset("val", batch_size),
        epochs=epochs,
        verbose=0,
        callbacks=[_EpochProgress(progress, stage, epochs)],
    )


def _fit_hard_labels(model, data, *, learning_rate, **fit_args):
    k = keras()
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[k.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    _fit(model, data, **fit_args)


def _resolve(spec, data: Dataset):
    """A zoo name builds a fresh model; anything else is loaded from file."""
    if is_zoo_name(spec):
        return zoo.build(str(spec), data.input_shape, data.num_classes), True
    return load_keras_model(spec), False


def distill(
    teacher: str | os.PathLike,
    student: str | os.PathLike,
    data: str | os.PathLike | Dataset,
    out_dir: str | os.PathLike,
    *,
    temperature: float = 4.0,
    alpha: float = 0.1,
    epochs: int = 20,
    teacher_epochs: int | None = None,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    seed: int = 0,
    qat: bool = False,
    scratch_baseline: bool = True,
    force: bool = False,
    progress: Progress | None = None,
) -> DistillResult:
    """Distills ``teacher`` into ``student`` on ``data`` and saves the student.

    Args:
        teacher: a tf_keras model file (.keras/.h5) or a zoo name; a zoo name is
            trained on ``data`` first (``teacher_epochs``, default ``epochs``).
        student: a tf_keras model file or a zoo name (built fresh).
        data: ``"digits"``, ``"fashion-mnist[:DIR]"``, a ``.npz`` path or a Dataset.
        out_dir: receives student.h5, teacher.h5 (when trained here),
            scratch_student.h5 and distill.json; must be empty unless ``force``.
        temperature: softmax temperature of the soft targets.
        alpha: weight of the hard-label loss; the soft-target loss gets ``1 - alpha``.
        epochs: distillation epochs (and those of the from-scratch baseline).
        qat: train the student with tfmot quantization-aware training.
        scratch_baseline: also train the same student on hard labels alone for
            the same epochs, to show what distillation adds.

    Returns:
        A :class:`DistillResult` with test accuracies, sizes and timings.

    Example:
        >>> result = distill("teacher-cnn", "student-cnn", "digits", "runs/digits", qat=True)
        >>> result.student_accuracy > 0.9
        True
    """
    progress = progress or SilentProgress()
    check_output_dir(out_dir, force)
    if epochs < 1:
        raise EdgeDistillError(f"epochs: must be at least 1, got {epochs}")
    if batch_size < 1:
        raise EdgeDistillError(f"batch-size: must be at least 1, got {batch_size}")
    distillation_loss = LogitsDistillation(temperature=temperature)
    if not 0.0 <= alpha <= 1.0:
        raise EdgeDistillError(f"alpha: must lie in [0, 1], got {alpha}")
    if not isinstance(data, Dataset):
        data = load_dataset(data, seed=seed)
    k = keras()
    k.utils.set_random_seed(seed)

    teacher_model, train_teacher = _resolve(teacher, data)
    student_model, _ = _resolve(student, data)
    teacher_name, student_name = f"teacher {teacher}", f"student {student}"
    if teacher_model.output_shape != student_model.output_shape:
        raise EdgeDistillError(
            f"{teacher} and {student}: output shapes differ ({teacher_model.output_shape} vs "
            f"{student_model.output_shape}); the student must predict the teacher's classes"
        )
    for model, name in ((teacher_model, teacher_name), (student_model, student_name)):
        data.check_fits(model.input_shape, output_units(model, name), name)
    float_student = student_model

    seconds = {}
    with output_dir(out_dir, force) as tmp:
        tmp = Path(tmp)
        if train_teacher:
            progress.stage("teacher", f"training {teacher} on {data.name}")
            started = time.perf_counter()
            _fit_hard_labels(
                teacher_model, data, epochs=teacher_epochs or epochs, batch_size=batch_size,
                seed=seed, learning_rate=learning_rate, progress=progress, stage="teacher",
            )
            seconds["teacher"] = time.perf_counter() - started
            save_keras_model(teacher_model, tmp / TEACHER_FILE)
        teacher_accuracy = _accuracy(teacher_model, data, batch_size)

        progress.stage("distill", f"{student} from {teacher}" + (" with QAT" if qat else ""))
        started = time.perf_counter()
        if qat:
            student_model = quantize_student(student_model)
        distiller = Distiller(
            teacher=teacher_model,
            student=student_model,
            distillation_losses=distillation_loss,
            student_loss_weight=alpha,
        )
        distiller.compile(
            optimizer=k.optimizers.Adam(learning_rate),
            metrics=[k.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        _fit(distiller, data, epochs=epochs, batch_size=batch_size, seed=seed,
             progress=progress, stage="distill")
        seconds["distill"] = time.perf_counter() - started
        student_accuracy = _accuracy(student_model, data, batch_size)
        save_keras_model(student_model, tmp / STUDENT_FILE)

        scratch_accuracy = None
        if scratch_baseline:
            progress.stage("scratch", f"{student} on hard labels only, same epochs")
            started = time.perf_counter()
            k.utils.set_random_seed(seed)
            with tfmot().quantization.keras.quantize_scope():
                scratch = k.models.clone_model(float_student)
            if qat:
                scratch = quantize_student(scratch)
            _fit_hard_labels(
                scratch, data, epochs=epochs, batch_size=batch_size, seed=seed,
                learning_rate=learning_rate, progress=progress, stage="scratch",
            )
            seconds["scratch"] = time.perf_counter() - started
            scratch_accuracy = _accuracy(scratch, data, batch_size)
            save_keras_model(scratch, tmp / SCRATCH_FILE)

        out = Path(out_dir)
        result = DistillResult(
            out_dir=str(out),
            student_path=str(out / STUDENT_FILE),
            teacher_path=str(out / TEACHER_FILE) if train_teacher else str(teacher),
            scratch_path=str(out / SCRATCH_FILE) if scratch_baseline else None,
            teacher_accuracy=teacher_accuracy,
            student_accuracy=student_accuracy,
            scratch_accuracy=scratch_accuracy,
            teacher_params=_count_params(teacher_model),
            student_params=_count_params(float_student),
            temperature=temperature,
            alpha=alpha,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            qat=qat,
            data=data.to_dict(),
            seconds=seconds,
        )
        (tmp / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
