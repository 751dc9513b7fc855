"""Checkpoints of a distill run, so that ``--resume`` continues where it stopped.

A run is a sequence of fits (teachers, assistants, generations, the student,
the scratch baseline). Each fit writes a checkpoint after every epoch: the
model's and the optimizer's variables, the best epoch's weights, the history
so far. A finished fit leaves its model file and a record. After a crash, a
``kill -9`` or Ctrl-C, the resumed run skips finished fits, restarts the
interrupted one after its last completed epoch with the same batches (see
:func:`~edgedistill.distill.augment.training_batches`), and ends where the
uninterrupted run would have.

Layout, under a run's work directory::

    checkpoints/run.json              the settings; --resume refuses others
    checkpoints/<fit>/latest/         the last completed epoch
    checkpoints/<fit>/done.json       the finished fit's record

Example:
    >>> checkpoints = RunCheckpoints(work / "checkpoints", settings, resume=True)
    >>> checkpoints.done("distill")   # a finished fit's record, or None
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from edgedistill._fileio import write_text_atomic
from edgedistill._tf import keras, tensorflow
from edgedistill.data import Dataset
from edgedistill.distill import augment as augment_lib
from edgedistill.distill import losses as losses_lib
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model, save_keras_model
from edgedistill.progress import Progress

LATEST = "latest"


class RunCheckpoints:
    """The checkpoints of one run under ``root``.

    Args:
        root: their directory (created).
        settings: what defines the run (JSON-able); a resumed run must
            bring the same.
        resume: continue from what ``root`` holds; otherwise it must be empty.
    """

    def __init__(self, root: Path, settings: dict, resume: bool):
        self.root = Path(root)
        settings = json.loads(json.dumps(settings, default=str))
        manifest = self.root / "run.json"
        if resume and manifest.is_file():
            try:
                saved = json.loads(manifest.read_text())
            except (OSError, ValueError):
                saved = None
            if not isinstance(saved, dict):
                raise EdgeDistillError(
                    f"{manifest}: damaged; pass --force instead of --resume to start over")
            for key in sorted(set(saved) | set(settings)):
                if saved.get(key) != settings.get(key):
                    raise EdgeDistillError(
                        f"--resume: the interrupted run had {key} = {saved.get(key)!r:.60}, "
                        f"this one {settings.get(key)!r:.60}; resume with the same settings "
                        "or pass --force to start over")
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(manifest, json.dumps(settings, indent=2, sort_keys=True), force=True)

    def done(self, fit: str) -> dict | None:
        """The record a finished fit left with :meth:`finish`, or None."""
        path = self.root / fit / "done.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def finish(self, fit: str, record: dict) -> None:
        """Marks ``fit`` finished (after its model file is in place) and drops its epochs."""
        write_text_atomic(self.root / fit / "done.json", json.dumps(record), force=True)
        shutil.rmtree(self.root / fit / LATEST, ignore_errors=True)

    def epochs(self, fit: str) -> EpochCheckpoints:
        return EpochCheckpoints(self.root / fit)


class EpochCheckpoints:
    """One fit's checkpoint after each epoch: variables, best weights and history."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @property
    def latest(self) -> Path:
        return self.directory / LATEST

    def state(self) -> dict | None:
        """What the last completed epoch left (``epoch``, ``history``, ...), or None."""
        try:
            return json.loads((self.latest / "state.json").read_text())
        except (OSError, ValueError):
            return None

    def restore(self, model) -> list[np.ndarray] | None:
        """Loads the last epoch's variables into ``model`` and its optimizer.

        Returns:
            The best epoch's weights so far, or None.
        """
        tf = tensorflow()
        model.optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        checkpoint.read(str(self.latest / "variables")).assert_existing_objects_matched()
        best = self.latest / "best_weights.npz"
        if not best.is_file():
            return None
        with np.load(best) as arrays:
            return [arrays[f"w{i}"] for i in range(len(arrays.files))]

    def write(self, model, state: dict, best_weights) -> None:
        """Replaces the checkpoint with this epoch's, atomically (rename)."""
        tf = tensorflow()
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = self.directory / f"{LATEST}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(
            str(staging / "variables"))
        if best_weights is not None:
            np.savez(staging / "best_weights.npz",
                     **{f"w{i}": w for i, w in enumerate(best_weights)})
        (staging / "state.json").write_text(json.dumps(state))
        previous = self.directory / f"{LATEST}.old"
        shutil.rmtree(previous, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.latest.rename(previous)
        staging.rename(self.latest)
        shutil.rmtree(previous, ignore_errors=True)


def epoch_callback(checkpoints: EpochCheckpoints, best, timer, history_before: dict):
    """A Keras callback writing ``checkpoints`` at each epoch end.

    Args:
        best: the fit's early-stopping callback (its state is saved).
        timer: the fit's epoch timer (its seconds are saved).
        history_before: the history of epochs run before a resume.
    """

    class _Checkpoint(keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.history = {name: list(values) for name, values in history_before.items()}

        def on_epoch_end(self, epoch, logs=None):
            for name, value in (logs or {}).items():
                self.history.setdefault(name, []).append(float(value))
            checkpoints.write(self.model, {
                "epoch": epoch + 1,
                "history": self.history,
                "epoch_seconds": list(timer.seconds),
                "best": _finite_or_none(best.best),
                "best_epoch": int(best.best_epoch),
                "wait": int(best.wait),
            }, best.best_weights)

    return _Checkpoint()


def _finite_or_none(value):
    value = float(value)
    return value if np.isfinite(value) else None


class Fits:
    """Runs each fit of a run once: one finished before an interruption is loaded instead.

    Attributes:
        records: each fit's :class:`~edgedistill.distill.training.FitRecord` as a dict.
        seconds: each fit's wall-clock seconds (teacher outputs included).
    """

    def __init__(self, work: Path, checkpoints: RunCheckpoints, progress: Progress):
        self.work, self.checkpoints, self.progress = work, checkpoints, progress
        self.records: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}

    def run(self, name: str, model, file: str, train, export=None) -> tuple[dict | None, object]:
        """Trains ``model`` with ``train(epoch_checkpoints)`` and saves it as ``file``.

        Args:
            export: turns the trained model into the one saved and returned
                (``strip_student`` drops pruning wrappers); by default the
                model itself.

        Returns:
            The teacher-output cache the fit read (a dict per split, or
            None), and the trained model: ``model`` itself, or what
            ``export`` made of it.
        """
        done = self.checkpoints.done(name)
        if done is None:
            link = train(self.checkpoints.epochs(name))
            if export is not None:
                model = export(model)
            save_keras_model(model, self.work / file)
            done = {"record": link.record.to_dict(), "seconds": link.seconds,
                    "cache": {split: c.to_dict() for split, c in link.cache.items()}
                    if link.cache else None}
            self.checkpoints.finish(name, done)
        else:
            self.progress.stage(name, f"finished before the interruption: {file}")
            saved = load_keras_model(self.work / file)
            if export is not None:
                model = saved
            else:
                model.set_weights(saved.get_weights())
        self.records[name], self.seconds[name] = done["record"], done["seconds"]
        return done["cache"], model


def run_settings(given: dict) -> dict:
    """What makes two runs the same run, for ``--resume``: settings and data digests."""
    data = given.pop("data")
    plan = given.pop("plan")
    digest = hashlib.sha256()
    if isinstance(data, Dataset):  # a stream is known by its name and shapes only
        for array in (data.x_train, data.y_train, data.x_val, data.y_val):
            digest.update(np.ascontiguousarray(array).tobytes())

    def describe(value):
        if isinstance(value, list | tuple):
            return [describe(v) for v in value]
        if isinstance(value, str | int | float | bool | type(None)):
            return value
        if isinstance(value, os.PathLike):
            return str(value)
        return f"{type(value).__name__}:{getattr(value, 'name', '')}"

    return {
        **{key: describe(value) for key, value in given.items() if key != "teacher_budget"},
        "teacher_budget": given["teacher_budget"].to_dict(),
        "data": {**data.to_dict(), "sha256": digest.hexdigest()},
        "losses": [losses_lib.serialize(x) for x in plan.losses],
        "loss_weights": plan.loss_weights, "alpha": plan.alpha,
        "budget": plan.budget.to_dict(), "batch_size": plan.batch_size, "seed": plan.seed,
        "augment": [augment_lib.serialize(a) for a in plan.augmentations],
        "cache_teacher": plan.cache_teacher,
        "adversary": plan.adversary.to_dict() if plan.adversary else None,
    }
