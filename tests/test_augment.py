"""Batch augmentation: each against NumPy, determinism for fair baselines, alignment."""

import numpy as np
import pytest

from edgedistill._tf import tensorflow
from edgedistill.distill import augment
from edgedistill.distill.augment import Crop, Flip, Mixup, Shift, get, serialize, training_batches
from edgedistill.errors import EdgeDistillError

tf = tensorflow()
rng = np.random.default_rng(0)
X = rng.random((40, 8, 8, 1)).astype(np.float32)
Y = rng.integers(0, 5, 40)
SEED = tf.constant([1, 2], tf.int64)


def test_flip_with_p_1_mirrors_every_image():
    out, _ = Flip(p=1.0)(tf.constant(X), Y, SEED)
    np.testing.assert_array_equal(out.numpy(), X[:, :, ::-1])


def test_shift_moves_each_image_by_whole_pixels_with_zeros_behind():
    out = Shift(fraction=0.25)(tf.constant(X), Y, SEED)[0].numpy()
    padded = np.pad(X, [(0, 0), (2, 2), (2, 2), (0, 0)])
    shifts = set()
    for i in range(len(X)):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(out[i], padded[i, dy:dy + 8, dx:dx + 8])]
        assert found, f"sample {i} is not a shifted copy"
        shifts.add(found[0])
    assert len(shifts) > 5  # draws differ between samples


def test_crop_keeps_shape_and_range():
    out = Crop(fraction=0.5)(tf.constant(X), Y, SEED)[0].numpy()
    assert out.shape == X.shape and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, X)


def test_mixup_mixes_inputs_and_labels_with_the_same_weight():
    onehot = np.eye(5, dtype=np.float32)[Y]
    x, y = Mixup(alpha=1.0)(tf.constant(X), tf.constant(onehot), SEED)
    x, y = x.numpy(), y.numpy()
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-5)
    for i in range(len(X)):
        # y_i = lam * onehot_i + (1 - lam) * onehot_j: lam is y's weight on i's own class,
        # unless j shares it; then x_i is lam * X_i + (1 - lam) * X_j for that same j.
        partners = [j for j in range(len(X))
                    if np.allclose(y[i], _mix(onehot, i, j, x[i], X), atol=1e-4)]
        assert partners, f"row {i} is no convex mix of two samples"


def _mix(onehot, i, j, xi, inputs):
    """The label mix whose lam makes ``xi`` a mix of samples i and j (least squares)."""
    a, b = inputs[i].ravel(), inputs[j].ravel()
    lam = 1.0 if np.allclose(a, b) else float(np.dot(xi.ravel() - b, a - b) / np.dot(a - b, a - b))
    if not (-1e-4 <= lam <= 1 + 1e-4) or not np.allclose(xi.ravel(), lam * a + (1 - lam) * b,
                                                         atol=1e-4):
        return np.full(onehot.shape[1], np.nan)
    return lam * onehot[i] + (1 - lam) * onehot[j]


STEPS = 3  # 40 samples in batches of 16


def _epochs(seed, n=3, start_epoch=0, **kwargs):
    ds = training_batches(X, Y, batch_size=16, seed=seed, num_classes=5,
                          start_epoch=start_epoch, **kwargs)
    batches = [(x.numpy(), y.numpy()) for x, y in ds.take(n * STEPS)]
    return [batches[i:i + STEPS] for i in range(0, len(batches), STEPS)]


@pytest.mark.parametrize("augmentations", [(), ("shift", "flip", "crop", "mixup")])
def test_same_seed_same_batches_new_draws_each_epoch(augmentations):
    a, b = _epochs(7, augmentations=augmentations), _epochs(7, augmentations=augmentations)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0][0], a[1][0][0])
    assert not np.array_equal(a[0][0][0], _epochs(8, 1, augmentations=augmentations)[0][0][0])
    # Every epoch holds each sample once; the last batch is the remainder.
    assert [len(y) for _, y in a[1]] == [16, 16, 8]
    if not augmentations:
        assert sorted(np.concatenate([y for _, y in a[1]])) == sorted(Y)


@pytest.mark.parametrize("augmentations", [(), ("shift", "mixup")])
def test_a_pipeline_started_at_an_epoch_continues_the_uninterrupted_one(augmentations):
    whole = _epochs(3, n=4, augmentations=augmentations)
    resumed = _epochs(3, n=2, start_epoch=2, augmentations=augmentations)
    for epoch_a, epoch_b in zip(whole[2:], resumed, strict=True):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_teacher_outputs_stay_aligned_and_keep_the_order():
    teacher = {"output": X.reshape(40, -1)[:, :3] * 10}
    plain = training_batches(X, Y, batch_size=16, seed=5)
    packed = training_batches(X, Y, batch_size=16, seed=5, teacher_outputs=teacher)
    for (x, y), (features, y2) in zip(plain.take(6), packed.take(6), strict=True):
        np.testing.assert_array_equal(x.numpy(), features["inputs"].numpy())
        np.testing.assert_array_equal(y.numpy(), y2.numpy())
        np.testing.assert_array_equal(features["teacher_outputs"]["output"].numpy(),
                                      features["inputs"].numpy().reshape(len(x), -1)[:, :3] * 10)
    with pytest.raises(EdgeDistillError, match="cannot follow augmented inputs"):
        training_batches(X, Y, batch_size=16, seed=5, teacher_outputs=teacher,
                         augmentations=["shift"])


def test_mixup_labels_are_rows_and_plain_labels_are_indices():
    (_, y), = list(training_batches(X, Y, batch_size=40, seed=0, augmentations=["mixup"],
                                    num_classes=5).take(1))
    assert y.shape == (40, 5)
    (_, y), = list(training_batches(X, Y, batch_size=40, seed=0, augmentations=["shift"]).take(1))
    assert y.shape == (40,)


@pytest.mark.parametrize("name", augment.names())
def test_registry_round_trip(name):
    a = get(name)
    assert get(serialize(a)).get_config() == a.get_config()


def test_bad_settings_are_clean_errors():
    with pytest.raises(EdgeDistillError, match=r"shift fraction: must lie in \[0, 0.5\]"):
        Shift(fraction=0.9)
    with pytest.raises(EdgeDistillError, match="mixup alpha"):
        get({"class_name": "mixup", "config": {"alpha": float("nan")}})
    with pytest.raises(EdgeDistillError, match="unknown augmentation"):
        get("rotate")
    with pytest.raises(EdgeDistillError, match="flip: works on images"):
        training_batches(X.reshape(40, -1), Y, batch_size=8, seed=0, augmentations=["flip"])
    with pytest.raises(EdgeDistillError, match="mixup: bad config"):
        get({"class_name": "mixup", "config": {"beta": 1}})
