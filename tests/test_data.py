import gzip
import re
import struct

import numpy as np
import pytest

from edgedistill.data import FASHION_MNIST_DIR, load_dataset, load_inputs, load_labels
from edgedistill.errors import EdgeDistillError


def test_digits_splits_are_seeded_and_disjoint():
    a, b = load_dataset("digits", seed=3), load_dataset("digits", seed=3)
    assert a.input_shape == (8, 8, 1) and a.num_classes == 10
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert a.val_source == "split"


def test_max_train_samples_draws_a_seeded_subset_and_keeps_val_and_test_whole():
    full = load_dataset("digits", seed=1)
    a = load_dataset("digits", seed=1, max_train_samples=500)
    b = load_dataset("digits", seed=1, max_train_samples=500)
    assert len(a.x_train) == 500 and a.to_dict()["train_samples"] == 500
    np.testing.assert_array_equal(a.train_rows, b.train_rows)
    np.testing.assert_array_equal(a.x_val, full.x_val)
    np.testing.assert_array_equal(a.x_test, full.x_test)
    # Every kept sample is the full training split's row it claims to be.
    positions = np.searchsorted(full.train_rows, a.train_rows, sorter=np.argsort(full.train_rows))
    rows = np.argsort(full.train_rows)[positions]
    np.testing.assert_array_equal(a.x_train, full.x_train[rows])
    np.testing.assert_array_equal(a.y_train, full.y_train[rows])
    assert set(np.unique(a.y_train)) == set(range(10))
    other = load_dataset("digits", seed=2, max_train_samples=500)
    assert not np.array_equal(np.sort(other.train_rows), np.sort(a.train_rows))


def test_max_train_samples_above_the_data_keeps_all_and_zero_is_refused():
    full = load_dataset("digits")
    assert len(load_dataset("digits", max_train_samples=10**6).x_train) == len(full.x_train)
    with pytest.raises(EdgeDistillError, match="none to train on"):
        load_dataset("digits", max_train_samples=0)


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files_from_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 50))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 20))
    data = load_dataset(f"fashion-mnist:{tmp_path}")
    assert data.input_shape == (28, 28, 1)
    assert len(data.x_train) + len(data.x_val) == 50 and len(data.x_test) == 20
    assert data.x_train.max() <= 1.0


def test_fashion_mnist_truncated_idx_is_a_clear_error(tmp_path):
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBB3I", 0, 0, 8, 3, 50, 28, 28) + b"\0" * 100)
    with pytest.raises(EdgeDistillError, match="truncated IDX"):
        load_dataset(f"fashion-mnist:{tmp_path}")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    data = load_dataset("fashion-mnist")
    assert len(data.x_test) == 10000 and data.num_classes == 10


def test_npz_with_and_without_validation(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(
        x_train=rng.random((40, 4, 4, 1)), y_train=rng.integers(0, 3, 40),
        x_test=rng.random((10, 4, 4, 1)), y_test=rng.integers(0, 3, 10),
    )
    np.savez(tmp_path / "a.npz", **arrays)
    data = load_dataset(tmp_path / "a.npz")
    assert data.val_source == "split" and len(data.x_val) == 4
    np.savez(tmp_path / "b.npz", **arrays, x_val=rng.random((5, 4, 4, 1)),
             y_val=rng.integers(0, 3, 5))
    data = load_dataset(tmp_path / "b.npz")
    assert data.val_source == "given" and len(data.x_val) == 5 and len(data.x_train) == 40


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(x_train=np.zeros((4, 2)), y_train=np.zeros(4, int)), "missing arrays x_test, y_test"),
        (dict(x_train=np.zeros((4, 2)), y_train=np.zeros((4, 3)), x_test=np.zeros((2, 2)),
              y_test=np.zeros(2, int)), "y_train must be a 1-D array"),
        (dict(x_train=np.zeros((4, 2)), y_train=np.zeros(3, int), x_test=np.zeros((2, 2)),
              y_test=np.zeros(2, int)), "x_train has 4 samples"),
        (dict(x_train=np.zeros((4, 2)), y_train=np.zeros(4, int), x_test=np.zeros((2, 3)),
              y_test=np.zeros(2, int)), "different input shapes"),
        (dict(x_train=np.zeros((0, 2)), y_train=np.zeros(0, int), x_test=np.zeros((2, 2)),
              y_test=np.zeros(2, int)), "x_train has 0 samples"),
        (dict(x_train=np.zeros((4, 2)), y_train=np.zeros(4, int), x_test=np.zeros((0, 2)),
              y_test=np.zeros(0, int)), "x_test has 0 samples"),
        (dict(x_train=np.array([[0.0, 1.0], [np.nan, 0.0], [0, 0], [0, 0]]),
              y_train=np.zeros(4, int), x_test=np.zeros((2, 2)), y_test=np.zeros(2, int)),
         r"x_(train|val) holds NaN or infinity \(first at row"),
        (dict(x_train=np.zeros((4, 2)), y_train=np.zeros(4, int), x_test=np.full((2, 2), 1e300),
              y_test=np.zeros(2, int)), "x_test holds NaN or infinity .* as float32"),
        (dict(x_train=np.zeros((4, 2)), y_train=np.array([0, 1, 2, 10**9]),
              x_test=np.zeros((2, 2)), y_test=np.zeros(2, int)), "holds label 1000000000"),
        (dict(x_train=np.zeros((4, 2), complex), y_train=np.zeros(4, int),
              x_test=np.zeros((2, 2)), y_test=np.zeros(2, int)), "must be real numbers"),
    ],
)
def test_bad_npz_names_the_array(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EdgeDistillError, match=message):
        load_dataset(tmp_path / "bad.npz")


def test_unknown_data_and_missing_npz(tmp_path):
    with pytest.raises(EdgeDistillError, match="unknown data"):
        load_dataset("imagenet")
    with pytest.raises(EdgeDistillError, match="no such file"):
        load_dataset(tmp_path / "nope.npz")


def test_check_fits_rejects_shape_and_labels():
    data = load_dataset("digits")
    data.check_fits((None, 8, 8, 1), 10, "m")
    with pytest.raises(EdgeDistillError, match=r"expects \(28, 28, 1\)"):
        data.check_fits((None, 28, 28, 1), 10, "m")
    with pytest.raises(EdgeDistillError, match="labels go up to 9 but m has 5 outputs"):
        data.check_fits((None, 8, 8, 1), 5, "m")


def _mutants(good: bytes, rng, cut_step: int) -> list[bytes]:
    """Every ``cut_step``-th cut of ``good``, and 300 copies with 1 to 4 random bytes."""
    mutants = [good[:cut] for cut in range(0, len(good), cut_step)]
    for _ in range(300):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), rng.integers(1, 5)):
            data[pos] = rng.integers(0, 256)
        mutants.append(bytes(data))
    return mutants


def test_damaged_npz_files_are_one_clean_error(tmp_path):
    """Every cut and a seeded set of byte edits of a real .npz: loaded sanely or refused."""
    rng = np.random.default_rng(0)
    np.savez_compressed(tmp_path / "good.npz", x_train=rng.random((20, 3)),
                        y_train=rng.integers(0, 3, 20), x_test=rng.random((5, 3)),
                        y_test=rng.integers(0, 3, 5))
    path = tmp_path / "bad.npz"
    for mutant in _mutants((tmp_path / "good.npz").read_bytes(), rng, cut_step=17):
        path.write_bytes(mutant)
        try:
            data = load_dataset(path)
        except EdgeDistillError as error:
            assert "\n" not in str(error) and str(path) in str(error)
        else:
            assert np.isfinite(data.x_train).all() and data.num_classes <= 100_000


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_damaged_input_files_are_one_clean_error(tmp_path, suffix):
    """load_inputs on every cut and seeded byte edits of a real file: sane inputs or refused."""
    rng = np.random.default_rng(1)
    good_path = tmp_path / f"good{suffix}"
    x = rng.random((6, 4, 4, 1)).astype(np.float32)
    np.save(good_path, x) if suffix == ".npy" else np.savez_compressed(good_path, x=x)
    assert np.array_equal(load_inputs(good_path), x)
    path = tmp_path / f"bad{suffix}"
    for mutant in _mutants(good_path.read_bytes(), rng, cut_step=7):
        path.write_bytes(mutant)
        try:
            inputs = load_inputs(path)
        except EdgeDistillError as error:
            assert "\n" not in str(error) and str(path) in str(error)
        else:
            assert inputs.dtype == np.float32 and inputs.ndim >= 2 and len(inputs)
            assert np.isfinite(inputs).all()


@pytest.mark.parametrize(("arrays", "message"), [
    ({"a": np.zeros((2, 3)), "b": np.zeros((2, 3))}, "holds a, b; put the inputs in an array "
                                                     "named x"),
    ({"x": np.array(["a", "b"])}, "x must be real numbers"),
    ({"x": np.zeros(5)}, "x has shape (5,); give samples along the first axis"),
    ({"x": np.zeros((0, 3))}, "x has shape (0, 3)"),
    ({"x": np.array([[1.0, np.inf]])}, "x holds NaN or infinity (first at row 0"),
])
def test_bad_input_files_name_the_array(tmp_path, arrays, message):
    np.savez(tmp_path / "in.npz", **arrays)
    with pytest.raises(EdgeDistillError, match=re.escape(message)):
        load_inputs(tmp_path / "in.npz")


def test_labels_files_read_one_name_per_line_or_refuse_cleanly(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("T-shirt/top\n  Trouser \nsneaker\n\n")
    assert load_labels(path) == ("T-shirt/top", "  Trouser ", "sneaker")
    rng = np.random.default_rng(3)
    for size in list(range(0, 40)) + [200] * 200:
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        try:
            labels = load_labels(path)
        except EdgeDistillError as error:
            assert "\n" not in str(error) and str(path) in str(error)
        else:
            assert all(isinstance(label, str) and "\n" not in label for label in labels)
