"""Choosing temperature, alpha and loss weights on the validation split.

Each trial distills the student from its initial weights for a short budget
with one set of values and is scored by its best validation accuracy; the
test split is never looked at. keras-tuner's Bayesian-optimization oracle
proposes the values: only the oracle is used, which never touches a model,
so it works with tf_keras students (keras-tuner's Tuner classes follow
Keras 3). The oracle is seeded, so a resumed run proposes the same trials.

Example:
    >>> space = search_space(losses)
    >>> result = tune(lambda values: score(values), space, trials=8, seed=0, directory=tmp)
    >>> result.chosen
    {'temperature': 2.0, 'alpha': 0.41}
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edgedistill.distill import losses as losses_lib
from edgedistill.errors import EdgeDistillError

TEMPERATURES = (1.0, 2.0, 4.0, 8.0)


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """Every trial (values and validation accuracy) and the values chosen."""

    trials: tuple[dict, ...]
    chosen: dict
    epochs_per_trial: int
    objective: str
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def search_space(losses: Sequence) -> dict:
    """What is tuned for these losses: name -> ("choice", values) or ("range", low, high, log).

    The temperature is tuned when a loss has one; the hard-label weight
    (alpha) always; each loss's weight when there are several.
    """
    space = {}
    if any(hasattr(loss, "temperature") for loss in losses):
        space["temperature"] = ("choice", TEMPERATURES)
    space["alpha"] = ("range", 0.0, 0.9, False)
    if len(losses) > 1:
        for index in range(len(losses)):
            space[f"loss_weight_{index}"] = ("range", 0.1, 10.0, True)
    return space


def tune(score: Callable[[dict], float], space: dict, *, trials: int, seed: int,
         directory: Path, epochs_per_trial: int, done: Callable[[int], float | None] = None,
         record: Callable[[int, dict, float], None] | None = None) -> TuneResult:
    """Runs ``trials`` trials proposed by a seeded Bayesian-optimization oracle.

    Args:
        score: runs one trial with ``values`` and returns its validation accuracy.
        space: from :func:`search_space`.
        trials: how many trials.
        seed: seeds the oracle.
        directory: the oracle's scratch directory.
        epochs_per_trial: recorded with the result.
        done: the score an earlier, interrupted run recorded for trial ``i``, or None.
        record: called after each new trial, so an interrupted run can resume.
    """
    import keras_tuner

    if not isinstance(trials, int) or trials < 1:
        raise EdgeDistillError(f"tune: trials must be a whole number of at least 1, "
                               f"got {trials!r}")
    started = time.perf_counter()
    # Replayed trials come from the seed, never from a previous oracle's files.
    shutil.rmtree(directory, ignore_errors=True)
    hyperparameters = keras_tuner.HyperParameters()
    for name, (kind, *args) in space.items():
        if kind == "choice":
            hyperparameters.Choice(name, list(args[0]))
        else:
            low, high, log = args
            hyperparameters.Float(name, low, high, sampling="log" if log else "linear")
    oracle = keras_tuner.oracles.BayesianOptimizationOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=trials,
        hyperparameters=hyperparameters, seed=seed)
    oracle.verbose = 0
    # Where the oracle saves its trials; keras-tuner's Tuner sets it the same way.
    oracle._set_project_dir(str(directory), "distill")
    results = []
    for index in range(trials):
        trial = oracle.create_trial(f"edgedistill-{index}")
        values = dict(trial.hyperparameters.values)
        accuracy = done(index) if done else None
        if accuracy is None:
            accuracy = float(score(values))
            if record:
                record(index, values, accuracy)
        oracle.update_trial(trial.trial_id, {"val_accuracy": accuracy})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        results.append({"values": values, "val_accuracy": accuracy})
    best = max(results, key=lambda r: (r["val_accuracy"], -results.index(r)))
    return TuneResult(trials=tuple(results), chosen=best["values"],
                      epochs_per_trial=epochs_per_trial, objective="val_accuracy",
                      seconds=time.perf_counter() - started)


def apply(values: dict, losses: Sequence, loss_weights, alpha: float):
    """The losses, loss weights and alpha that ``values`` set (the rest unchanged)."""
    temperature = values.get("temperature")
    if temperature is not None:
        losses = tuple(
            losses_lib.get({"class_name": type(loss).__name__,
                            "config": {**loss.get_config(), "temperature": temperature}})
            if hasattr(loss, "temperature") else loss
            for loss in losses)
    weights = [values.get(f"loss_weight_{i}") for i in range(len(losses))]
    if all(w is not None for w in weights) and len(losses) > 1:
        loss_weights = tuple(float(w) for w in weights)
    alpha = float(values.get("alpha", alpha))
    if not math.isfinite(alpha):
        raise EdgeDistillError(f"tune: alpha {alpha} is not a number")
    return tuple(losses), loss_weights, alpha
