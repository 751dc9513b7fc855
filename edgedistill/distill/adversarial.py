"""Adversarial examples against the student, for adversarial distillation.

An :class:`Adversary` perturbs a batch within an L-infinity ball of radius
``epsilon`` to raise a model's hard-label loss: FGSM takes one signed
gradient step, PGD (Madry et al. 2018) takes ``steps`` from a random start,
projecting back onto the ball and the valid input range after each. It runs
inside a training step (pure TensorFlow ops), so the Distiller can make the
student match the teacher on the student's own worst cases (Goldblum et al.
2020, adversarially robust distillation).

Example:
    >>> adversary = get("pgd:epsilon=0.1,steps=5")
    >>> x_adv = adversary.perturb(student, x, y)
    >>> adversarial_accuracy(student, (x_test, y_test), adversary)
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from edgedistill import specs
from edgedistill._tf import tensorflow
from edgedistill.distill.labels import hard_label_crossentropy
from edgedistill.errors import EdgeDistillError

METHODS = ("fgsm", "pgd")
# PGD steps for measuring robustness: a model trained on a weak attack is
# judged by a strong one (Madry et al. 2018 evaluate with more steps than they
# train with).
EVALUATION_STEPS = 10


@dataclasses.dataclass(frozen=True)
class Adversary:
    """An L-infinity attack on a classifier's hard-label loss.

    Args:
        method: ``"fgsm"`` (one step of size ``epsilon``) or ``"pgd"``.
        epsilon: the largest change to any input value, in input units
            (inputs in [0, 1]: 0.1 is a tenth of the range).
        steps: PGD's gradient steps (FGSM always takes one).
        step_size: PGD's step; default ``2.5 * epsilon / steps``, enough to
            reach the ball's edge from anywhere inside it.
        value_range: inputs stay within ``[low, high]``; None leaves them unclipped.
    """

    method: str = "pgd"
    epsilon: float = 0.1
    steps: int = 5
    step_size: float | None = None
    value_range: tuple[float, float] | None = (0.0, 1.0)

    def __post_init__(self):
        if self.method not in METHODS:
            raise EdgeDistillError(
                f"adversary: method {self.method!r} unknown; use one of {', '.join(METHODS)}")
        if not _positive(self.epsilon):
            raise EdgeDistillError(f"adversary: epsilon must be a positive number, "
                                   f"got {self.epsilon!r}")
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise EdgeDistillError(f"adversary: steps must be a positive integer, "
                                   f"got {self.steps!r}")
        if self.step_size is not None and not _positive(self.step_size):
            raise EdgeDistillError(f"adversary: step_size must be a positive number, "
                                   f"got {self.step_size!r}")
        if self.value_range is not None:
            low, high = (float(v) for v in self.value_range)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise EdgeDistillError(
                    f"adversary: value_range must be two finite numbers, low < high, "
                    f"got {self.value_range!r}")
            object.__setattr__(self, "value_range", (low, high))

    @property
    def label(self) -> str:
        """A short name for tables: ``FGSM`` or ``PGD-10``."""
        return "FGSM" if self.method == "fgsm" else f"PGD-{self.steps}"

    @property
    def gradient_steps(self) -> int:
        return 1 if self.method == "fgsm" else self.steps

    def perturb(self, model, x, y):
        """Adversarial versions of ``x`` for ``model`` (a callable giving logits).

        Args:
            model: called as ``model(x, training=False)``; its output is
                read as logits.
            x: a batch of inputs.
            y: class indices or class-probability rows.

        Returns:
            A tensor like ``x``, without a gradient path to ``x`` or the model.
        """
        tf = tensorflow()
        x = tf.stop_gradient(tf.cast(x, tf.float32))
        if self.method == "fgsm":
            start, step = x, self.epsilon
        else:
            start = x + tf.random.uniform(tf.shape(x), -self.epsilon, self.epsilon)
            step = self.step_size or 2.5 * self.epsilon / self.steps
        x_adv = self._clip(start)
        for _ in range(self.gradient_steps):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                loss = tf.reduce_sum(hard_label_crossentropy(y, model(x_adv, training=False)))
            gradient = tape.gradient(loss, x_adv)
            x_adv = x_adv + step * tf.sign(gradient)
            x_adv = self._clip(tf.clip_by_value(x_adv, x - self.epsilon, x + self.epsilon))
        return tf.stop_gradient(x_adv)

    def _clip(self, x):
        if self.value_range is None:
            return x
        return tensorflow().clip_by_value(x, *self.value_range)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def get(identifier) -> Adversary:
    """An Adversary from an instance, a method name, a ``"pgd:epsilon=0.1"`` spec or a dict.

    Example:
        >>> get("fgsm:epsilon=0.05")
        Adversary(method='fgsm', epsilon=0.05, steps=5, step_size=None, value_range=(0.0, 1.0))
    """
    if isinstance(identifier, Adversary):
        return identifier
    if isinstance(identifier, str):
        parsed = specs.parse(identifier, "adversary")
        identifier = {"method": parsed["class_name"], **parsed["config"]}
    if not isinstance(identifier, dict):
        raise EdgeDistillError(f"adversary: cannot interpret {identifier!r:.80}; "
                               "give e.g. pgd:epsilon=0.1,steps=5")
    return specs.build(Adversary, identifier, "adversary")


def evaluation_adversary(training: Adversary) -> Adversary:
    """The attack that measures robustness after training against ``training``.

    PGD of the same radius and input range, with at least
    :data:`EVALUATION_STEPS` steps. A model is never judged by the attack it
    was trained on alone: FGSM-trained models can score higher under FGSM
    than on clean inputs (label leaking, Kurakin et al. 2017; catastrophic
    overfitting, Wong et al. 2020) and still fall to a few PGD steps.

    Example:
        >>> evaluation_adversary(get("fgsm:epsilon=0.1"))
        Adversary(method='pgd', epsilon=0.1, steps=10, step_size=None, value_range=(0.0, 1.0))
    """
    steps = max(EVALUATION_STEPS, training.steps if training.method == "pgd" else 1)
    return Adversary("pgd", training.epsilon, steps, value_range=training.value_range)


def adversarial_accuracy(model, data, adversary: Adversary, *, batch_size: int = 256,
                         seed: int = 0) -> float:
    """Top-1 accuracy of ``model`` on ``adversary``'s perturbations of ``data``.

    Args:
        model: a classifier; one ending in a softmax is attacked through its
            log-probabilities.
        data: ``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` examples.
    """
    tf = tensorflow()
    from edgedistill.models import outputs_probabilities

    probabilities = outputs_probabilities(model)

    def logits(inputs, training=False):
        out = model(inputs, training=training)
        return tf.math.log(tf.clip_by_value(out, 1e-7, 1.0)) if probabilities else out

    # A partial, not a closure: TensorFlow counts traces per closure code, and would
    # warn of retracing when several models are evaluated one after another.
    correct = tf.function(functools.partial(_count_correct, logits, adversary),
                          reduce_retracing=True)

    if not isinstance(data, tf.data.Dataset):
        x, y = data
        data = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32),
                                                   np.asarray(y, np.int64)))
    tf.random.set_seed(seed)
    hits = total = 0
    for inputs, labels in data.batch(batch_size):
        hits += int(correct(inputs, labels))
        total += int(tf.shape(labels)[0])
    return hits / max(total, 1)


def _count_correct(logits, adversary: Adversary, inputs, labels):
    tf = tensorflow()
    labels = tf.cast(labels, tf.int64)
    predicted = tf.argmax(logits(adversary.perturb(logits, inputs, labels)), axis=-1)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.int64))


def _positive(value) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
