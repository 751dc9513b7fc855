"""Distillation losses: what the student learns from the teacher's outputs.

Named after Keras 3's ``keras.distillation`` API. Each loss maps teacher and
student logits to a per-example loss; :func:`get` and :func:`serialize` turn
names and configs into losses and back, so a later loss (feature-based,
relation-based) only registers itself here.

Example:
    >>> loss = get("logits_distillation")
    >>> serialize(loss)
    {'class_name': 'LogitsDistillation', 'config': {'temperature': 4.0, 'loss': 'kl_divergence'}}
"""

from __future__ import annotations

from edgedistill._tf import tensorflow
from edgedistill.errors import EdgeDistillError


class DistillationLoss:
    """Base class: ``loss(teacher_logits, student_logits)`` gives one value per example."""

    def __call__(self, teacher_logits, student_logits):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> DistillationLoss:
        return cls(**config)


class LogitsDistillation(DistillationLoss):
    """Hinton et al.'s soft-target loss on temperature-scaled softmax outputs.

    The loss is multiplied by ``temperature ** 2`` so its gradients keep the
    same scale as the hard-label loss whatever the temperature.

    Args:
        temperature: softens both distributions; higher shows more of the
            teacher's "dark knowledge" about wrong classes.
        loss: ``"kl_divergence"`` (KL(teacher || student)) or
            ``"categorical_crossentropy"`` (cross-entropy against the teacher's
            soft targets; same gradients, offset by the teacher's entropy).

    Example:
        >>> loss = LogitsDistillation(temperature=4.0)
        >>> per_example = loss(teacher_logits, student_logits)
    """

    _LOSSES = ("kl_divergence", "categorical_crossentropy")

    def __init__(self, temperature: float = 4.0, loss: str = "kl_divergence"):
        if not temperature > 0:
            raise EdgeDistillError(f"temperature: must be positive, got {temperature}")
        if loss not in self._LOSSES:
            raise EdgeDistillError(f"loss: {loss!r} unknown; use one of {', '.join(self._LOSSES)}")
        self.temperature = float(temperature)
        self.loss = loss

    def __call__(self, teacher_logits, student_logits):
        tf = tensorflow()
        t = self.temperature
        teacher_log_p = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t, axis=-1)
        student_log_q = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t, axis=-1)
        teacher_p = tf.exp(teacher_log_p)
        cross_entropy = -tf.reduce_sum(teacher_p * student_log_q, axis=-1)
        if self.loss == "kl_divergence":
            per_example = cross_entropy + tf.reduce_sum(teacher_p * teacher_log_p, axis=-1)
        else:
            per_example = cross_entropy
        return per_example * (t * t)

    def get_config(self) -> dict:
        return {"temperature": self.temperature, "loss": self.loss}


_REGISTRY: dict[str, type[DistillationLoss]] = {
    "logits_distillation": LogitsDistillation,
    "LogitsDistillation": LogitsDistillation,
}


def get(identifier) -> DistillationLoss:
    """Returns a loss from an instance, a registered name or a serialized dict."""
    if isinstance(identifier, DistillationLoss):
        return identifier
    if isinstance(identifier, str):
        cls = _REGISTRY.get(identifier)
        if cls is None:
            known = ", ".join(sorted(k for k in _REGISTRY if "_" in k))
            raise EdgeDistillError(f"{identifier}: unknown distillation loss; known: {known}")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _REGISTRY.get(identifier["class_name"])
        if cls is None:
            raise EdgeDistillError(f"{identifier['class_name']}: unknown distillation loss")
        return cls.from_config(identifier.get("config", {}))
    raise EdgeDistillError(f"cannot interpret {identifier!r} as a distillation loss")


def serialize(loss: DistillationLoss) -> dict:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
