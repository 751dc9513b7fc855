"""Data as ``tf.data`` pipelines, for datasets that do not fit in memory.

:class:`StreamData` is what :func:`~edgedistill.distill.distill` takes
instead of an in-memory :class:`~edgedistill.data.Dataset`: one pipeline of
``(x, y)`` examples per split, read as training goes. TFRecord directories
(``--data DIR`` on the command line) load as one; :func:`write_tfrecords`
writes them. With streamed data the teacher runs on every batch (its outputs
are cached only for in-memory arrays).

The TFRecord layout: ``DIR/train*.tfrecord``, ``DIR/val*.tfrecord`` and
optionally ``DIR/test*.tfrecord``, each record a ``tf.train.Example`` with
``x`` (``tf.io.serialize_tensor`` of one float32 input) and ``y`` (int64 label).

Example:
    >>> write_tfrecords("data/fmnist", train=(x, y), val=(xv, yv), test=(xt, yt))
    >>> data = load_tfrecords("data/fmnist")
    >>> distill("teacher-cnn", "student-cnn", data, "runs/fmnist")
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from edgedistill.data import check_fits
from edgedistill.errors import EdgeDistillError

_SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class StreamData:
    """Train, validation and test splits as ``tf.data`` pipelines of ``(x, y)`` examples.

    Attributes:
        name: what the data is called in messages and records.
        train, val, test: unbatched ``tf.data.Dataset`` of ``(x, y)``; test
            may be None (the validation split then stands in for it).
        input_shape: the shape of one input.
        num_classes: labels lie in ``range(num_classes)``.
        samples: examples per split.
        shuffle_buffer: examples the training order is shuffled within.
    """

    name: str
    train: object
    val: object
    test: object | None
    input_shape: tuple[int, ...]
    num_classes: int
    samples: dict
    shuffle_buffer: int = 10_000

    @property
    def test_split(self):
        return self.test if self.test is not None else self.val

    def check_fits(self, input_shape: tuple, num_outputs: int, model_name: str) -> None:
        """Raises EdgeDistillError when the data cannot feed a model of this shape."""
        check_fits(self.name, self.input_shape, self.num_classes, input_shape, num_outputs,
                   model_name)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": "stream",
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train_samples": self.samples["train"],
            "val_samples": self.samples["val"],
            "test_samples": self.samples.get("test", self.samples["val"]),
            "test_source": "given" if self.test is not None else "val",
            "shuffle_buffer": self.shuffle_buffer,
        }


def from_tf_data(train, val, test=None, *, num_classes: int | None = None,
                 name: str = "tf.data", shuffle_buffer: int = 10_000) -> StreamData:
    """Wraps ``tf.data`` pipelines of ``(x, y)`` for ``distill()``.

    Each split is read once here to count its examples and check its labels
    (a pass without training). Batched pipelines are unbatched.

    Args:
        train, val, test: ``tf.data.Dataset`` of ``(x, y)`` pairs, ``x`` a
            number array and ``y`` an integer label; test is optional.
        num_classes: default: the largest label seen plus one.
        name: how messages and records call the data.
        shuffle_buffer: the training order is reshuffled each epoch within
            this many examples.

    Raises:
        EdgeDistillError: a split of another structure, mismatched shapes, a
            label out of range, or a split that cannot be read.
    """
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    shapes, counts, largest = {}, {}, -1
    for split, ds in splits.items():
        splits[split], shapes[split] = _examples(ds, f"{name} {split}")
        counts[split], low, high = _scan(splits[split], f"{name} {split}")
        if low < 0:
            raise EdgeDistillError(f"{name} {split}: holds negative labels; labels start at 0")
        largest = max(largest, high)
    if len(set(shapes.values())) > 1:
        raise EdgeDistillError(f"{name}: splits have different input shapes "
                               f"{sorted(set(shapes.values()))}")
    if counts["train"] == 0 or counts["val"] == 0:
        raise EdgeDistillError(f"{name}: the train and val splits must not be empty")
    if num_classes is not None and largest >= num_classes:
        raise EdgeDistillError(f"{name}: labels go up to {largest}, beyond num_classes "
                               f"{num_classes}")
    if not isinstance(shuffle_buffer, int) or shuffle_buffer < 1:
        raise EdgeDistillError(f"shuffle_buffer: must be a whole number of at least 1, "
                               f"got {shuffle_buffer!r}")
    return StreamData(name=name, train=splits["train"], val=splits["val"],
                      test=splits.get("test"), input_shape=shapes["train"],
                      num_classes=num_classes or largest + 1, samples=counts,
                      shuffle_buffer=shuffle_buffer)


def load_tfrecords(directory: str | os.PathLike, *, shuffle_buffer: int = 10_000) -> StreamData:
    """Reads a TFRecord directory (see the module docstring) as :class:`StreamData`.

    Raises:
        EdgeDistillError: missing splits, damaged records or records of another layout.
    """
    from edgedistill._tf import tensorflow

    tf = tensorflow()
    directory = Path(directory)
    files = {split: sorted(str(p) for p in directory.glob(f"{split}*.tfrecord"))
             for split in _SPLITS}
    for split in ("train", "val"):
        if not files[split]:
            raise EdgeDistillError(f"{directory}: no {split}*.tfrecord files; a TFRecord "
                                   "directory needs train and val splits")

    def parse(record):
        example = tf.io.parse_single_example(record, {
            "x": tf.io.FixedLenFeature([], tf.string), "y": tf.io.FixedLenFeature([], tf.int64)})
        return tf.io.parse_tensor(example["x"], tf.float32), example["y"]

    splits = {}
    for split, paths in files.items():
        if paths:
            shape = _first_shape(tf.data.TFRecordDataset(paths[:1]).map(parse), paths[0])
            splits[split] = tf.data.TFRecordDataset(paths).map(
                lambda record, s=shape: _shaped(parse(record), s),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return from_tf_data(splits["train"], splits["val"], splits.get("test"),
                        name=str(directory), shuffle_buffer=shuffle_buffer)


def write_tfrecords(directory: str | os.PathLike, *, train, val, test=None,
                    force: bool = False) -> Path:
    """Writes ``(x, y)`` array pairs as a TFRecord directory :func:`load_tfrecords` reads.

    The directory appears whole or not at all.
    """
    from edgedistill._fileio import output_dir
    from edgedistill._tf import tensorflow

    tf = tensorflow()
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    with output_dir(directory, force) as tmp:
        for split, (x, y) in splits.items():
            x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
            if len(x) != len(y):
                raise EdgeDistillError(f"{split}: {len(x)} inputs but {len(y)} labels")
            with tf.io.TFRecordWriter(str(Path(tmp) / f"{split}.tfrecord")) as writer:
                for xi, yi in zip(x, y, strict=True):
                    feature = {
                        "x": tf.train.Feature(bytes_list=tf.train.BytesList(
                            value=[tf.io.serialize_tensor(xi).numpy()])),
                        "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(yi)])),
                    }
                    writer.write(tf.train.Example(features=tf.train.Features(
                        feature=feature)).SerializeToString())
    return Path(directory)


def _examples(ds, what: str):
    """``ds`` as unbatched ``(float32 x, int64 y)`` examples, and the shape of one x."""
    from edgedistill._tf import tensorflow

    tf = tensorflow()
    if not isinstance(ds, tf.data.Dataset):
        raise EdgeDistillError(f"{what}: expected a tf.data.Dataset, got {type(ds).__name__}")
    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2
            and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise EdgeDistillError(f"{what}: elements must be (x, y) pairs of tensors, got {spec}")
    x_spec, y_spec = spec
    if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer) or not y_spec.dtype.is_integer:
        raise EdgeDistillError(f"{what}: x must be numbers and y integer labels, got "
                               f"{x_spec.dtype.name} and {y_spec.dtype.name}")
    if y_spec.shape.rank == 1:  # batched: a label per example along the first axis
        ds = ds.unbatch()
        x_spec = tf.TensorSpec(x_spec.shape[1:], x_spec.dtype)
    elif y_spec.shape.rank != 0:
        raise EdgeDistillError(f"{what}: y must be one integer label per example, got shape "
                               f"{y_spec.shape}")
    if not x_spec.shape.is_fully_defined():
        raise EdgeDistillError(f"{what}: every x must have the same, known shape, got "
                               f"{x_spec.shape}")
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int64)))
    return ds, tuple(int(d) for d in x_spec.shape)


def _scan(ds, what: str) -> tuple[int, int, int]:
    """Examples, smallest and largest label, in one pass; a damaged split is an error.

    The same pass finds the first example whose input holds NaN or infinity.
    """
    from edgedistill._tf import tensorflow

    tf = tensorflow()
    big = tf.constant(np.iinfo(np.int64).max, tf.int64)

    def step(state, example):
        count, low, high, first_bad = state
        x, y = example
        finite = tf.reduce_all(tf.math.is_finite(x))
        return (count + 1, tf.minimum(low, y), tf.maximum(high, y),
                tf.where(finite, first_bad, tf.minimum(first_bad, count)))

    try:
        count, low, high, first_bad = ds.reduce((tf.constant(0, tf.int64), big, -big, big), step)
    except tf.errors.OpError as error:
        raise EdgeDistillError(f"{what}: cannot be read: {_first_line(error)}") from None
    if int(first_bad) < int(count):
        raise EdgeDistillError(f"{what}: example {int(first_bad)} holds NaN or infinity; clean "
                               "or rescale the data")
    return int(count), int(low), int(high)


def _first_shape(ds, path: str) -> tuple[int, ...]:
    from edgedistill._tf import tensorflow

    tf = tensorflow()
    try:
        x, _ = next(iter(ds.take(1)))
    except StopIteration:
        raise EdgeDistillError(f"{path}: holds no records") from None
    except tf.errors.OpError as error:
        raise EdgeDistillError(f"{path}: not a TFRecord file of (x, y) examples: "
                               f"{_first_line(error)}") from None
    if x.shape.rank == 0 or x.shape.num_elements() == 0:
        raise EdgeDistillError(f"{path}: x must be an array, got shape {x.shape}")
    return tuple(int(d) for d in x.shape)


def _shaped(example, shape):
    from edgedistill._tf import tensorflow

    x, y = example
    return tensorflow().ensure_shape(x, shape), y


def _first_line(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    return message.strip().splitlines()[0][:200] if message.strip() else type(error).__name__
