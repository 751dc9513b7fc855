"""Distillation losses: what the student learns from the teacher.

Named after Keras 3's ``keras.distillation`` API. A loss compares teacher and
student outputs (the final logits, or the outputs of named layers) and
returns one value per example, or one value for the batch when it relates
examples to each other (RKD). The :class:`~edgedistill.distill.Distiller`
reduces it with the sample weights and the distribution strategy.

Each loss registers itself under one snake_case name with :func:`register`;
:func:`get` and :func:`serialize` turn names and configs into losses and back.

Example:
    >>> loss = get("logits_distillation")
    >>> serialize(loss)["config"]
    {'temperature': 2.0, 'loss': 'kl_divergence', 'standardize': False}
    >>> get({"class_name": "FeatureDistillation",
    ...      "config": {"teacher_layer_name": "conv2d_1", "student_layer_name": "conv2d"}})
"""

from __future__ import annotations

import math

from edgedistill import specs
from edgedistill._tf import tensorflow
from edgedistill.errors import EdgeDistillError

# The temperature of logits_distillation unless told: chosen by measurement
# (benchmarks/distill.py), as are distill()'s alpha and epochs.
DEFAULT_TEMPERATURE = 2.0


class DistillationLoss:
    """Base class of every distillation loss.

    Attributes:
        teacher_layer_name: the teacher layer whose output the loss reads;
            None for the final output (logits).
        student_layer_name: likewise for the student.
        per_example: True when :meth:`compute_loss` returns one value per
            example, False when it returns one value for the batch.
        needs_labels: True when :meth:`compute_loss` also takes the batch's
            labels (class indices or probability rows) as ``labels``.
    """

    registered_name = ""
    teacher_layer_name: str | None = None
    student_layer_name: str | None = None
    per_example = True
    needs_labels = False

    def compute_loss(self, teacher_outputs, student_outputs):
        """Returns the loss: shape ``(batch,)`` if ``per_example`` else a scalar."""
        raise NotImplementedError

    def build_adapter(self, teacher_shape, student_shape, name: str):
        """A trainable layer mapping student outputs to the teacher's shape, or None.

        The Distiller trains the adapter with the student; it never reaches
        the exported student.
        """
        del teacher_shape, student_shape, name
        return None

    def validate_shapes(self, teacher_shape, student_shape) -> None:
        """Raises EdgeDistillError when the outputs cannot be compared."""
        if tuple(teacher_shape[1:]) != tuple(student_shape[1:]):
            raise EdgeDistillError(
                f"{self.registered_name}: teacher output shape {_shape(teacher_shape)} differs "
                f"from student output shape {_shape(student_shape)}"
            )

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> DistillationLoss:
        try:
            return cls(**config)
        except TypeError as e:
            raise EdgeDistillError(f"{cls.registered_name}: bad config ({e})") from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise EdgeDistillError(f"{name}: must be a finite number above 0, got {value}")
    return value


_LOSSES = specs.Registry("distillation loss", DistillationLoss, option="loss")
register = _LOSSES.register
names = _LOSSES.names


@register("logits_distillation")
class LogitsDistillation(DistillationLoss):
    """Hinton et al.'s soft-target loss on temperature-scaled softmax outputs.

    ``T² · KL(softmax(teacher / T) || softmax(student / T))`` per example. The
    ``T²`` factor keeps the gradients on the scale of the hard-label loss
    whatever the temperature.

    Args:
        temperature: softens both distributions; higher shows more of the
            teacher's "dark knowledge" about wrong classes. The default, 2,
            measured best of 1-4 for small students (benchmarks/RESULTS.md).
        loss: ``"kl_divergence"``, or ``"categorical_crossentropy"``
            (cross-entropy against the soft targets: same gradients, offset by
            the teacher's entropy).
        standardize: z-score each example's logits (teacher and student
            alike) before the temperature, as in Sun et al., "Logit
            Standardization in Knowledge Distillation" (CVPR 2024): the student
            matches the teacher's ranking and relative gaps of the classes,
            not the scale of its logits, which a small student may not reach.

    Example:
        >>> LogitsDistillation(temperature=4.0).compute_loss(teacher_logits, student_logits)
    """

    _LOSSES = ("kl_divergence", "categorical_crossentropy")

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, loss: str = "kl_divergence",
                 standardize: bool = False):
        self.temperature = _positive("temperature", temperature)
        if loss not in self._LOSSES:
            raise EdgeDistillError(f"loss: {loss!r} unknown; use one of {', '.join(self._LOSSES)}")
        self.loss = loss
        if not isinstance(standardize, bool):
            raise EdgeDistillError(f"standardize: must be true or false, got {standardize!r}")
        self.standardize = standardize

    def compute_loss(self, teacher_outputs, student_outputs):
        tf = tensorflow()
        t = self.temperature
        teacher = tf.cast(teacher_outputs, tf.float32)
        student = tf.cast(student_outputs, tf.float32)
        if self.standardize:
            teacher, student = _standardized(teacher), _standardized(student)
        teacher_log_p = tf.nn.log_softmax(teacher / t, axis=-1)
        student_log_q = tf.nn.log_softmax(student / t, axis=-1)
        teacher_p = tf.exp(teacher_log_p)
        per_example = -tf.reduce_sum(teacher_p * student_log_q, axis=-1)
        if self.loss == "kl_divergence":
            per_example += tf.reduce_sum(teacher_p * teacher_log_p, axis=-1)
        return per_example * (t * t)

    def get_config(self) -> dict:
        return {"temperature": self.temperature, "loss": self.loss,
                "standardize": self.standardize}


def _standardized(logits):
    """Each row's logits minus their mean, over their standard deviation."""
    tf = tensorflow()
    mean, variance = tf.nn.moments(logits, axes=[-1], keepdims=True)
    return (logits - mean) * tf.math.rsqrt(variance + 1e-7)


@register("decoupled_kd")
class DecoupledKD(DistillationLoss):
    """Decoupled knowledge distillation (Zhao et al., CVPR 2022).

    The soft-target loss split in two, each weighted on its own:
    ``TCKD``, the KL divergence between the teacher's and the student's
    binary split of probability into the true class and the rest, and
    ``NCKD``, the KL divergence between their distributions over the other
    classes alone. Plain KD weighs NCKD by the teacher's probability of
    the rest, which is small exactly where the teacher is sure; DKD gives it
    a fixed weight. Both are at temperature ``T`` and scaled by ``T²``.

    Args:
        temperature: softens both distributions.
        target_weight: the weight of TCKD (the paper's alpha, 1).
        non_target_weight: the weight of NCKD (the paper's beta, 8 on
            CIFAR-100, lower for fewer classes).

    Example:
        >>> DecoupledKD().compute_loss(teacher_logits, student_logits, labels)
    """

    needs_labels = True

    def __init__(self, temperature: float = 4.0, target_weight: float = 1.0,
                 non_target_weight: float = 8.0):
        self.temperature = _positive("temperature", temperature)
        self.target_weight = _positive("target_weight", target_weight)
        self.non_target_weight = _positive("non_target_weight", non_target_weight)

    def compute_loss(self, teacher_outputs, student_outputs, labels):
        from edgedistill.distill.labels import class_indices

        tf = tensorflow()
        t = self.temperature
        teacher = tf.cast(teacher_outputs, tf.float32) / t
        student = tf.cast(student_outputs, tf.float32) / t
        target = tf.one_hot(tf.cast(class_indices(labels, student), tf.int32),
                            tf.shape(student)[-1], dtype=tf.float32)

        def binary_log(logits):
            # log p(true class) and log p(the rest), from logsumexp over each part.
            masked = logits - 1e9 * target
            return tf.stack([tf.reduce_logsumexp(logits - 1e9 * (1.0 - target), axis=-1),
                             tf.reduce_logsumexp(masked, axis=-1)], axis=-1) - \
                tf.reduce_logsumexp(logits, axis=-1, keepdims=True)

        def kl(log_p, log_q):
            return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)

        tckd = kl(binary_log(teacher), binary_log(student))
        # Over the other classes only: the true class is pushed out of both softmaxes.
        nckd = kl(tf.nn.log_softmax(teacher - 1e9 * target, axis=-1),
                  tf.nn.log_softmax(student - 1e9 * target, axis=-1))
        return (self.target_weight * tckd + self.non_target_weight * nckd) * (t * t)

    def get_config(self) -> dict:
        return {"temperature": self.temperature, "target_weight": self.target_weight,
                "non_target_weight": self.non_target_weight}


@register("logits_mse")
class LogitsMSE(DistillationLoss):
    """Mean squared error between teacher and student logits.

    The limit of :class:`LogitsDistillation` at high temperature (Hinton et
    al.), and a strong loss of its own (Kim et al. 2021): it matches the
    logits' scale too, not only their softmax.
    """

    def compute_loss(self, teacher_outputs, student_outputs):
        tf = tensorflow()
        diff = tf.cast(student_outputs, tf.float32) - tf.cast(teacher_outputs, tf.float32)
        return tf.reduce_mean(tf.square(diff), axis=-1)


class _LayerLoss(DistillationLoss):
    """A loss on the outputs of a named teacher layer and a named student layer."""

    def __init__(self, teacher_layer_name: str | None = None,
                 student_layer_name: str | None = None):
        for field, value in (("teacher_layer_name", teacher_layer_name),
                             ("student_layer_name", student_layer_name)):
            if value is not None and (not isinstance(value, str) or not value):
                raise EdgeDistillError(f"{field}: must be a layer name, got {value!r}")
        self.teacher_layer_name = teacher_layer_name
        self.student_layer_name = student_layer_name

    def get_config(self) -> dict:
        return {"teacher_layer_name": self.teacher_layer_name,
                "student_layer_name": self.student_layer_name}


@register("feature_distillation")
class FeatureDistillation(_LayerLoss):
    """FitNets hints: the student's feature map regresses the teacher's.

    Per example, the mean squared error between the teacher layer's output and
    the student layer's output passed through a trainable adapter (a 1x1
    convolution for feature maps, a dense layer for vectors) that maps the
    student's channels to the teacher's. Feature maps of different spatial
    sizes are compared at the smaller size (area resizing).

    Args:
        teacher_layer_name: the teacher layer to imitate.
        student_layer_name: the student layer that imitates it.

    Example:
        >>> FeatureDistillation(teacher_layer_name="conv2d_2", student_layer_name="conv2d_1")
    """

    def validate_shapes(self, teacher_shape, student_shape) -> None:
        if len(teacher_shape) != len(student_shape):
            raise EdgeDistillError(
                f"feature_distillation: teacher layer {self.teacher_layer_name} gives "
                f"{_shape(teacher_shape)} but student layer {self.student_layer_name} gives "
                f"{_shape(student_shape)}; pick layers of the same rank"
            )

    def build_adapter(self, teacher_shape, student_shape, name: str):
        from edgedistill.distill.adapters import FeatureAdapter

        return FeatureAdapter(channels=int(teacher_shape[-1]), name=name)

    def compute_loss(self, teacher_outputs, student_outputs):
        tf = tensorflow()
        teacher_outputs, student_outputs = _common_size(teacher_outputs, student_outputs)
        diff = tf.cast(student_outputs, tf.float32) - tf.cast(teacher_outputs, tf.float32)
        return tf.reduce_mean(tf.reshape(tf.square(diff), (tf.shape(diff)[0], -1)), axis=-1)


@register("attention_transfer")
class AttentionTransfer(_LayerLoss):
    """Attention transfer (Zagoruyko & Komodakis 2017) on conv feature maps.

    A map's attention is the channel mean of its squared activations,
    flattened and L2-normalised. Per example, the loss is the squared distance
    between the student's and the teacher's attention (between 0 and 4); the
    paper's ``β/2 · mean`` equals this times ``β / (2 · H · W)``. Channel
    counts may differ; spatial sizes are compared at the smaller one.
    """

    def validate_shapes(self, teacher_shape, student_shape) -> None:
        if len(teacher_shape) != 4 or len(student_shape) != 4:
            raise EdgeDistillError(
                f"attention_transfer: needs conv feature maps (batch, H, W, C); teacher layer "
                f"{self.teacher_layer_name} gives {_shape(teacher_shape)}, student layer "
                f"{self.student_layer_name} gives {_shape(student_shape)}"
            )

    def compute_loss(self, teacher_outputs, student_outputs):
        tf = tensorflow()
        teacher_outputs, student_outputs = _common_size(teacher_outputs, student_outputs)
        diff = _attention(student_outputs) - _attention(teacher_outputs)
        return tf.reduce_sum(tf.square(diff), axis=-1)


def _attention(feature_map):
    tf = tensorflow()
    energy = tf.reduce_mean(tf.square(tf.cast(feature_map, tf.float32)), axis=-1)
    return tf.math.l2_normalize(tf.reshape(energy, (tf.shape(energy)[0], -1)), axis=-1)


def _common_size(a, b):
    """Area-resizes the larger of two feature maps to the other's spatial size."""
    tf = tensorflow()
    if len(a.shape) < 3 or a.shape[1:-1] == b.shape[1:-1]:
        return a, b
    size = [min(int(x), int(y)) for x, y in zip(a.shape[1:-1], b.shape[1:-1], strict=True)]

    def resize(t):
        if list(t.shape[1:-1]) == size:
            return t
        if len(t.shape) == 3:  # (batch, steps, channels): resize as a 1-pixel-high image
            return tf.image.resize(t[:, None], [1, size[0]], method="area")[:, 0]
        return tf.image.resize(t, size, method="area")

    return resize(a), resize(b)


class _RelationLoss(_LayerLoss):
    """Relational KD (Park et al. 2019): compares relations between examples.

    Outputs are flattened to one vector per example, so teacher and student
    widths may differ. The loss is one value for the batch.
    """

    per_example = False

    def validate_shapes(self, teacher_shape, student_shape) -> None:
        pass


def _huber(a, b):
    tf = tensorflow()
    diff = tf.abs(a - b)
    return tf.where(diff < 1.0, 0.5 * tf.square(diff), diff - 0.5)


def _flat(x):
    tf = tensorflow()
    return tf.reshape(tf.cast(x, tf.float32), (tf.shape(x)[0], -1))


def _pairwise_distances(e):
    tf = tensorflow()
    squared = tf.reduce_sum(tf.square(e), axis=-1)
    d2 = squared[:, None] + squared[None, :] - 2.0 * tf.matmul(e, e, transpose_b=True)
    # Zero the diagonal exactly: sqrt's gradient at 0 is infinite.
    off_diagonal = 1.0 - tf.eye(tf.shape(e)[0])
    return tf.sqrt(tf.maximum(d2, 1e-12)) * off_diagonal


@register("rkd_distance")
class RKDDistance(_RelationLoss):
    """RKD distance loss: pairwise distances, each normalised by their mean, matched by Huber."""

    def compute_loss(self, teacher_outputs, student_outputs):
        tf = tensorflow()

        def normalised(e):
            d = _pairwise_distances(_flat(e))
            pairs = tf.reduce_sum(tf.cast(d > 0, tf.float32))
            return d / (tf.reduce_sum(d) / tf.maximum(pairs, 1.0) + 1e-12)

        teacher = tf.stop_gradient(normalised(teacher_outputs))
        return tf.reduce_mean(_huber(normalised(student_outputs), teacher))


@register("rkd_angle")
class RKDAngle(_RelationLoss):
    """RKD angle loss: the angle at every j of every triplet (i, j, k), matched by Huber.

    The cosines come from the batch's Gram matrix G, since
    <e_i - e_j, e_k - e_j> = G_ik - G_ij - G_jk + G_jj: B²·D + B³ work for a
    batch of B embeddings of width D instead of the B³·D of normalising
    every difference vector (3.8x faster with gradients at B=64, D=288).
    """

    def compute_loss(self, teacher_outputs, student_outputs):
        tf = tensorflow()

        def angles(e):
            e = _flat(e)
            gram = tf.matmul(e, e, transpose_b=True)
            norms = tf.linalg.diag_part(gram)
            squared = norms[:, None] + norms[None, :] - 2.0 * gram
            # Float32 resolves these squared distances to about 1e-6 of the squared norms: a pair
            # closer than that (the vertex itself, an example twice in the batch) has no
            # direction, and its cosines are 0, as l2_normalize makes them.
            least = 1e-6 * tf.reduce_max(norms) + 1e-12
            inverse = tf.where(squared > least, tf.math.rsqrt(tf.maximum(squared, least)), 0.0)
            dots = gram[None] - gram[:, :, None] - gram[:, None, :] + norms[:, None, None]
            return dots * inverse[:, :, None] * inverse[:, None, :]

        teacher = tf.stop_gradient(angles(teacher_outputs))
        return tf.reduce_mean(_huber(angles(student_outputs), teacher))


def get(identifier) -> DistillationLoss:
    """Returns a loss from an instance, a name, a ``"name:key=value,..."`` spec or a dict.

    Example:
        >>> get("logits_distillation:temperature=2")

    Raises:
        EdgeDistillError: an unknown name or a config the loss does not take.
    """
    return _LOSSES.get(identifier)


def serialize(loss: DistillationLoss) -> dict:
    """``{"class_name": ..., "config": ...}``, the form :func:`get` reads back."""
    return _LOSSES.serialize(loss)
