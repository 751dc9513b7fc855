"""``distill``: the stage behind ``edgedistill distill`` and its Python API twin.

A distillation result means nothing without its baseline, so by default the
same student is also trained from scratch: the same initial weights, the same
batches in the same order with the same augmentation draws, the same budget.
Only what it learns from differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgedistill import zoo
from edgedistill._fileio import check_output_dir, output_dir
from edgedistill._tf import keras, tfmot
from edgedistill.compress import quantize_student
from edgedistill.data import Dataset, load_dataset
from edgedistill.distill import augment as augment_lib
from edgedistill.distill import losses as losses_lib
from edgedistill.distill.cache import cached_teacher_outputs
from edgedistill.distill.distiller import Distiller, find_layer
from edgedistill.distill.teachers import EnsembleTeacher, Teacher, as_teacher, load_teacher
from edgedistill.distill.training import Budget, compile_distiller, compile_student, fit
from edgedistill.errors import EdgeDistillError
from edgedistill.models import is_zoo_name, load_keras_model, output_units, save_keras_model
from edgedistill.progress import Progress, SilentProgress

# HDF5, because tfmot's QAT wrappers do not round-trip through tf_keras 2.21's
# .keras format (the reloaded quantize_layer expects 5 variables, finds 3).
STUDENT_FILE = "student.h5"
SCRATCH_FILE = "scratch_student.h5"
RESULT_FILE = "distill.json"
# A teacher no better than this over the scratch student has little to teach.
TEACHER_MARGIN = 0.01


@dataclasses.dataclass(frozen=True)
class DistillResult:
    """What ``distill`` produced and measured; accuracies are on the test split."""

    out_dir: str
    student_path: str
    teacher_paths: tuple[str, ...]
    scratch_path: str | None
    teacher_accuracy: float | None
    student_accuracy: float
    scratch_accuracy: float | None
    teacher_params: int | None
    student_params: int
    losses: tuple[dict, ...]
    loss_weights: tuple[float, ...]
    temperature: float
    alpha: float
    augment: tuple[dict, ...]
    budget: dict
    batch_size: int
    seed: int
    qat: bool
    teacher: dict
    teacher_outputs: dict | None
    fits: dict
    warnings: tuple[str, ...]
    data: dict
    seconds: dict

    @property
    def teacher_path(self) -> str:
        return self.teacher_paths[0]

    @property
    def epochs(self) -> int:
        return self.budget["epochs"]

    @property
    def size_ratio(self) -> float | None:
        if self.teacher_params is None:
            return None
        return self.teacher_params / max(self.student_params, 1)

    @property
    def gain(self) -> float | None:
        """Distilled minus from-scratch test accuracy."""
        if self.scratch_accuracy is None:
            return None
        return self.student_accuracy - self.scratch_accuracy

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "size_ratio": self.size_ratio, "gain": self.gain}


def distill(
    teacher,
    student,
    data: str | os.PathLike | Dataset,
    out_dir: str | os.PathLike,
    *,
    losses: Sequence | None = None,
    loss_weights: Sequence[float] | None = None,
    temperature: float = 4.0,
    alpha: float = 0.1,
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    schedule: str = "cosine",
    patience: int | None = None,
    augment: Sequence = (),
    teacher_weights: Sequence[float] | None = None,
    teacher_epochs: int = 30,
    teacher_learning_rate: float = 1e-3,
    seed: int = 0,
    qat: bool = False,
    scratch_baseline: bool = True,
    cache_teacher: bool = True,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> DistillResult:
    """Distills ``teacher`` into ``student`` on ``data`` and saves the student.

    Args:
        teacher: a model file (tf_keras or Keras 3 ``.keras``/``.h5``, a
            SavedModel directory, ``.tflite``, ``.onnx``, or a ``.npy`` of
            precomputed outputs for the training rows), a zoo name (trained
            here on ``data`` with its own budget), a model, or a list of
            these: an ensemble whose soft targets are averaged.
        student: a tf_keras model file, a zoo name (built fresh) or a model.
        data: ``"digits"``, ``"fashion-mnist[:DIR]"``, a ``.npz`` path or a Dataset.
        out_dir: receives student.h5, scratch_student.h5, teacher.h5 (a zoo
            teacher) and distill.json; must be empty unless ``force``.
        losses: distillation losses (names, ``"name:key=value,..."`` specs,
            configs or instances); default a
            :class:`~edgedistill.distill.losses.LogitsDistillation` at ``temperature``.
        loss_weights: one weight per loss (default 1 each).
        temperature: the temperature of the default loss.
        alpha: weight of the hard-label loss; the distillation losses get ``1 - alpha``.
        epochs, learning_rate, schedule, patience: the student's budget
            (see :class:`~edgedistill.distill.training.Budget`), the same for
            the distilled and the from-scratch student.
        augment: augmentations applied to each batch, seen identically by
            teacher and student (consistent teaching); names or instances
            from :mod:`edgedistill.distill.augment`. Without augmentation the
            teacher's outputs are computed once and cached on disk.
        teacher_weights: ensemble weights, one per teacher.
        teacher_epochs, teacher_learning_rate: a zoo teacher's own budget
            (early stopping on the validation split, best epoch restored).
        qat: train the student with tfmot quantization-aware training.
        scratch_baseline: also train the student from the same initial
            weights on the same batches from hard labels alone.
        cache_teacher: without augmentation, compute the teacher's outputs
            once and read them from a memory-mapped cache; False runs the
            teacher on every batch.
        cache_dir: where teacher outputs are cached (default
            ``$EDGEDISTILL_CACHE_DIR`` or ``~/.cache/edgedistill``).

    Returns:
        A :class:`DistillResult` with test accuracies, sizes, timings and warnings.

    Example:
        >>> result = distill("teacher-cnn", "student-cnn", "digits", "runs/digits", qat=True)
        >>> result.student_accuracy, result.scratch_accuracy
    """
    progress = progress or SilentProgress()
    check_output_dir(out_dir, force)
    budget = Budget(epochs=epochs, learning_rate=learning_rate, schedule=schedule,
                    patience=patience)
    teacher_budget = Budget(epochs=teacher_epochs, learning_rate=teacher_learning_rate,
                            patience=max(3, teacher_epochs // 5), monitor="val_loss")
    if batch_size < 1:
        raise EdgeDistillError(f"batch-size: must be at least 1, got {batch_size}")
    loss_objects = [losses_lib.get(spec) for spec in
                    (losses or [losses_lib.LogitsDistillation(temperature=temperature)])]
    augmentations = [augment_lib.get(spec) for spec in augment]
    if not isinstance(data, Dataset):
        data = load_dataset(data, seed=seed)
    k = keras()
    k.utils.set_random_seed(seed)

    student_model = _student(student, data)
    initial_weights = student_model.get_weights()
    teacher_specs = list(teacher) if isinstance(teacher, list | tuple) else [teacher]
    if not teacher_specs:
        raise EdgeDistillError("teacher: give at least one teacher")
    _check_layer_names(loss_objects, student_model, teacher_specs, data)

    seconds: dict[str, float] = {}
    with output_dir(out_dir, force) as tmp:
        tmp, out = Path(tmp), Path(out_dir)
        members, paths, records = [], [], {}
        started = time.perf_counter()
        for index, spec in enumerate(teacher_specs):
            if is_zoo_name(spec):
                file = "teacher.h5" if len(teacher_specs) == 1 else f"teacher-{index}.h5"
                model, records[f"teacher-{index}"] = _train_zoo_teacher(
                    str(spec), data, teacher_budget, batch_size, seed + index, progress)
                save_keras_model(model, tmp / file)
                members.append(as_teacher(model))
                paths.append(str(out / file))
            else:
                members.append(spec if isinstance(spec, Teacher) else
                               as_teacher(spec) if isinstance(spec, k.Model) else
                               load_teacher(spec))
                paths.append(str(spec) if isinstance(spec, str | os.PathLike) else members[-1].name)
        seconds["teacher"] = time.perf_counter() - started
        the_teacher = members[0] if len(members) == 1 else EnsembleTeacher(members,
                                                                             teacher_weights)
        _check_models(the_teacher, student_model, data)
        teacher_accuracy = _teacher_accuracy(the_teacher, data, batch_size)

        distilled = quantize_student(student_model) if qat else student_model
        distiller = Distiller(
            teacher=_keras_model_or(the_teacher), student=distilled,
            distillation_losses=loss_objects, distillation_loss_weights=loss_weights,
            student_loss_weight=alpha,
        )
        progress.stage("distill", f"{student} from {', '.join(map(str, teacher_specs))}"
                       + (" with QAT" if qat else ""))
        cache = None
        if augmentations or not cache_teacher:
            if not the_teacher.runs_in_graph:
                raise EdgeDistillError(
                    f"{the_teacher.name}: precomputed teacher outputs cannot follow augmented "
                    "inputs; drop --augment or give a teacher model"
                )
            train, val = _batches(data, batch_size, seed, augmentations)
        else:
            started = time.perf_counter()
            cache = {
                split: cached_teacher_outputs(
                    the_teacher, data.split(split)[0], rows=rows,
                    layer_names=distiller.teacher_layers, cache_dir=cache_dir,
                    batch_size=max(batch_size, 256))
                for split, rows in (("train", data.train_rows), ("val", data.val_rows))
            }
            seconds["teacher_outputs"] = time.perf_counter() - started
            train, val = _batches(data, batch_size, seed, augmentations,
                                  {split: c.arrays for split, c in cache.items()})
        steps = _steps(len(data.x_train), batch_size)
        compile_distiller(distiller, budget, steps)
        k.utils.set_random_seed(seed)
        records["distill"] = fit(distiller, train, val, budget, progress=progress,
                                 stage="distill")
        seconds["distill"] = sum(records["distill"].epoch_seconds)
        student_accuracy = _accuracy(distilled, data, batch_size)
        save_keras_model(distilled, tmp / STUDENT_FILE)

        scratch_accuracy = None
        if scratch_baseline:
            progress.stage("scratch", f"{student} on hard labels only: same start, same batches")
            scratch = _clone_with(student_model, initial_weights)
            if qat:
                scratch = quantize_student(scratch)
            train, val = _batches(data, batch_size, seed, augmentations)
            compile_student(scratch, budget, steps)
            k.utils.set_random_seed(seed)
            records["scratch"] = fit(scratch, train, val, budget, progress=progress,
                                     stage="scratch")
            seconds["scratch"] = sum(records["scratch"].epoch_seconds)
            scratch_accuracy = _accuracy(scratch, data, batch_size)
            save_keras_model(scratch, tmp / SCRATCH_FILE)

        result = DistillResult(
            out_dir=str(out),
            student_path=str(out / STUDENT_FILE),
            teacher_paths=tuple(paths),
            scratch_path=str(out / SCRATCH_FILE) if scratch_baseline else None,
            teacher_accuracy=teacher_accuracy,
            student_accuracy=student_accuracy,
            scratch_accuracy=scratch_accuracy,
            teacher_params=_teacher_params(members),
            student_params=_count_params(student_model),
            losses=tuple(losses_lib.serialize(x) for x in loss_objects),
            loss_weights=tuple(distiller.distillation_loss_weights),
            temperature=temperature,
            alpha=alpha,
            augment=tuple(augment_lib.serialize(a) for a in augmentations),
            budget=budget.to_dict(),
            batch_size=batch_size,
            seed=seed,
            qat=qat,
            teacher={"kind": the_teacher.kind, "members": [m.kind for m in members],
                     "weights": list(teacher_weights) if teacher_weights else None,
                     "budget": teacher_budget.to_dict() if any(map(is_zoo_name, teacher_specs))
                     else None},
            teacher_outputs=({s: c.to_dict() for s, c in cache.items()} if cache else None),
            fits={name: record.to_dict() for name, record in records.items()},
            warnings=_warnings(teacher_accuracy, scratch_accuracy),
            data=data.to_dict(),
            seconds=seconds,
        )
        (tmp / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _student(spec, data: Dataset):
    k = keras()
    if isinstance(spec, k.Model):
        return spec
    if is_zoo_name(spec):
        return zoo.build(str(spec), data.input_shape, data.num_classes)
    return load_keras_model(spec)


def _check_layer_names(losses, student_model, teacher_specs, data: Dataset) -> None:
    """Fails before any training when a loss names a layer the models lack."""
    for loss in losses:
        if loss.student_layer_name:
            find_layer(student_model, loss.student_layer_name)
        if loss.teacher_layer_name:
            for spec in filter(is_zoo_name, teacher_specs):
                find_layer(zoo.build(str(spec), data.input_shape, data.num_classes),
                            loss.teacher_layer_name)


def _train_zoo_teacher(name, data, budget, batch_size, seed, progress):
    progress.stage("teacher", f"training {name} on {data.name} ({budget.epochs} epochs at most, "
                   f"learning rate {budget.learning_rate:g})")
    model = zoo.build(name, data.input_shape, data.num_classes)
    train, val = _batches(data, batch_size, seed, ())
    compile_student(model, budget, _steps(len(data.x_train), batch_size))
    keras().utils.set_random_seed(seed)
    record = fit(model, train, val, budget, progress=progress, stage="teacher")
    return model, record


def _batches(data: Dataset, batch_size, seed, augmentations, teacher_outputs=None):
    """The training batches (seeded, augmented) and the validation batches."""
    teacher_outputs = teacher_outputs or {}
    train = augment_lib.training_batches(
        data.x_train, data.y_train, batch_size=batch_size, seed=seed,
        augmentations=augmentations, num_classes=data.num_classes,
        teacher_outputs=teacher_outputs.get("train"))
    val = augment_lib.training_batches(
        data.x_val, data.y_val, batch_size=batch_size, seed=seed, shuffle=False,
        teacher_outputs=teacher_outputs.get("val"))
    return train, val


def _steps(samples: int, batch_size: int) -> int:
    return -(-samples // batch_size)


def _check_models(teacher: Teacher, student, data: Dataset) -> None:
    if tuple(teacher.output_shape[1:]) != tuple(student.output_shape[1:]):
        raise EdgeDistillError(
            f"{teacher.name} and {student.name}: output shapes differ ({teacher.output_shape} vs "
            f"{student.output_shape}); the student must predict the teacher's classes"
        )
    data.check_fits(student.input_shape, output_units(student, student.name), student.name)
    if teacher.input_shape is not None:
        data.check_fits(teacher.input_shape, int(teacher.output_shape[-1]), teacher.name)


def _keras_model_or(teacher: Teacher):
    """The tf_keras model behind a teacher, so a saved Distiller can reload it."""
    return getattr(teacher, "model", None) if teacher.kind == "keras" else teacher


def _teacher_accuracy(teacher: Teacher, data: Dataset, batch_size: int) -> float | None:
    if not teacher.runs_in_graph:
        return None
    outputs = teacher.predict(data.x_test, batch_size=max(batch_size, 256))["output"]
    return float(np.mean(np.argmax(outputs, axis=-1) == data.y_test))


def _accuracy(model, data: Dataset, batch_size: int) -> float:
    predicted = model.predict(data.x_test, batch_size=max(batch_size, 256), verbose=0)
    return float(np.mean(np.argmax(predicted, axis=-1) == data.y_test))


def _clone_with(model, weights):
    with tfmot().quantization.keras.quantize_scope():
        clone = keras().models.clone_model(model)
    clone.set_weights(weights)
    return clone


def _count_params(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.weights if "quantize" not in w.name))


def _teacher_params(members) -> int | None:
    models = [getattr(m, "model", None) for m in members]
    if any(m is None or not hasattr(m, "count_params") for m in models):
        return None
    return sum(int(m.count_params()) for m in models)


def _warnings(teacher_accuracy, scratch_accuracy) -> tuple[str, ...]:
    if teacher_accuracy is None or scratch_accuracy is None:
        return ()
    if teacher_accuracy < scratch_accuracy + TEACHER_MARGIN:
        return (
            f"the teacher ({100 * teacher_accuracy:.1f}%) is not clearly better than the student "
            f"trained from scratch ({100 * scratch_accuracy:.1f}%): it has little to teach",
        )
    return ()
