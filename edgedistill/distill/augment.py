"""Seeded batch augmentation for consistent teaching and fair baselines.

Distillation pays off when the teacher and the student see the very same
augmented image (Beyer et al. 2022, "a good teacher is patient and
consistent"): augmentation happens in the input pipeline and the Distiller
runs the teacher on the batch the student sees. A from-scratch baseline must
see the same batches too, so :func:`training_batches` is deterministic in its
seed: two pipelines built with the same seed give identical batches, epoch
after epoch, and each epoch differs from the last.

Every augmentation works on a whole batch with per-sample random draws from
stateless random ops, so nothing runs per sample in Python.

Example:
    >>> train = training_batches(x, y, batch_size=64, seed=0,
    ...                          augmentations=[get("shift"), get("mixup")], num_classes=10)
"""

from __future__ import annotations

import math

import numpy as np

from edgedistill import specs
from edgedistill._tf import tensorflow
from edgedistill.errors import EdgeDistillError


class Augmentation:
    """Base class: ``augmentation(x, y, seed)`` returns the augmented ``(x, y)`` batch.

    Attributes:
        mixes_labels: True when labels come out as class-probability rows.
        images_only: True when inputs must be images (batch, H, W[, C]).
    """

    registered_name = ""
    mixes_labels = False
    images_only = True

    def __call__(self, x, y, seed):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Augmentation:
        try:
            return cls(**config)
        except TypeError as e:
            raise EdgeDistillError(f"{cls.registered_name}: bad config ({e})") from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _fraction(name: str, value, low: float, high: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise EdgeDistillError(f"{name}: must lie in [{low:g}, {high:g}], got {value}")
    return value


def _seeds(seed, n: int):
    """``n`` independent stateless seeds from one."""
    tf = tensorflow()
    return tf.unstack(tf.random.experimental.stateless_split(seed, n), num=n)


_AUGMENTATIONS = specs.Registry("augmentation", Augmentation, option="augment")
register = _AUGMENTATIONS.register
names = _AUGMENTATIONS.names


@register("shift")
class Shift(Augmentation):
    """Random translation by whole pixels, up to ``fraction`` of each side; vacated pixels are 0.

    Args:
        fraction: the largest shift as a share of height and width.
    """

    def __init__(self, fraction: float = 0.1):
        self.fraction = _fraction("shift fraction", fraction, 0.0, 0.5)

    def __call__(self, x, y, seed):
        tf = tensorflow()
        height, width = int(x.shape[1]), int(x.shape[2])
        pad_h, pad_w = round(height * self.fraction), round(width * self.fraction)
        if pad_h == 0 and pad_w == 0:
            return x, y
        batch = tf.shape(x)[0]
        s_h, s_w = _seeds(seed, 2)
        dy = tf.random.stateless_uniform([batch], s_h, 0, 2 * pad_h + 1, tf.int32)
        dx = tf.random.stateless_uniform([batch], s_w, 0, 2 * pad_w + 1, tf.int32)
        padded = tf.pad(x, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        # Gather each sample's window: row dy+i, column dx+j of its padded image.
        rows = dy[:, None] + tf.range(height)[None, :]
        cols = dx[:, None] + tf.range(width)[None, :]
        out = tf.gather(padded, rows, axis=1, batch_dims=1)
        out = tf.gather(out, cols, axis=2, batch_dims=1)
        return out, y

    def get_config(self) -> dict:
        return {"fraction": self.fraction}


@register("flip")
class Flip(Augmentation):
    """Random horizontal flip with probability ``p`` (wrong for digits and text).

    Args:
        p: the probability of a flip.
    """

    def __init__(self, p: float = 0.5):
        self.p = _fraction("flip p", p, 0.0, 1.0)

    def __call__(self, x, y, seed):
        tf = tensorflow()
        flip = tf.random.stateless_uniform([tf.shape(x)[0]], seed) < self.p
        return tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x), y

    def get_config(self) -> dict:
        return {"p": self.p}


@register("crop")
class Crop(Augmentation):
    """A random crop of ``fraction`` of each side, resized back to the input size (bilinear).

    Args:
        fraction: the crop's side as a share of the image's side.
    """

    def __init__(self, fraction: float = 0.875):
        self.fraction = _fraction("crop fraction", fraction, 0.25, 1.0)

    def __call__(self, x, y, seed):
        tf = tensorflow()
        batch = tf.shape(x)[0]
        size = 1.0 - self.fraction
        offsets = tf.random.stateless_uniform([batch, 2], seed, 0.0, size)
        boxes = tf.concat([offsets, offsets + self.fraction], axis=1)
        out = tf.image.crop_and_resize(x, boxes, tf.range(batch), tf.shape(x)[1:3])
        return tf.cast(out, x.dtype), y

    def get_config(self) -> dict:
        return {"fraction": self.fraction}


@register("mixup")
class Mixup(Augmentation):
    """mixup (Zhang et al. 2018): each sample blended with another of its batch.

    ``x = lam * x + (1 - lam) * x[perm]`` with one ``lam ~ Beta(alpha, alpha)``
    per sample; labels become rows of class probabilities mixed the same way.

    Args:
        alpha: the Beta distribution's parameter; small values mix little.
    """

    mixes_labels = True
    images_only = False

    def __init__(self, alpha: float = 0.2):
        self.alpha = _fraction("mixup alpha", alpha, 1e-3, 10.0)

    def __call__(self, x, y, seed):
        tf = tensorflow()
        batch = tf.shape(x)[0]
        s_a, s_b, s_perm = _seeds(seed, 3)
        a = tf.random.stateless_gamma([batch], s_a, alpha=self.alpha)
        b = tf.random.stateless_gamma([batch], s_b, alpha=self.alpha)
        lam = a / tf.maximum(a + b, 1e-12)
        perm = tf.argsort(tf.random.stateless_uniform([batch], s_perm))
        shape = tf.concat([[batch], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
        lam_x = tf.reshape(lam, shape)
        x = lam_x * x + (1.0 - lam_x) * tf.gather(x, perm)
        y = lam[:, None] * y + (1.0 - lam[:, None]) * tf.gather(y, perm)
        return x, y

    def get_config(self) -> dict:
        return {"alpha": self.alpha}


def get(identifier) -> Augmentation:
    """Returns an augmentation from an instance, a name, a ``"name:key=value"`` spec or a dict."""
    return _AUGMENTATIONS.get(identifier)


def serialize(augmentation: Augmentation) -> dict:
    return _AUGMENTATIONS.serialize(augmentation)


def training_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int,
                     augmentations=(), num_classes: int | None = None,
                     teacher_outputs: dict[str, np.ndarray] | None = None,
                     shuffle: bool = True, start_epoch: int = 0):
    """A seeded ``tf.data`` pipeline of augmented ``(x, y)`` batches.

    Epoch ``e``'s order and augmentation draws are functions of ``(seed, e)``
    alone, so a run resumed at epoch ``e`` (``start_epoch``) sees exactly
    the batches the uninterrupted run would have.

    Args:
        x, y: inputs and integer class labels.
        batch_size: samples per batch.
        seed: fixes the order of every epoch and every augmentation draw.
        augmentations: applied in order to each batch.
        num_classes: needed when an augmentation mixes labels.
        teacher_outputs: the teacher's outputs for each row of ``x``; the
            elements then are ``({"inputs": x, "teacher_outputs": {...}}, y)``
            with the rows kept aligned. Only without augmentation: the
            teacher must see the augmented inputs.
        shuffle: a new order each epoch; False gives one finite pass in
            order (validation).
        start_epoch: the first epoch the pipeline yields (shuffled pipelines).

    Returns:
        A ``tf.data.Dataset``. Shuffled, it repeats without end (fit it with
        ``steps_per_epoch``); unshuffled, iterating it once is one pass.
    """
    tf = tensorflow()
    augmentations = [get(a) for a in augmentations]
    if teacher_outputs is not None and augmentations:
        raise EdgeDistillError(
            "precomputed teacher outputs cannot follow augmented inputs; run the teacher on "
            "each batch instead"
        )
    _check_inputs(x, augmentations)
    mixes = any(a.mixes_labels for a in augmentations)
    if mixes and not num_classes:
        raise EdgeDistillError("mixup: needs the number of classes")
    features = x if teacher_outputs is None else {
        "inputs": x, "teacher_outputs": dict(teacher_outputs)}
    if not shuffle:
        return tf.data.Dataset.from_tensor_slices((features, y)).batch(batch_size).prefetch(
            tf.data.AUTOTUNE)

    table = tf.data.Dataset.from_tensors((features, y)).cache()
    samples = len(x)

    def epoch_indices(epoch):
        keys = tf.random.stateless_uniform([samples], seed=tf.stack([tf.cast(seed, tf.int64),
                                                                     epoch]))
        order = tf.argsort(keys)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate().map(
            lambda step, rows: (epoch, step, rows))

    def gather(data, epoch, step, rows):
        batch = tf.nest.map_structure(lambda array: tf.gather(array, rows), data)
        batch_seed = tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch, step])
        return (*batch, batch_seed)

    ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_indices)
    ds = tf.data.Dataset.zip((table.repeat(), ds)).map(
        lambda data, index: gather(data, *index), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    return _finish(ds, augmentations, mixes, num_classes)


def stream_batches(examples, *, samples: int, batch_size: int, seed: int, shuffle_buffer: int,
                   augmentations=(), num_classes: int | None = None, start_epoch: int = 0):
    """:func:`training_batches` for a ``tf.data`` pipeline of ``(x, y)`` examples.

    Epoch ``e`` shuffles each block of ``shuffle_buffer`` consecutive
    examples with a seed made of ``(seed, e)``, and draws its augmentations
    likewise, so two pipelines with one seed give the same batches and a
    resumed one continues the first.

    Args:
        examples: unbatched ``(x, y)`` pairs; read once per epoch.
        samples: how many ``examples`` holds (the batches of one epoch).
    """
    tf = tensorflow()
    augmentations = [get(a) for a in augmentations]
    _check_inputs(np.empty((0, *examples.element_spec[0].shape)), augmentations)
    mixes = any(a.mixes_labels for a in augmentations)
    if mixes and not num_classes:
        raise EdgeDistillError("mixup: needs the number of classes")
    buffer = max(1, min(shuffle_buffer, samples))

    def epoch_batches(epoch):
        key = tf.stack([tf.cast(seed, tf.int64), epoch])

        def permuted(index, block):
            keys = tf.random.stateless_uniform(
                tf.shape(block[1]), seed=tf.random.experimental.stateless_fold_in(key, index))
            return tf.data.Dataset.from_tensor_slices(
                tf.nest.map_structure(lambda t: tf.gather(t, tf.argsort(keys)), block))

        # A stateless block shuffle: Dataset.shuffle cannot take a per-epoch seed
        # tensor when the global seed is 0 (tf.random's (0, 0) check).
        shuffled = examples.batch(buffer).enumerate().flat_map(permuted)
        return shuffled.batch(batch_size).enumerate().map(
            lambda step, batch: (*batch, tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch,
                                                   step])))

    ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_batches)
    return _finish(ds, augmentations, mixes, num_classes)


def _finish(ds, augmentations, mixes: bool, num_classes: int | None):
    """Mixup's one-hot labels, then the augmentations, on ``(x, y, batch seed)`` batches."""
    tf = tensorflow()
    if mixes:
        ds = ds.map(lambda f, labels, s: (f, tf.one_hot(labels, num_classes), s),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augmentations:
        ds = ds.map(lambda f, labels, s: _apply(augmentations, f, labels, s),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(lambda f, labels, s: (f, labels))
    return ds.prefetch(tf.data.AUTOTUNE)


def _check_inputs(x, augmentations) -> None:
    for augmentation in augmentations:
        if augmentation.images_only and np.ndim(x) != 4:
            raise EdgeDistillError(
                f"{augmentation.registered_name}: works on images (samples, height, width, "
                f"channels), got inputs of shape {tuple(np.shape(x))}"
            )


def _apply(augmentations, x, y, seeds):
    tf = tensorflow()
    per_step = tf.random.experimental.stateless_split(tf.cast(seeds, tf.int64), len(augmentations))
    for augmentation, seed in zip(augmentations, tf.unstack(per_step, num=len(augmentations)),
                                  strict=True):
        x, y = augmentation(x, y, seed)
    return x, y
