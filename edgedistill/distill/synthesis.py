"""Inputs synthesized from a teacher's BatchNorm statistics, for data-free distillation.

DeepInversion (Yin et al. 2020): a batch of inputs, started from noise, is
optimized so that at every BatchNormalization layer of the teacher the
batch's per-channel mean and variance match the layer's moving statistics
(which remember the training data), while the teacher classifies each input
as its assigned class; small priors (total variation, L2) keep the inputs
smooth. Random jitter each step keeps them from fitting one alignment.

Everything runs in one compiled step per iteration, a whole batch at once;
the teacher is run in inference mode, so its weights and statistics never
change.

Example:
    >>> x, y, record = synthesize(teacher, 10_000, num_classes=10)
    >>> record.teacher_agreement
    0.99
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from edgedistill._tf import keras, tensorflow
from edgedistill.errors import EdgeDistillError
from edgedistill.models import outputs_probabilities
from edgedistill.streams import StreamData

# Training inputs a data-free run synthesizes unless told (about a minute per
# 1,000 for a 390k-parameter CNN on 2 cores).
DEFAULT_SAMPLES = 5_000


@dataclasses.dataclass(frozen=True)
class SynthesisRecord:
    """How a synthesis went.

    Attributes:
        batchnorm_loss: the mean, over batches, of the last step's distance
            between batch statistics and the teacher's moving statistics.
        initial_batchnorm_loss: the same for the starting noise.
        teacher_agreement: share of inputs the teacher puts in their assigned class.
    """

    count: int
    steps: int
    seconds: float
    batchnorm_layers: tuple[str, ...]
    batchnorm_loss: float
    initial_batchnorm_loss: float
    teacher_agreement: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def synthesize(teacher, count: int, *, num_classes: int | None = None, batch_size: int = 256,
               steps: int = 150, learning_rate: float = 0.1, batchnorm_weight: float = 5.0,
               first_batchnorm_multiplier: float = 10.0, total_variation_weight: float = 1e-4,
               l2_weight: float = 1e-5, jitter: int = 2, value_range=(0.0, 1.0), seed: int = 0,
               progress=None) -> tuple[np.ndarray, np.ndarray, SynthesisRecord]:
    """Synthesizes ``count`` inputs from ``teacher``'s BatchNorm statistics.

    Args:
        teacher: a trained tf_keras functional model with BatchNormalization
            layers, ending in logits or a softmax.
        count: inputs to make; their classes are spread evenly.
        num_classes: default the teacher's output width.
        batch_size: inputs optimized together (the statistics are per batch).
        steps: Adam steps per batch.
        learning_rate: Adam's step on the inputs' parameters.
        batchnorm_weight: weight of the statistics loss; the first
            BatchNorm layer's term is multiplied by ``first_batchnorm_multiplier``,
            as low-level statistics pin down most of the input's look.
        total_variation_weight, l2_weight: smoothness and size priors.
        jitter: image inputs are shifted by up to this many pixels each step.
        value_range: the inputs' range (the training data's).
        seed: fixes the starting noise, the jitter and so the result.
        progress: a :class:`~edgedistill.progress.Progress`; each batch is an epoch.

    Returns:
        ``(x, y, record)``: float32 inputs, int64 assigned classes, a :class:`SynthesisRecord`.

    Raises:
        EdgeDistillError: a teacher without BatchNorm, or a bad setting.
    """
    tf = tensorflow()
    k = keras()
    _check(count=count, batch_size=batch_size, steps=steps)
    for name, value in (("learning_rate", learning_rate), ("batchnorm_weight", batchnorm_weight),
                        ("total_variation_weight", total_variation_weight),
                        ("l2_weight", l2_weight),
                        ("first_batchnorm_multiplier", first_batchnorm_multiplier)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise EdgeDistillError(f"synthesis {name}: must be a finite number >= 0, got {value!r}")
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise EdgeDistillError(f"synthesis value_range: low must be below high, got {value_range}")
    norms = batchnorm_layers(teacher)
    classes = int(num_classes or teacher.output_shape[-1])
    features = k.Model(teacher.inputs, [layer.input for layer in norms] + [teacher.outputs[0]])
    means = [tf.constant(layer.moving_mean) for layer in norms]
    variances = [tf.constant(layer.moving_variance) for layer in norms]
    layer_weights = [batchnorm_weight * (first_batchnorm_multiplier if i == 0 else 1.0)
                     for i in range(len(norms))]
    probabilities = outputs_probabilities(teacher)
    shape = tuple(int(d) for d in teacher.input_shape[1:])
    images = len(shape) == 3

    def statistics_loss(outputs):
        total = 0.0
        for output, mean, variance, weight in zip(outputs, means, variances, layer_weights,
                                                  strict=True):
            axes = list(range(len(output.shape) - 1))
            batch_mean, batch_variance = tf.nn.moments(output, axes)
            total += weight * (tf.norm(batch_mean - mean) + tf.norm(batch_variance - variance))
        return total

    def inputs_of(parameters):
        return low + (high - low) * tf.sigmoid(parameters)

    def logits_of(output):
        return tf.math.log(tf.clip_by_value(output, 1e-7, 1.0)) if probabilities else output

    parameters = tf.Variable(tf.zeros((batch_size, *shape)))
    first_moment = tf.Variable(tf.zeros_like(parameters))
    second_moment = tf.Variable(tf.zeros_like(parameters))

    @tf.function
    def step(targets, iteration, key):
        with tf.GradientTape() as tape:
            x = inputs_of(parameters)
            shown = x
            if images and jitter:
                shifts = tf.random.stateless_uniform([2], key, -jitter, jitter + 1, tf.int32)
                shown = tf.roll(x, shifts, axis=[1, 2])
            *outputs, output = features(shown, training=False)
            bn = statistics_loss(outputs)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                targets, logits_of(output))) + bn
            if images:
                loss += total_variation_weight * tf.reduce_mean(tf.image.total_variation(x))
            loss += l2_weight * tf.reduce_mean(tf.square(x))
        gradient = tape.gradient(loss, parameters)
        # Adam by hand: its state is reset for every batch without a new optimizer.
        first_moment.assign(0.9 * first_moment + 0.1 * gradient)
        second_moment.assign(0.999 * second_moment + 0.001 * tf.square(gradient))
        t = tf.cast(iteration + 1, tf.float32)
        corrected = first_moment / (1 - 0.9**t)
        scale = tf.sqrt(second_moment / (1 - 0.999**t)) + 1e-8
        parameters.assign_sub(learning_rate * corrected / scale)
        return bn

    @tf.function
    def measure(targets):
        *outputs, output = features(inputs_of(parameters), training=False)
        return statistics_loss(outputs), tf.equal(
            tf.argmax(output, axis=-1, output_type=tf.int32), targets)

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    rng.shuffle(labels)
    batches = -(-count // batch_size)
    xs, initial, final, agreed = [], [], [], 0
    for index in range(batches):
        rows = labels[index * batch_size:(index + 1) * batch_size]
        targets = np.resize(rows, batch_size).astype(np.int32)  # the last batch is padded
        parameters.assign(rng.normal(0.0, 1.0, (batch_size, *shape)).astype(np.float32))
        first_moment.assign(tf.zeros_like(parameters))
        second_moment.assign(tf.zeros_like(parameters))
        initial.append(float(measure(tf.constant(targets))[0]))
        for iteration in range(steps):
            step(tf.constant(targets), tf.constant(iteration),
                 tf.constant([seed, index * steps + iteration], tf.int64))
        bn, hits = measure(tf.constant(targets))
        hits = hits.numpy()[:len(rows)]
        final.append(float(bn))
        agreed += int(np.sum(hits))
        xs.append(inputs_of(parameters).numpy()[:len(rows)])
        if progress is not None:
            progress.epoch("synthesize", index + 1, batches,
                           {"batchnorm_loss": float(bn), "teacher_agreement": float(np.mean(hits))})
    record = SynthesisRecord(
        count=count, steps=steps, seconds=time.perf_counter() - started,
        batchnorm_layers=tuple(layer.name for layer in norms),
        batchnorm_loss=float(np.mean(final)), initial_batchnorm_loss=float(np.mean(initial)),
        teacher_agreement=agreed / count)
    return np.concatenate(xs).astype(np.float32), labels.astype(np.int64), record


def batchnorm_layers(teacher, name: str | None = None) -> list:
    """The teacher's BatchNormalization layers; none is an error naming the teacher."""
    k = keras()
    norms = [layer for layer in teacher.layers if isinstance(layer, k.layers.BatchNormalization)]
    if not norms:
        raise EdgeDistillError(
            f"{name or teacher.name}: has no BatchNormalization layer; data-free distillation "
            "matches BatchNorm statistics, so give a teacher with BatchNorm (e.g. teacher-cnn) "
            "or give training data")
    return norms


def _check(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise EdgeDistillError(f"synthesis {name}: must be a whole number of at least 1, "
                                   f"got {value!r}")


def synthetic_dataset(teacher, data, samples: int | None, seed: int, progress):
    """``data`` with its training and validation splits replaced by synthesized inputs.

    Args:
        teacher: a :class:`~edgedistill.distill.teachers.Teacher` around a
            tf_keras model with BatchNorm layers.
        data: the Dataset or StreamData whose shapes, classes and test split are kept.
        samples: training inputs to synthesize (default ``DEFAULT_SAMPLES``
            or the training split's size if smaller); a tenth more for validation.

    Returns:
        The new data, and a record of the synthesis with its seconds.
    """
    model = getattr(teacher, "model", None)
    if teacher.kind != "keras" or model is None:
        raise EdgeDistillError(
            f"{teacher.name}: data-free distillation needs a tf_keras teacher with BatchNorm "
            "layers (a .h5 or .keras file or a zoo name)")
    batchnorm_layers(model, teacher.name)
    train = samples or min(DEFAULT_SAMPLES, data.samples["train"] if isinstance(
        data, StreamData) else len(data.x_train))
    val = max(1, train // 10)
    progress.stage("synthesize", f"{train + val} inputs from {teacher.name}'s BatchNorm "
                   "statistics")
    started = time.perf_counter()
    x, y, record = synthesize(model, train + val, num_classes=data.num_classes, seed=seed,
                              progress=progress)
    name = f"synthesized from {teacher.name}"
    if isinstance(data, StreamData):
        tf = tensorflow()
        synthetic = dataclasses.replace(
            data, name=name, train=tf.data.Dataset.from_tensor_slices((x[:train], y[:train])),
            val=tf.data.Dataset.from_tensor_slices((x[train:], y[train:])),
            test=data.test_split, samples={**data.samples, "train": train, "val": val})
    else:
        synthetic = dataclasses.replace(
            data, name=name, x_train=x[:train], y_train=y[:train], x_val=x[train:],
            y_val=y[train:], val_source="split", train_rows=np.arange(train),
            val_rows=np.arange(train, train + val))
    return synthetic, {"synthesis": record.to_dict(), "samples": train + val,
                       "seconds": time.perf_counter() - started}
