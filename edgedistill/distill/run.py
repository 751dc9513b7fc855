"""``distill``: the stage behind ``edgedistill distill`` and its Python API twin.

A distillation result means nothing without its baseline, so by default the
same student is also trained from scratch: the same initial weights, the same
batches in the same order with the same augmentation draws, the same budget.
Only what it learns from differs.

Modes (``mode=``) chain links of teaching (see :mod:`edgedistill.distill.links`):

- ``standard``: teacher (or an ensemble) -> student.
- ``born-again``: the teacher (or, without one, the student trained from
  scratch) -> generation 1 -> ... -> generation N, all of the student's
  architecture (Furlanello et al. 2018).
- ``assistant``: teacher -> assistant(s) -> student, for a large capacity gap
  (Mirzadeh et al. 2020).
- ``data-free``: inputs synthesized from the teacher's BatchNorm statistics
  (DeepInversion) replace the training data; a real-data distillation is run
  beside it to report the gap.
- ``adversarial``: the student's outputs on inputs perturbed against it also
  match the teacher's on the clean inputs; the scratch baseline is
  adversarially trained alike, and both report clean accuracy and accuracy
  under PGD (at least 10 steps, whatever the training attack).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from edgedistill import zoo
from edgedistill._fileio import check_output_dir, json_text, resumable_output_dir
from edgedistill._tf import keras
from edgedistill.compress import Clustering, Pruning, quantize_student, structured
from edgedistill.compress.qat import plain_quantized, qat_scheme
from edgedistill.data import Dataset, load_dataset
from edgedistill.distill import adversarial, links
from edgedistill.distill import augment as augment_lib
from edgedistill.distill import losses as losses_lib
from edgedistill.distill import tuning as tuning_lib
from edgedistill.distill.checkpoints import Fits, RunCheckpoints, run_settings
from edgedistill.distill.distiller import find_layer
from edgedistill.distill.synthesis import batchnorm_layers, synthetic_dataset
from edgedistill.distill.teachers import (
    EnsembleTeacher,
    Teacher,
    as_teacher,
    ensemble_weights,
    load_teacher,
)
from edgedistill.distill.training import Budget
from edgedistill.errors import EdgeDistillError
from edgedistill.models import is_zoo_name, load_keras_model, output_units
from edgedistill.progress import Progress, SilentProgress
from edgedistill.streams import StreamData

# HDF5, because tfmot's QAT wrappers do not round-trip through tf_keras 2.21's
# .keras format (the reloaded quantize_layer expects 5 variables, finds 3).
STUDENT_FILE = "student.h5"
SCRATCH_FILE = "scratch_student.h5"
RESULT_FILE = "distill.json"
MODES = ("standard", "born-again", "assistant", "data-free", "adversarial")
DEFAULT_ADVERSARY = "pgd:epsilon=0.1,steps=5"
# A teacher no better than this over the scratch student has little to teach.
TEACHER_MARGIN = 0.01


@dataclasses.dataclass(frozen=True)
class DistillResult:
    """What ``distill`` produced and measured; accuracies are on the test split.

    ``chain`` lists every model trained on the way, in order: assistants,
    born-again generations, the real-data reference of a data-free run and
    the student, each with its role, file, parameters and test accuracy.
    ``adversarial`` (adversarial mode) holds the training attack, the
    evaluation attack (PGD, at least 10 steps, same radius) with each model's
    accuracy under it, and under the training attack when that differs;
    ``data_free`` (data-free mode) the synthesis record and the gap to
    real-data distillation; ``tuning`` (``tune=``) every trial and the values
    chosen.
    """

    out_dir: str
    mode: str
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
    qat_scheme: str | None
    compression: dict | None
    compressed_layers: tuple[dict, ...] | None
    channel_pruning: dict | None
    teacher: dict
    teacher_outputs: dict | None
    chain: tuple[dict, ...]
    adversarial: dict | None
    data_free: dict | None
    tuning: dict | None
    fits: dict
    warnings: tuple[str, ...]
    data: dict
    seconds: dict

    @property
    def teacher_path(self) -> str | None:
        return self.teacher_paths[0] if self.teacher_paths else None

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
    mode: str = "standard",
    losses: Sequence | None = None,
    loss_weights: Sequence[float] | None = None,
    temperature: float = losses_lib.DEFAULT_TEMPERATURE,
    alpha: float = 0.5,
    epochs: int = 40,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    schedule: str = "cosine",
    patience: int | None = None,
    augment: Sequence = (),
    teacher_weights: Sequence[float] | None = None,
    teacher_epochs: int = 30,
    teacher_learning_rate: float = 1e-3,
    teacher_augment: Sequence = ("shift",),
    generations: int = 2,
    assistants: Sequence = (),
    adversary=None,
    synthetic_samples: int | None = None,
    tune: int | None = None,
    tune_epochs: int | None = None,
    seed: int = 0,
    qat: bool = False,
    prune=None,
    cluster=None,
    prune_channels: float | None = None,
    scratch_baseline: bool = True,
    scratch_student=None,
    cache_teacher: bool = True,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
) -> DistillResult:
    """Distills ``teacher`` into ``student`` on ``data`` and saves the student.

    Args:
        teacher: a model file (tf_keras or Keras 3 ``.keras``/``.h5``, a
            SavedModel directory, ``.tflite``, ``.onnx``, or a ``.npy`` of
            precomputed outputs for the training rows), a zoo name (trained
            here on ``data`` with its own budget), a model, or a list of
            these: an ensemble whose soft targets are averaged. None (or an
            empty list) only in born-again mode: the student trained from
            scratch is then generation 0.
        student: a tf_keras model file, a zoo name (built fresh) or a model.
        data: ``"digits"``, ``"fashion-mnist[:DIR]"``, a ``.npz`` path, a
            TFRecord directory, a :class:`~edgedistill.data.Dataset` or, for
            data larger than memory, a :class:`~edgedistill.streams.StreamData`
            (:func:`~edgedistill.streams.from_tf_data` wraps ``tf.data`` pipelines).
        out_dir: receives student.h5, scratch_student.h5, teacher.h5 (a zoo
            teacher), the chain's intermediate models and distill.json; must
            be empty unless ``force``.
        mode: one of ``MODES`` (see the module docstring).
        losses: distillation losses (names, ``"name:key=value,..."`` specs,
            configs or instances); default a
            :class:`~edgedistill.distill.losses.LogitsDistillation` at ``temperature``.
        loss_weights: one weight per loss (default 1 each).
        temperature: the temperature of the default loss.
        alpha: weight of the hard-label loss; the distillation losses get
            ``1 - alpha``. Data-free mode uses 0: its labels are only the
            classes the inputs were synthesized for.
        epochs, learning_rate, schedule, patience: the student's budget
            (see :class:`~edgedistill.distill.training.Budget`), the same for
            every link of the chain and for the from-scratch student.
        augment: augmentations applied to each batch, seen identically by
            teacher and student (consistent teaching); names or instances
            from :mod:`edgedistill.distill.augment`. Without augmentation the
            teacher's outputs are computed once and cached on disk.
        teacher_weights: ensemble weights, one per teacher.
        teacher_epochs, teacher_learning_rate: a zoo teacher's own budget
            (early stopping on the validation split, best epoch restored).
        teacher_augment: augmentations a zoo teacher trains with, on image
            data (a teacher trained on shifted images teaches better; add
            ``"flip"`` where mirror images keep their class).
        generations: born-again mode: how many generations to distill.
        assistants: assistant mode: zoo names or model files, largest first.
        adversary: adversarial mode: the attack (an
            :class:`~edgedistill.distill.adversarial.Adversary` or a spec such
            as ``"pgd:epsilon=0.1,steps=5"``, the default) to train against;
            robustness is measured with 10-step PGD of the same epsilon.
        synthetic_samples: data-free mode: inputs to synthesize (default
            5,000, or the training split's size if smaller), a tenth more for
            validation. Synthesis costs about a minute per 1,000 inputs for a
            390k-parameter CNN on 2 cores.
        tune: choose temperature, alpha and (with several losses) loss
            weights for the student's link by this many short trials scored
            on the validation split (see :mod:`edgedistill.distill.tuning`);
            the chosen values then train the student with the full budget.
        tune_epochs: epochs per trial (default a quarter of ``epochs``).
        qat: train the student (the chain's last link) with tfmot
            quantization-aware training; a pruned student's zeros and a
            clustered student's clusters are kept (PQAT, CQAT, PCQAT: see
            :func:`~edgedistill.compress.qat.qat_scheme`).
        prune: prune the student (and the scratch baseline) with tfmot
            while it is distilled: a :class:`~edgedistill.compress.Pruning`,
            a sparsity, or its settings as a mapping or ``key=value,...``
            text. The saved student is stripped of the pruning wrappers, and
            the best epoch is chosen only once the target sparsity is reached.
        cluster: cluster the student's kernels (and the scratch baseline's)
            with tfmot while it is distilled: a
            :class:`~edgedistill.compress.Clustering`, a cluster count, or its
            settings. Not with ``prune`` or ``qat``.
        prune_channels: before distilling, remove this fraction of the
            channels of every hidden layer of ``student`` (a trained one, as a
            rule), ranked by L1 norm (:func:`~edgedistill.compress.structured.prune_channels`):
            the smaller dense student is then distilled, and its scratch
            baseline starts from the same pruned weights.
        scratch_baseline: also train the student from the same initial
            weights on the same batches from hard labels alone.
        scratch_student: where the scratch baseline starts instead (a model
            file or model of the student's architecture). A recipe's later
            stages pass the previous stage's scratch student, so that the
            baseline is the same recipe without a teacher.
        cache_teacher: without augmentation, compute the teacher's outputs
            once and read them from a memory-mapped cache; False runs the
            teacher on every batch.
        cache_dir: where teacher outputs are cached (default
            ``$EDGEDISTILL_CACHE_DIR`` or ``~/.cache/edgedistill``).
        force: replace a non-empty ``out_dir``, or an interrupted run's work.
        resume: continue the interrupted run with the same settings and
            ``out_dir``: finished fits are kept, the interrupted one goes on
            after its last checkpointed epoch, and the result is the one the
            uninterrupted run would have given.

    Returns:
        A :class:`DistillResult` with test accuracies, sizes, timings and warnings.

    Example:
        >>> result = distill("teacher-cnn", "student-cnn", "digits", "runs/digits", qat=True)
        >>> result.student_accuracy, result.scratch_accuracy
        >>> distill(None, "student-cnn", "digits", "runs/ban", mode="born-again", generations=2)
    """
    progress = progress or SilentProgress()
    check_output_dir(out_dir, force)
    if mode not in MODES:
        raise EdgeDistillError(f"mode: {mode!r} unknown; use one of {', '.join(MODES)}")
    budget = Budget(epochs=epochs, learning_rate=learning_rate, schedule=schedule,
                    patience=patience)
    teacher_budget = Budget(epochs=teacher_epochs, learning_rate=teacher_learning_rate,
                            patience=max(3, teacher_epochs // 5), monitor="val_loss")
    if batch_size < 1:
        raise EdgeDistillError(f"batch-size: must be at least 1, got {batch_size}")
    teacher_specs = _teacher_specs(teacher, mode)
    pruning = None if prune is None else Pruning.from_spec(prune)
    clustering = None if cluster is None else Clustering.from_spec(cluster)
    compression = pruning or clustering
    if pruning is not None and qat:
        raise EdgeDistillError(
            "prune with qat: run them one after the other: distill with --prune, then "
            "distill its student.h5 with --qat (sparsity-preserving QAT keeps the zeros)")
    if clustering is not None and qat:
        raise EdgeDistillError(
            "cluster with qat: run them one after the other: distill with --cluster, then "
            "distill its student.h5 with --qat (cluster-preserving QAT keeps the clusters)")
    if pruning is not None and clustering is not None:
        raise EdgeDistillError("prune with cluster: choose one of them per run")
    if teacher_weights is not None:
        ensemble_weights(teacher_weights, len(teacher_specs))
    _check_mode_settings(mode, generations, assistants, adversary, synthetic_samples)
    if mode == "adversarial":
        adversary = adversarial.get(adversary or DEFAULT_ADVERSARY)
    plan = links.LinkPlan(
        losses=tuple(losses_lib.get(spec) for spec in
                     (losses or [losses_lib.LogitsDistillation(temperature=temperature)])),
        loss_weights=None if loss_weights is None else tuple(loss_weights),
        alpha=alpha, budget=budget, batch_size=batch_size, seed=seed,
        augmentations=tuple(augment_lib.get(spec) for spec in augment),
        cache_teacher=cache_teacher, cache_dir=cache_dir,
        adversary=adversary if mode == "adversarial" else None,
    )
    if not isinstance(data, Dataset | StreamData):
        data = load_dataset(data, seed=seed)
    k = keras()
    k.utils.set_random_seed(seed)

    student_model = _student(student, data)
    scratch_model = None if scratch_student is None else _student(scratch_student, data)
    channels = None
    if prune_channels is not None:
        student_model, channels = structured.prune_channels(student_model, prune_channels)
        if scratch_model is not None:
            scratch_model, _ = structured.prune_channels(scratch_model, prune_channels)
    initial_weights = student_model.get_weights()
    scratch_weights = initial_weights if scratch_model is None else _same_architecture(
        scratch_model, student_model, scratch_student)
    assistant_models = [_student(spec, data) for spec in assistants] if mode == "assistant" \
        else []
    _check_layer_names(plan.losses, [student_model, *assistant_models], teacher_specs, data)
    if mode == "data-free":
        _check_data_free_teachers(teacher_specs, data)

    settings = run_settings(dict(
        teacher=teacher_specs, student=student, data=data, mode=mode, plan=plan,
        temperature=temperature, teacher_weights=teacher_weights, teacher_budget=teacher_budget,
        teacher_augment=teacher_augment,
        generations=generations, assistants=assistants, synthetic_samples=synthetic_samples,
        tune=tune, tune_epochs=tune_epochs, qat=qat, scratch_baseline=scratch_baseline,
        compression=_compression_record(compression), prune_channels=prune_channels,
        scratch_student=scratch_student))
    chain: list[dict] = []
    with resumable_output_dir(out_dir, force, resume) as work:
        out = Path(out_dir)
        fits = Fits(work, RunCheckpoints(work / "checkpoints", settings, resume), progress)

        def compressed(model, train_data, link_epochs=epochs):
            """The student as it trains: wrapped for QAT, pruning, clustering, or as it is."""
            if qat:
                return quantize_student(model)
            if compression:
                return compression.wrap(
                    model, link_epochs * links.train_steps(train_data, batch_size))
            return model

        scheme = qat_scheme(student_model) if qat else None
        export = None
        if compression:
            export = compression.strip
        elif scheme and "cluster" in scheme:  # (P)CQAT models do not reload: save plain QAT
            def export(trained):
                return plain_quantized(trained, student_model)
        compressed_plan = dataclasses.replace(plan, compression=compression)

        def link_to(teacher_now, model, name, file, role, train_data=data, link_plan=plan):
            cache, model = fits.run(
                name, model, file, lambda checkpoints: links.train_distilled(
                    teacher_now, model, train_data, link_plan, progress=progress, stage=name,
                    checkpoints=checkpoints), export=export)
            accuracy = links.accuracy(model, data, batch_size)
            chain.append({"role": role, "path": str(out / file), "name": model.name,
                          "params": links.count_params(model), "accuracy": accuracy})
            return cache, accuracy, model

        def run_scratch(teacher_for_adversary=None):
            progress.stage("scratch", f"{student} on hard labels only: same start, same batches"
                           + (" (adversarial training)" if plan.adversary else ""))
            scratch = compressed(links.clone_with(student_model, scratch_weights), data)
            _, scratch = fits.run(
                "scratch", scratch, SCRATCH_FILE, lambda checkpoints: links.train_alone(
                    scratch, data, compressed_plan, progress=progress, stage="scratch",
                    teacher=teacher_for_adversary, checkpoints=checkpoints),
                export=export)
            return scratch, links.accuracy(scratch, data, batch_size)

        members, paths = _teachers(teacher_specs, data, teacher_budget,
                                   _image_augmentations(teacher_augment, data), batch_size, seed,
                                   progress, fits, out)
        scratch = scratch_accuracy = None
        if members:
            the_teacher = members[0] if len(members) == 1 else EnsembleTeacher(
                members, teacher_weights)
            _check_models(the_teacher, student_model, data)
            teacher_accuracy = _teacher_accuracy(the_teacher, data, batch_size)
        else:
            scratch, scratch_accuracy = run_scratch()
            the_teacher = as_teacher(scratch)
            teacher_accuracy = scratch_accuracy
            paths = [str(out / SCRATCH_FILE)]

        current = the_teacher
        if mode == "assistant":
            for index, model in enumerate(assistant_models):
                progress.stage(f"assistant-{index}", f"{model.name} from {current.name}")
                _, _, model = link_to(current, model, f"assistant-{index}",
                                      f"assistant-{index}.h5", "assistant")
                current = as_teacher(model)
        elif mode == "born-again":
            for generation in range(1, generations):
                model = links.clone_with(student_model, initial_weights)
                progress.stage(f"generation-{generation}", f"{student} from {current.name}")
                _, _, model = link_to(current, model, f"generation-{generation}",
                                      f"generation-{generation}.h5", f"generation {generation}")
                current = as_teacher(model)

        train_data, data_free = data, None
        if mode == "data-free":
            train_data, data_free = synthetic_dataset(current, data, synthetic_samples, seed,
                                                      progress)
            fits.seconds["synthesize"] = data_free.pop("seconds")
            progress.stage("reference", f"{student} from {current.name} on the real data")
            reference = links.clone_with(student_model, initial_weights)
            _, data_free["real_data_accuracy"], _ = link_to(
                current, reference, "reference", "real-data-student.h5", "real-data reference")

        tuning = None
        if tune:
            tuning = _tune(current, student_model, initial_weights, train_data, compressed_plan,
                           tune, tune_epochs or max(1, epochs // 4), compressed, fits, progress)
            chosen_losses, chosen_weights, chosen_alpha = tuning_lib.apply(
                tuning.chosen, plan.losses, plan.loss_weights, plan.alpha)
            plan = dataclasses.replace(plan, losses=chosen_losses, loss_weights=chosen_weights,
                                       alpha=chosen_alpha)
        final_plan = dataclasses.replace(plan, compression=compression,
                                         alpha=0.0 if mode == "data-free" else plan.alpha)
        progress.stage("distill", f"{student} from {current.name}" + (
            " with QAT" if qat else f" pruned to {pruning.sparsity:g} sparsity" if pruning
            else f" clustered to {clustering.clusters} values per kernel" if clustering else ""))
        cache, student_accuracy, distilled = link_to(
            current, compressed(student_model, train_data), "distill", STUDENT_FILE, "student",
            train_data, final_plan)
        if data_free is not None:
            data_free["gap"] = data_free["real_data_accuracy"] - student_accuracy

        if scratch_baseline and scratch is None:
            scratch, scratch_accuracy = run_scratch(the_teacher)
        robust = None
        if plan.adversary is not None:
            robust = links.robustness(
                {"student": distilled, "scratch": scratch,
                 "teacher": getattr(the_teacher, "model", None)}, data, plan.adversary, seed)

        result = DistillResult(
            out_dir=str(out),
            mode=mode,
            student_path=str(out / STUDENT_FILE),
            teacher_paths=tuple(paths),
            scratch_path=str(out / SCRATCH_FILE) if scratch is not None else None,
            teacher_accuracy=teacher_accuracy,
            student_accuracy=student_accuracy,
            scratch_accuracy=scratch_accuracy,
            teacher_params=_teacher_params(members) if members else links.count_params(scratch),
            student_params=links.count_params(student_model),
            losses=tuple(losses_lib.serialize(x) for x in plan.losses),
            loss_weights=tuple(plan.loss_weights or [1.0] * len(plan.losses)),
            temperature=temperature,
            alpha=final_plan.alpha,
            augment=tuple(augment_lib.serialize(a) for a in plan.augmentations),
            budget=budget.to_dict(),
            batch_size=batch_size,
            seed=seed,
            qat=qat,
            qat_scheme=scheme,
            compression=_compression_record(compression),
            compressed_layers=compression.report(distilled) if compression else None,
            channel_pruning=channels.to_dict() if channels else None,
            teacher={"kind": the_teacher.kind, "members": [m.kind for m in members],
                     "weights": list(teacher_weights) if teacher_weights else None,
                     "budget": teacher_budget.to_dict() if any(map(is_zoo_name, teacher_specs))
                     else None,
                     "augment": [augment_lib.serialize(a) for a in
                                 _image_augmentations(teacher_augment, data)]
                     if any(map(is_zoo_name, teacher_specs)) else None},
            teacher_outputs=cache,
            chain=tuple(chain),
            adversarial=robust,
            data_free=data_free,
            tuning=tuning.to_dict() if tuning else None,
            fits=fits.records,
            warnings=_warnings(teacher_accuracy, scratch_accuracy, bool(members))
            + _robustness_warnings(robust, student_accuracy),
            data=data.to_dict(),
            seconds=fits.seconds,
        )
        (work / RESULT_FILE).write_text(json_text(result.to_dict()))
    return result


def _compression_record(compression) -> dict | None:
    if compression is None:
        return None
    return {"scheme": compression.registered_name, **compression.to_dict()}


def _tune(teacher, student_model, initial_weights, data, plan, trials, epochs, compressed,
          fits: Fits, progress: Progress) -> tuning_lib.TuneResult:
    """Short distillations of the student, one per proposed setting, scored on validation."""
    space = tuning_lib.search_space(plan.losses)
    progress.stage("tune", f"{trials} trials of {epochs} epochs over "
                   f"{', '.join(space)}, scored on the validation split")
    checkpoints = fits.checkpoints

    def score(values):
        losses, weights, alpha = tuning_lib.apply(values, plan.losses, plan.loss_weights,
                                                  plan.alpha)
        trial_plan = dataclasses.replace(
            plan, losses=losses, loss_weights=weights, alpha=alpha,
            budget=dataclasses.replace(plan.budget, epochs=epochs, patience=None))
        model = compressed(links.clone_with(student_model, initial_weights), data, epochs)
        link = links.train_distilled(teacher, model, data, trial_plan, progress=progress,
                                     stage="trial")
        return link.record.best_val_accuracy

    def done(index):
        record = checkpoints.done(f"trial-{index}")
        return None if record is None else record["val_accuracy"]

    def record(index, values, accuracy):
        checkpoints.finish(f"trial-{index}", {"values": values, "val_accuracy": accuracy})

    return tuning_lib.tune(score, space, trials=trials, seed=plan.seed,
                           directory=checkpoints.root / "tuning", epochs_per_trial=epochs,
                           done=done, record=record)


def _teacher_specs(teacher, mode: str) -> list:
    specs = [] if teacher is None else list(teacher) if isinstance(teacher, list | tuple) \
        else [teacher]
    if not specs and mode != "born-again":
        raise EdgeDistillError(
            "teacher: give at least one teacher (only --mode born-again runs without one)")
    return specs


def _check_mode_settings(mode, generations, assistants, adversary, synthetic_samples) -> None:
    if mode == "born-again" and (not isinstance(generations, int) or generations < 1):
        raise EdgeDistillError(f"generations: must be a whole number of at least 1, "
                               f"got {generations!r}")
    if mode == "assistant" and not assistants:
        raise EdgeDistillError(
            "assistant mode: give at least one assistant (--assistant, a zoo name or a model "
            "file between the teacher and the student in size)")
    if mode != "assistant" and assistants:
        raise EdgeDistillError("assistants: only --mode assistant uses them")
    if mode != "adversarial" and adversary is not None:
        raise EdgeDistillError("adversary: only --mode adversarial uses it")
    if synthetic_samples is not None and (mode != "data-free" or not isinstance(
            synthetic_samples, int) or synthetic_samples < 1):
        raise EdgeDistillError(
            "synthetic-samples: a whole number of at least 1, only with --mode data-free")


def _image_augmentations(specs, data) -> tuple:
    """``specs`` as augmentations if ``data`` are images, else none."""
    return tuple(augment_lib.get(spec) for spec in specs) if len(data.input_shape) == 3 else ()


def _teachers(specs, data, budget, augmentations, batch_size, seed, progress, fits: Fits,
              out: Path):
    """The teachers (zoo names trained and saved here) and where each lives."""
    k = keras()
    members, paths = [], []
    for index, spec in enumerate(specs):
        if is_zoo_name(spec):
            file = "teacher.h5" if len(specs) == 1 else f"teacher-{index}.h5"
            shown = ", ".join(a.registered_name for a in augmentations) or "no"
            progress.stage("teacher", f"training {spec} on {data.name} ({budget.epochs} epochs "
                           f"at most, learning rate {budget.learning_rate:g}, {shown} "
                           "augmentation)")
            model = zoo.build(str(spec), data.input_shape, data.num_classes)
            plan = links.LinkPlan(losses=(), loss_weights=None, alpha=1.0, budget=budget,
                                  batch_size=batch_size, seed=seed + index,
                                  augmentations=augmentations)
            fits.run(f"teacher-{index}", model, file, lambda checkpoints, m=model, p=plan:
                     links.train_alone(m, data, p, progress=progress, stage="teacher",
                                       checkpoints=checkpoints))
            members.append(as_teacher(model))
            paths.append(str(out / file))
        else:
            members.append(spec if isinstance(spec, Teacher) else
                           as_teacher(spec) if isinstance(spec, k.Model) else
                           load_teacher(spec))
            paths.append(str(spec) if isinstance(spec, str | os.PathLike) else members[-1].name)
    return members, paths


def _student(spec, data: Dataset):
    k = keras()
    if isinstance(spec, k.Model):
        return spec
    if is_zoo_name(spec):
        return zoo.build(str(spec), data.input_shape, data.num_classes)
    return load_keras_model(spec)


def _same_architecture(model, student_model, spec) -> list:
    """``model``'s weights, which must fit ``student_model`` one for one."""
    weights = model.get_weights()
    if [w.shape for w in weights] != [w.shape for w in student_model.get_weights()]:
        raise EdgeDistillError(
            f"scratch student {spec}: its weights do not fit the student's architecture "
            f"({student_model.name}); the baseline must be the same network")
    return weights


def _check_data_free_teachers(teacher_specs, data) -> None:
    """Fails before any training when a zoo teacher has no BatchNorm to invert."""
    for spec in filter(is_zoo_name, teacher_specs):
        batchnorm_layers(zoo.build(str(spec), data.input_shape, data.num_classes), str(spec))


def _check_layer_names(losses, students, teacher_specs, data: Dataset) -> None:
    """Fails before any training when a loss names a layer the models lack."""
    for loss in losses:
        if loss.student_layer_name:
            for model in students:
                find_layer(model, loss.student_layer_name)
        if loss.teacher_layer_name:
            for spec in filter(is_zoo_name, teacher_specs):
                find_layer(zoo.build(str(spec), data.input_shape, data.num_classes),
                           loss.teacher_layer_name)


def _check_models(teacher: Teacher, student, data: Dataset) -> None:
    if tuple(teacher.output_shape[1:]) != tuple(student.output_shape[1:]):
        raise EdgeDistillError(
            f"{teacher.name} and {student.name}: output shapes differ ({teacher.output_shape} vs "
            f"{student.output_shape}); the student must predict the teacher's classes"
        )
    data.check_fits(student.input_shape, output_units(student, student.name), student.name)
    if teacher.input_shape is not None:
        data.check_fits(teacher.input_shape, int(teacher.output_shape[-1]), teacher.name)


def _teacher_accuracy(teacher: Teacher, data, batch_size: int) -> float | None:
    if not teacher.runs_in_graph:
        return None
    return links.test_accuracy(
        lambda x: teacher.predict(x, batch_size=max(batch_size, 256))["output"], data, batch_size)


def _teacher_params(members) -> int | None:
    models = [getattr(m, "model", None) for m in members]
    if any(m is None or not hasattr(m, "count_params") for m in models):
        return None
    return sum(int(m.count_params()) for m in models)


def _robustness_warnings(robust: dict | None, clean_accuracy: float) -> tuple[str, ...]:
    """A student robust only to the attack it trained on: FGSM's catastrophic overfitting.

    Its signature: the training attack leaves at least half the clean accuracy,
    the evaluation attack less than half of that.
    """
    if not robust or not robust["training_attack"]:
        return ()
    evaluated = robust["student_accuracy"]
    trained = robust["training_attack"]["student_accuracy"]
    if trained < clean_accuracy / 2 or evaluated >= trained / 2:
        return ()
    return (f"under {adversarial.get(robust['evaluation']).label} the student keeps "
            f"{100 * evaluated:.1f}% against {100 * trained:.1f}% under the "
            f"{adversarial.get(robust['adversary']).label} it trained on: its robustness ends "
            "with that attack (catastrophic overfitting); train against pgd, FGSM from a "
            f"random start (--adversary pgd:epsilon={robust['adversary']['epsilon']:g},steps=1,"
            f"step_size={1.25 * robust['adversary']['epsilon']:g}) or a smaller epsilon",)


def _warnings(teacher_accuracy, scratch_accuracy, given_teacher: bool) -> tuple[str, ...]:
    if not given_teacher or teacher_accuracy is None or scratch_accuracy is None:
        return ()
    if teacher_accuracy < scratch_accuracy + TEACHER_MARGIN:
        return (
            f"the teacher ({100 * teacher_accuracy:.1f}%) is not clearly better than the student "
            f"trained from scratch ({100 * scratch_accuracy:.1f}%): it has little to teach",
        )
    return ()
