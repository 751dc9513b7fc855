"""Datasets for distillation and conversion: digits, Fashion-MNIST, or a .npz.

Every loader returns a :class:`Dataset` with train, validation and test
splits as NumPy arrays, images scaled to [0, 1] with a channel axis, and
integer labels. Training code turns a split into a ``tf.data`` pipeline with
:meth:`Dataset.tf_dataset`.

Example:
    >>> data = load_dataset("digits")
    >>> data.input_shape, data.num_classes
    ((8, 8, 1), 10)
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import zipfile
from pathlib import Path

import numpy as np

from edgedistill.errors import EdgeDistillError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_SPLITS = ("train", "val", "test")
_FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Class labels beyond this are not class indices (a 1e9-way softmax is a typo, not a task).
MAX_CLASSES = 100_000


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split three ways.

    Attributes:
        name: what the user passed to ``--data``.
        x_train, y_train, x_val, y_val, x_test, y_test: float32 inputs and int64 labels.
        num_classes: labels lie in ``range(num_classes)``.
        val_source: ``"given"`` when the data brought a validation split,
            ``"split"`` when it was carved from the training data.
        train_rows, val_rows: the row of each train (and carved validation)
            sample in the training array the source gave, so outputs computed
            elsewhere for that array (a teacher's ``.npy``) line up;
            ``val_rows`` is None when the validation split was given.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    val_source: str
    train_rows: np.ndarray
    val_rows: np.ndarray | None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in _SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {_SPLITS}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def tf_dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0):
        """A batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` for one split."""
        from edgedistill._tf import tensorflow

        tf = tensorflow()
        x, y = self.split(split)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def limit_train_samples(self, count: int, seed: int = 0) -> Dataset:
        """The same data with at most ``count`` training samples, drawn at random (seeded).

        The validation and test splits are kept whole, so a run on fewer
        samples is judged on the same data as a run on all of them.

        Raises:
            EdgeDistillError: ``count`` is below 1.
        """
        if count < 1:
            raise EdgeDistillError(f"{self.name}: at most {count} training samples leaves "
                                   "none to train on; give 1 or more")
        if count >= len(self.x_train):
            return self
        rows = np.sort(np.random.default_rng(seed).permutation(len(self.x_train))[:count])
        return dataclasses.replace(self, x_train=self.x_train[rows], y_train=self.y_train[rows],
                                   train_rows=self.train_rows[rows])

    def check_fits(self, input_shape: tuple, num_outputs: int, model_name: str) -> None:
        """Raises EdgeDistillError when the data cannot feed a model of this shape."""
        check_fits(self.name, self.input_shape, self.num_classes, input_shape, num_outputs,
                   model_name)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train_samples": len(self.x_train),
            "val_samples": len(self.x_val),
            "test_samples": len(self.x_test),
            "val_source": self.val_source,
        }


def check_fits(name: str, data_shape: tuple, num_classes: int | None, input_shape: tuple,
               num_outputs: int, model_name: str) -> None:
    """Raises EdgeDistillError when data of ``data_shape`` cannot feed the model."""
    want = tuple(input_shape[1:])
    fits = len(want) == len(data_shape) and all(
        d is None or d == g for d, g in zip(want, data_shape, strict=True)
    )
    if not fits:
        raise EdgeDistillError(
            f"{name}: inputs have shape {tuple(data_shape)} but {model_name} expects "
            f"{_shape_str(want)}; pass data shaped like the model input"
        )
    if num_classes is not None and num_classes > num_outputs:
        raise EdgeDistillError(
            f"{name}: labels go up to {num_classes - 1} but {model_name} has "
            f"{num_outputs} outputs; labels must lie in 0..{num_outputs - 1}"
        )


def _shape_str(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def load_dataset(spec: str | os.PathLike, *, val_fraction: float = 0.1, seed: int = 0,
                 max_train_samples: int | None = None) -> Dataset:
    """Loads ``digits``, ``fashion-mnist[:DIR]`` or a ``.npz`` file.

    Args:
        spec: ``"digits"`` (scikit-learn's bundled 8x8 digits), ``"fashion-mnist"``
            (IDX files in /usr/share/datasets/fashion-mnist, from Debian's
            dataset-fashion-mnist), ``"fashion-mnist:DIR"`` or a directory holding
            the IDX files, or a path to a ``.npz`` with x_train, y_train, x_test,
            y_test and optionally x_val, y_val.
        val_fraction: share of the training data held out for validation when
            the data has no validation split of its own.
        seed: seeds every split, so runs repeat.
        max_train_samples: keep at most this many training samples, drawn at
            random (see :meth:`Dataset.limit_train_samples`); None keeps all.

    Returns:
        A :class:`Dataset`.

    Raises:
        EdgeDistillError: unknown name, missing files, or arrays that do not fit.
    """
    data = _load(str(spec), val_fraction, seed)
    if max_train_samples is None:
        return data
    if not isinstance(data, Dataset):
        raise EdgeDistillError(f"{spec}: TFRecord data is streamed, so no subset of its "
                               "training samples is taken; write fewer records instead")
    return data.limit_train_samples(max_train_samples, seed)


def _load(spec: str, val_fraction: float, seed: int):
    if spec == "digits":
        return _digits(val_fraction, seed)
    if spec == "fashion-mnist" or spec.startswith("fashion-mnist:"):
        folder = spec.partition(":")[2] or FASHION_MNIST_DIR
        return _fashion_mnist(Path(folder), spec, val_fraction, seed)
    path = Path(spec)
    if path.suffix == ".npz":
        return _npz(path, val_fraction, seed)
    if path.is_dir() and any(path.glob("*.tfrecord")):
        from edgedistill.streams import load_tfrecords

        return load_tfrecords(path)
    if path.is_dir():
        return _fashion_mnist(path, spec, val_fraction, seed)
    raise EdgeDistillError(
        f"{spec}: unknown data; use 'digits', 'fashion-mnist[:DIR]' or a .npz file"
    )


def _digits(val_fraction: float, seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    # Pixel values are counts from 0 to 16 on an 8x8 grid.
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y
    )
    return _with_validation("digits", x_train, y_train, x_test, y_test, None, val_fraction, seed)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
            raise EdgeDistillError(f"{path}: not an IDX file of unsigned bytes")
        ndim = raw[3]
        dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        if data.size != int(np.prod(dims)):
            raise EdgeDistillError(
                f"{path}: truncated IDX file ({data.size} of {np.prod(dims)} values)"
            )
        return data.reshape(dims)
    except (OSError, EOFError, ValueError) as e:
        raise EdgeDistillError(f"{path}: cannot read IDX data ({e})") from None


def _idx_file(folder: Path, stem: str) -> Path | None:
    return next((folder / name for name in (f"{stem}.gz", stem) if (folder / name).is_file()),
                None)


def _find_idx(folder: Path, stem: str) -> Path:
    found = _idx_file(folder, stem)
    if found:
        return found
    hint = ("install Debian's dataset-fashion-mnist" if folder == FASHION_MNIST_DIR else
            "pass fashion-mnist:DIR with the folder holding the four IDX files")
    raise EdgeDistillError(f"{folder / stem}[.gz]: missing Fashion-MNIST file; {hint}")


def fashion_mnist_installed() -> bool:
    """True when Debian's dataset-fashion-mnist (or a copy in its place) is there."""
    return all(_idx_file(FASHION_MNIST_DIR, stem) for stem in _FASHION_MNIST_FILES)


def _fashion_mnist(folder: Path, name: str, val_fraction: float, seed: int) -> Dataset:
    arrays = [_read_idx(_find_idx(folder, stem)) for stem in _FASHION_MNIST_FILES]
    x_train, y_train, x_test, y_test = arrays
    x_train = (x_train / 255.0).astype(np.float32)[..., None]
    x_test = (x_test / 255.0).astype(np.float32)[..., None]
    return _with_validation(
        name, x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), None,
        val_fraction, seed,
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive, or the one array of an .npy file, as {name: array}."""
    npy = path.suffix.lower() == ".npy"
    what = "an .npy file, written with numpy.save" if npy else "an .npz, written with numpy.savez"
    if not path.is_file():
        raise EdgeDistillError(f"{path}: no such file; pass {what}")
    if not npy and not zipfile.is_zipfile(path):
        raise EdgeDistillError(f"{path}: not an .npz archive (no zip structure); write it with "
                               "numpy.savez")
    if npy and path.read_bytes()[:6] != b"\x93NUMPY":
        raise EdgeDistillError(f"{path}: not an .npy file (no NUMPY header); write it with "
                               "numpy.save")
    try:
        if npy:
            return {"x": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    # Only numpy's and zipfile's parsing runs here, and a damaged file reaches
    # them in many ways (BadZipFile, zlib.error, EOFError, NotImplementedError for
    # a mangled compression method, ...): all mean the same to the user.
    except Exception as e:  # noqa: BLE001
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise EdgeDistillError(f"{path}: not a readable {path.suffix or 'array'} file "
                               f"({reason}); pass {what}") from None


def load_inputs(path: str | os.PathLike) -> np.ndarray:
    """Model inputs from a user's file, as float32: an .npy array, or an .npz holding
    ``x`` (or a single array, or a dataset's ``x_train``).

    Raises:
        EdgeDistillError: unreadable, no inputs in it, no samples, not real
            numbers, or NaN and infinity.

    Example:
        >>> load_inputs("calibration.npy").shape  # doctest: +SKIP
        (200, 28, 28, 1)
    """
    path = Path(path)
    arrays = _read_arrays(path)
    key = next((k for k in ("x", "x_train") if k in arrays),
               next(iter(arrays)) if len(arrays) == 1 else None)
    if key is None:
        raise EdgeDistillError(f"{path}: holds {', '.join(sorted(arrays)) or 'no arrays'}; "
                               "put the inputs in an array named x")
    x = arrays[key]
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise EdgeDistillError(f"{path}: {key} must be real numbers, got {x.dtype}")
    if x.ndim < 2 or not len(x):
        raise EdgeDistillError(f"{path}: {key} has shape {x.shape}; give samples along the "
                               "first axis, each shaped like the model input")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
        x = np.asarray(x, np.float32)
    if not np.isfinite(x).all():
        row = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise EdgeDistillError(f"{path}: {key} holds NaN or infinity (first at row {row}, as "
                               "float32); clean or rescale the data")
    return x


# A label file longer than this is not one name per class of a small model.
MAX_LABELS_BYTES = 1 << 20


def load_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a text file, one per line in class order (trailing blank lines
    dropped; spaces kept).

    Raises:
        EdgeDistillError: missing, a directory, over 1 MiB, or not UTF-8 text.

    Example:
        >>> load_labels("labels.txt")  # doctest: +SKIP
        ('yes', 'no', 'unknown')
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LABELS_BYTES:
            raise EdgeDistillError(f"{path}: over {MAX_LABELS_BYTES >> 20} MiB; a labels file "
                                   "holds one class name per line")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgeDistillError(f"{path}: no such file; pass a text file with one class name "
                               "per line") from None
    except UnicodeDecodeError:
        raise EdgeDistillError(f"{path}: not UTF-8 text; save the labels as UTF-8, one class "
                               "name per line") from None
    except OSError as e:
        raise EdgeDistillError(f"{path}: cannot be read ({e.strerror or type(e).__name__}); "
                               "pass a text file with one class name per line") from None
    return tuple(text.rstrip("\r\n").splitlines()) if text.strip() else ()


def _npz(path: Path, val_fraction: float, seed: int) -> Dataset:
    arrays = _read_arrays(path)
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise EdgeDistillError(f"{path}: missing arrays {', '.join(missing)}; an .npz needs "
                               "x_train, y_train, x_test and y_test (x_val, y_val optional)")
    has_val = "x_val" in arrays or "y_val" in arrays
    if has_val and not ("x_val" in arrays and "y_val" in arrays):
        raise EdgeDistillError(f"{path}: give both x_val and y_val, or neither")
    for split in ("train", "test") + (("val",) if has_val else ()):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise EdgeDistillError(
                f"{path}: y_{split} must be a 1-D array of integer class labels, "
                f"got {y.dtype} with shape {y.shape}"
            )
        if len(x) != len(y):
            raise EdgeDistillError(f"{path}: x_{split} has {len(x)} samples, y_{split} {len(y)}")
        if len(y) and y.min() < 0:
            raise EdgeDistillError(f"{path}: y_{split} holds negative labels; labels start at 0")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise EdgeDistillError(f"{path}: x_{split} must be real numbers, got {x.dtype}")
        if len(x) < (2 if split == "train" and not has_val else 1):
            raise EdgeDistillError(f"{path}: x_{split} has {len(x)} samples; every split needs "
                                   "samples (train at least 2 when the validation split is "
                                   "carved from it)")
        if len(y) and y.max() >= MAX_CLASSES:
            raise EdgeDistillError(f"{path}: y_{split} holds label {y.max()}; labels are class "
                                   f"indices 0..N-1 with N at most {MAX_CLASSES:,}")
    shapes = {arrays[f"x_{s}"].shape[1:] for s in ("train", "test") + (("val",) if has_val else ())}
    if len(shapes) > 1:
        raise EdgeDistillError(f"{path}: splits have different input shapes {sorted(shapes)}")
    val = (arrays["x_val"], arrays["y_val"]) if has_val else None
    return _with_validation(
        str(path), arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
        val, val_fraction, seed,
    )


def _with_validation(name, x_train, y_train, x_test, y_test, val, val_fraction, seed) -> Dataset:
    if val is None:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(x_train))
        n_val = max(1, int(round(len(x_train) * val_fraction)))
        val_rows, train_rows = order[:n_val], order[n_val:]
        val = (x_train[val_rows], y_train[val_rows])
        x_train, y_train = x_train[train_rows], y_train[train_rows]
        val_source = "split"
    else:
        val_rows, train_rows = None, np.arange(len(x_train))
        val_source = "given"
    labels = [y_train, val[1], y_test]
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
        inputs = {split: np.asarray(x, np.float32) for split, x in
                  (("train", x_train), ("val", val[0]), ("test", x_test))}
    for split, x in inputs.items():
        if not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
            raise EdgeDistillError(f"{name}: x_{split} holds NaN or infinity (first at row "
                                   f"{row}, as float32); clean or rescale the data")
    return Dataset(
        name=name,
        x_train=inputs["train"],
        y_train=np.asarray(y_train, np.int64),
        x_val=inputs["val"],
        y_val=np.asarray(val[1], np.int64),
        x_test=inputs["test"],
        y_test=np.asarray(y_test, np.int64),
        num_classes=int(max(int(y.max()) for y in labels if len(y))) + 1,
        val_source=val_source,
        train_rows=train_rows,
        val_rows=val_rows,
    )
