"""Every distillation loss against a NumPy reference, and the loss registry."""

import numpy as np
import pytest

from edgedistill._tf import tensorflow
from edgedistill.distill import losses
from edgedistill.distill.losses import (
    AttentionTransfer,
    DecoupledKD,
    FeatureDistillation,
    LogitsDistillation,
    LogitsMSE,
    RKDAngle,
    RKDDistance,
    get,
    serialize,
)
from edgedistill.errors import EdgeDistillError

tf = tensorflow()
rng = np.random.default_rng(0)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _huber(d):
    d = np.abs(d)
    return np.where(d < 1, 0.5 * d**2, d - 0.5)


def _np(loss, t, s):
    return loss.compute_loss(tf.constant(t, tf.float32), tf.constant(s, tf.float32)).numpy()


@pytest.mark.parametrize("kind", ["kl_divergence", "categorical_crossentropy"])
def test_logits_distillation(kind):
    t, s, temperature = rng.normal(size=(5, 10)), rng.normal(size=(5, 10)), 3.0
    p, q = _softmax(t / temperature), _softmax(s / temperature)
    expected = -(p * np.log(q)).sum(-1)
    if kind == "kl_divergence":
        expected += (p * np.log(p)).sum(-1)
    np.testing.assert_allclose(_np(LogitsDistillation(temperature, kind), t, s),
                               expected * temperature**2, rtol=1e-5)
    assert np.allclose(_np(LogitsDistillation(temperature), t, t), 0, atol=1e-5)


def test_logits_distillation_standardized():
    t, s, temperature = rng.normal(size=(5, 10)) * 7 + 3, rng.normal(size=(5, 10)), 2.0

    def z(x):
        return (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)

    p, q = _softmax(z(t) / temperature), _softmax(z(s) / temperature)
    expected = (p * (np.log(p) - np.log(q))).sum(-1) * temperature**2
    loss = LogitsDistillation(temperature, standardize=True)
    np.testing.assert_allclose(_np(loss, t, s), expected, rtol=1e-4)
    # Only the ranking and relative gaps count: a scaled, shifted student matches.
    assert np.allclose(_np(loss, t, 0.25 * t - 5), 0, atol=1e-5)
    assert not np.allclose(_np(LogitsDistillation(temperature), t, 0.25 * t - 5), 0, atol=1e-2)
    assert get("logits_distillation:standardize=true").standardize is True
    with pytest.raises(EdgeDistillError, match="standardize: must be true or false"):
        LogitsDistillation(standardize="yes")


def _dkd_parts(t, s, y, temperature):
    """NumPy TCKD and NCKD, written from the paper's definitions."""
    p, q = _softmax(t / temperature), _softmax(s / temperature)
    rows = np.arange(len(y))
    pt, qt = p[rows, y], q[rows, y]
    tckd = pt * np.log(pt / qt) + (1 - pt) * np.log((1 - pt) / (1 - qt))
    others = np.ones_like(p, bool)
    others[rows, y] = False
    p_hat = np.where(others, p, 0) / (1 - pt)[:, None]
    q_hat = np.where(others, q, 1) / (1 - qt)[:, None]
    nckd = np.where(others, p_hat * np.log(np.where(others, p_hat, 1) / q_hat), 0).sum(-1)
    return tckd, nckd, pt


def test_decoupled_kd():
    t, s, y, temperature = rng.normal(size=(6, 10)), rng.normal(size=(6, 10)), \
        np.array([0, 3, 9, 2, 2, 7]), 4.0
    tckd, nckd, pt = _dkd_parts(t, s, y, temperature)
    loss = DecoupledKD(temperature, target_weight=1.0, non_target_weight=8.0)
    got = loss.compute_loss(tf.constant(t, tf.float32), tf.constant(s, tf.float32),
                            labels=tf.constant(y)).numpy()
    np.testing.assert_allclose(got, (tckd + 8 * nckd) * temperature**2, rtol=1e-4)
    # The paper's identity: KD = TCKD + (1 - p_t) NCKD, per example.
    np.testing.assert_allclose(_np(LogitsDistillation(temperature), t, s),
                               (tckd + (1 - pt) * nckd) * temperature**2, rtol=1e-4)
    # Class indices as (batch, 1) floats and mixup's probability rows give the same.
    rows = np.eye(10)[y] * 0.8 + 0.02
    for labels in (y.reshape(-1, 1).astype(np.float32), rows):
        np.testing.assert_allclose(loss.compute_loss(tf.constant(t, tf.float32),
                                                     tf.constant(s, tf.float32),
                                                     labels=tf.constant(labels)).numpy(),
                                   got, rtol=1e-5)
    same = loss.compute_loss(tf.constant(t, tf.float32), tf.constant(t, tf.float32),
                             labels=tf.constant(y)).numpy()
    assert np.all(np.isfinite(same)) and np.allclose(same, 0, atol=1e-4)
    with pytest.raises(EdgeDistillError, match="non_target_weight: must be a finite number"):
        DecoupledKD(non_target_weight=0)


def test_logits_mse():
    t, s = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    np.testing.assert_allclose(_np(LogitsMSE(), t, s), ((s - t) ** 2).mean(-1), rtol=1e-5)


def test_feature_distillation_compares_maps_at_the_smaller_size():
    t, s = rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 3))
    pooled = t.reshape(2, 2, 2, 2, 2, 3).mean(axis=(2, 4))  # 2x2 area averages
    expected = ((s - pooled) ** 2).reshape(2, -1).mean(-1)
    np.testing.assert_allclose(_np(FeatureDistillation("a", "b"), t, s), expected, rtol=1e-5)
    same = rng.normal(size=(3, 7))
    assert np.allclose(_np(FeatureDistillation("a", "b"), same, same), 0)


def test_attention_transfer():
    t, s = rng.normal(size=(2, 3, 3, 8)), rng.normal(size=(2, 3, 3, 4))

    def attention(f):
        a = (f**2).mean(-1).reshape(len(f), -1)
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    expected = ((attention(s) - attention(t)) ** 2).sum(-1)
    np.testing.assert_allclose(_np(AttentionTransfer("a", "b"), t, s), expected, rtol=1e-5)
    with pytest.raises(EdgeDistillError, match="attention_transfer: needs conv feature maps"):
        AttentionTransfer("a", "b").validate_shapes((None, 10), (None, 10))


def test_rkd_distance():
    t, s = rng.normal(size=(5, 8)), rng.normal(size=(5, 3))

    def normalised(e):
        d = np.linalg.norm(e[:, None] - e[None], axis=-1)
        return d / d[d > 0].mean()

    expected = _huber(normalised(s) - normalised(t)).mean()
    np.testing.assert_allclose(_np(RKDDistance(), t, s), expected, rtol=1e-5)


def _angles(e):
    """RKD's cosines at vertex i of every (j, i, k), from the difference vectors themselves."""
    differences = e[None, :, :] - e[:, None, :]  # [i, j] = e_j - e_i
    lengths = np.linalg.norm(differences, axis=-1, keepdims=True)
    directions = np.divide(differences, lengths, out=np.zeros_like(differences),
                           where=lengths > 0)
    return np.einsum("ijd,ikd->ijk", directions, directions)


def test_rkd_angle():
    t, s = rng.normal(size=(4, 6)), rng.normal(size=(4, 2))
    expected = _huber(_angles(s) - _angles(t)).mean()
    np.testing.assert_allclose(_np(RKDAngle(), t, s), expected, rtol=1e-4)


def test_rkd_angle_at_a_training_batch_with_a_repeated_example():
    # The Gram-matrix form loses precision where difference vectors are short: a batch of 64
    # at the benchmark's embedding width, with one example twice, against the direct form.
    s, t = rng.normal(size=(64, 288)) * 3, rng.normal(size=(64, 16))
    s[5], t[5] = s[9], t[9]
    expected = _huber(_angles(s) - _angles(t)).mean()
    np.testing.assert_allclose(_np(RKDAngle(), t, s), expected, rtol=1e-4)


def test_rkd_angle_gradients_stay_bounded_on_nearly_repeated_examples():
    # Below float32's resolution a pair's direction is noise: the Gram form must not turn it
    # into a gradient spike (unguarded, these pairs give 30x the gradient of a clean batch).
    clean, t = rng.normal(size=(64, 288)) * 3, tf.constant(rng.normal(size=(64, 16)), tf.float32)
    near = clean.copy()
    near[1:16:2] = near[0:16:2] + 1e-3 * rng.normal(size=(8, 288))

    def largest_gradient(s):
        s = tf.Variable(s, dtype=tf.float32)
        with tf.GradientTape() as tape:
            value = RKDAngle().compute_loss(t, s)
        return np.abs(tape.gradient(value, s).numpy()).max()

    assert largest_gradient(near) < 3 * largest_gradient(clean)


@pytest.mark.parametrize("loss", [RKDDistance(), RKDAngle()])
def test_relation_losses_have_finite_gradients_on_repeated_examples(loss):
    s = tf.Variable(np.repeat(rng.normal(size=(2, 4)), 2, axis=0), dtype=tf.float32)
    t = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    with tf.GradientTape() as tape:
        value = loss.compute_loss(t, s)
    assert np.all(np.isfinite(tape.gradient(value, s).numpy()))


@pytest.mark.parametrize("name", losses.names())
def test_every_loss_survives_serialization(name):
    loss = get(name)
    again = get(serialize(loss))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()
    assert get(type(loss).__name__).get_config() == loss.get_config()


def test_registry_names_and_errors():
    assert {"logits_distillation", "logits_mse", "feature_distillation", "attention_transfer",
            "rkd_distance", "rkd_angle"} <= set(losses.names())
    with pytest.raises(EdgeDistillError, match="nope: unknown distillation loss; known: "):
        get("nope")
    with pytest.raises(EdgeDistillError, match="temperature"):
        LogitsDistillation(temperature=0)
    with pytest.raises(EdgeDistillError, match="temperature"):
        LogitsDistillation(temperature=float("inf"))
    with pytest.raises(EdgeDistillError, match="logits_distillation: bad config"):
        get({"class_name": "LogitsDistillation", "config": {"temprature": 2}})
    with pytest.raises(EdgeDistillError, match="teacher_layer_name"):
        FeatureDistillation(teacher_layer_name="")
