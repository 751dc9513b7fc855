"""One link of a distillation chain: a teacher teaches one model, or a model learns alone.

Every mode of :func:`~edgedistill.distill.run.distill` is a chain of links
(teacher -> student; teacher -> assistant -> student; generation k ->
generation k+1), and every link trains through :func:`train_distilled` or,
for the baselines and zoo teachers, :func:`train_alone`, with one
:class:`LinkPlan`. Two links with the same plan see the same batches in the
same order, so they differ only in what they learn from.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from edgedistill._tf import keras
from edgedistill.compress.clustering import Clustering
from edgedistill.compress.pruning import Pruning
from edgedistill.compress.qat import quantize_scope
from edgedistill.data import Dataset
from edgedistill.distill import augment as augment_lib
from edgedistill.distill.adversarial import Adversary, adversarial_accuracy, evaluation_adversary
from edgedistill.distill.cache import CachedOutputs, cached_teacher_outputs
from edgedistill.distill.distiller import Distiller, loss_weights, weight
from edgedistill.distill.teachers import Teacher
from edgedistill.distill.training import (
    Budget,
    FitRecord,
    compile_distiller,
    compile_student,
    fit,
    resume_epoch,
)
from edgedistill.errors import EdgeDistillError
from edgedistill.progress import Progress
from edgedistill.streams import StreamData


@dataclasses.dataclass(frozen=True)
class LinkPlan:
    """How every link of a run trains; see :func:`~edgedistill.distill.run.distill`."""

    losses: tuple
    loss_weights: tuple[float, ...] | None
    alpha: float
    budget: Budget
    batch_size: int
    seed: int
    augmentations: tuple = ()
    cache_teacher: bool = True
    cache_dir: str | os.PathLike | None = None
    adversary: Adversary | None = None
    compression: Pruning | Clustering | None = None

    def __post_init__(self):
        # Checked here, before any teacher trains, not first in the Distiller.
        weight("alpha", self.alpha, upper=1.0)
        loss_weights(self.loss_weights, len(self.losses))

    def compression_fit_options(self) -> dict:
        """What :func:`~edgedistill.distill.training.fit` needs for the plan's compression."""
        return {} if self.compression is None else self.compression.fit_options(
            self.budget.epochs)

    @property
    def teacher_every_step(self) -> bool:
        """True when the teacher must see each batch as trained (no output cache)."""
        return bool(self.augmentations) or not self.cache_teacher


@dataclasses.dataclass(frozen=True)
class Link:
    """A trained link: the model, how its fit went, and the teacher-output cache it read."""

    model: object
    record: FitRecord
    cache: dict[str, CachedOutputs] | None
    seconds: float


def train_distilled(teacher: Teacher, model, data: Dataset, plan: LinkPlan, *,
                    progress: Progress, stage: str, checkpoints=None) -> Link:
    """Distills ``teacher`` into ``model`` (trained in place) on ``data``'s training split.

    With ``checkpoints`` (:class:`~edgedistill.distill.checkpoints.EpochCheckpoints`)
    each epoch is checkpointed and an interrupted fit continues.
    """
    k = keras()
    distiller = Distiller(
        teacher=_keras_model_or(teacher), student=model,
        distillation_losses=list(plan.losses), distillation_loss_weights=plan.loss_weights,
        student_loss_weight=plan.alpha, adversary=plan.adversary,
    )
    cache = None
    started = time.perf_counter()
    if plan.teacher_every_step or isinstance(data, StreamData):
        if not teacher.runs_in_graph:
            raise EdgeDistillError(
                f"{teacher.name}: precomputed teacher outputs cannot follow augmented "
                "inputs; drop --augment or give a teacher model"
            )
        train, val = batches(data, plan, start_epoch=resume_epoch(checkpoints))
    else:
        cache = {
            split: cached_teacher_outputs(
                teacher, data.split(split)[0], rows=rows, layer_names=distiller.teacher_layers,
                cache_dir=plan.cache_dir, batch_size=max(plan.batch_size, 256))
            for split, rows in (("train", data.train_rows), ("val", data.val_rows))
        }
        train, val = batches(data, plan, {split: c.arrays for split, c in cache.items()},
                             start_epoch=resume_epoch(checkpoints))
    per_epoch = train_steps(data, plan.batch_size)
    compile_distiller(distiller, plan.budget, per_epoch)
    k.utils.set_random_seed(plan.seed)
    record = fit(distiller, train, val, plan.budget, steps_per_epoch=per_epoch,
                 progress=progress, stage=stage, checkpoints=checkpoints,
                 **plan.compression_fit_options())
    return Link(model, record, cache, time.perf_counter() - started)


def train_alone(model, data: Dataset, plan: LinkPlan, *, progress: Progress, stage: str,
                teacher: Teacher | None = None, checkpoints=None) -> Link:
    """Trains ``model`` on hard labels alone, adversarially if the plan says so.

    Adversarial training needs a Distiller around the model (with all weight
    on the hard labels, the teacher only fills the slot).
    """
    started = time.perf_counter()
    train, val = batches(data, plan, start_epoch=resume_epoch(checkpoints))
    per_epoch = train_steps(data, plan.batch_size)
    if plan.adversary is not None:
        trainer = Distiller(teacher=_keras_model_or(teacher), student=model,
                            student_loss_weight=1.0, adversary=plan.adversary)
        compile_distiller(trainer, plan.budget, per_epoch)
    else:
        trainer = model
        compile_student(model, plan.budget, per_epoch)
    keras().utils.set_random_seed(plan.seed)
    record = fit(trainer, train, val, plan.budget, steps_per_epoch=per_epoch, progress=progress,
                 stage=stage, checkpoints=checkpoints, **plan.compression_fit_options())
    return Link(model, record, None, time.perf_counter() - started)


def batches(data: Dataset | StreamData, plan: LinkPlan, teacher_outputs=None,
            start_epoch: int = 0):
    """The training batches (seeded, augmented, from ``start_epoch`` on) and the validation ones."""
    if isinstance(data, StreamData):
        train = augment_lib.stream_batches(
            data.train, samples=data.samples["train"], batch_size=plan.batch_size,
            seed=plan.seed, shuffle_buffer=data.shuffle_buffer, augmentations=plan.augmentations,
            num_classes=data.num_classes, start_epoch=start_epoch)
        return train, data.val.batch(plan.batch_size).prefetch(-1)
    teacher_outputs = teacher_outputs or {}
    train = augment_lib.training_batches(
        data.x_train, data.y_train, batch_size=plan.batch_size, seed=plan.seed,
        augmentations=plan.augmentations, num_classes=data.num_classes,
        teacher_outputs=teacher_outputs.get("train"), start_epoch=start_epoch)
    val = augment_lib.training_batches(
        data.x_val, data.y_val, batch_size=plan.batch_size, seed=plan.seed, shuffle=False,
        teacher_outputs=teacher_outputs.get("val"))
    return train, val


def train_samples(data: Dataset | StreamData) -> int:
    return data.samples["train"] if isinstance(data, StreamData) else len(data.x_train)


def train_steps(data: Dataset | StreamData, batch_size: int) -> int:
    """Batches in one epoch of the training split."""
    return -(-train_samples(data) // batch_size)


def test_accuracy(predict, data: Dataset | StreamData, batch_size: int) -> float:
    """Top-1 accuracy on the test split of ``predict`` (NumPy inputs to class scores)."""
    if not isinstance(data, StreamData):
        return float(np.mean(np.argmax(predict(data.x_test), axis=-1) == data.y_test))
    hits = total = 0
    for x, y in data.test_split.batch(max(batch_size, 256)):
        hits += int(np.sum(np.argmax(predict(x.numpy()), axis=-1) == y.numpy()))
        total += len(y)
    return hits / max(total, 1)


def accuracy(model, data: Dataset | StreamData, batch_size: int) -> float:
    """Top-1 accuracy of a Keras model on the test split."""
    return test_accuracy(
        lambda x: model.predict(x, batch_size=max(batch_size, 256), verbose=0), data, batch_size)


def robustness(models: dict, data: Dataset | StreamData, training: Adversary, seed: int) -> dict:
    """Test accuracy of each named model under attack, for the adversarial record.

    The figures under ``*_accuracy`` are measured with
    :func:`~edgedistill.distill.adversarial.evaluation_adversary` (PGD, at
    least 10 steps, the training radius); when that differs from the
    training attack, ``training_attack`` holds the figures under it too.
    """
    test = data.test_split if isinstance(data, StreamData) else (data.x_test, data.y_test)
    evaluation = evaluation_adversary(training)

    def accuracies(adversary):
        return {f"{role}_accuracy": adversarial_accuracy(model, test, adversary, seed=seed)
                for role, model in models.items() if model is not None}

    return {"adversary": training.to_dict(), "evaluation": evaluation.to_dict(),
            **accuracies(evaluation),
            "training_attack": None if training == evaluation else accuracies(training)}


def clone_with(model, weights):
    """A fresh copy of ``model``'s architecture holding ``weights``."""
    with quantize_scope():
        clone = keras().models.clone_model(model)
    clone.set_weights(weights)
    return clone


def count_params(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.weights if "quantize" not in w.name))


def _keras_model_or(teacher: Teacher | None):
    """The tf_keras model behind a teacher, so a saved Distiller can reload it."""
    if teacher is None:
        return None
    return getattr(teacher, "model", None) if teacher.kind == "keras" else teacher
