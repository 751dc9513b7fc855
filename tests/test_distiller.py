"""The Distiller: losses, frozen teacher, adapters, cached outputs, saving, distribution."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgedistill._tf import keras, tensorflow
from edgedistill.distill import (
    Distiller,
    FeatureDistillation,
    LabelAccuracy,
    LogitsDistillation,
    RKDDistance,
)
from edgedistill.distill.distiller import INPUTS, OUTPUT, TEACHER_OUTPUTS
from edgedistill.distill.losses import DecoupledKD
from edgedistill.errors import EdgeDistillError

tf = tensorflow()
k = keras()
rng = np.random.default_rng(0)
X = rng.random((32, 8, 8, 1)).astype(np.float32)
Y = rng.integers(0, 10, 32)


def _cnn(name, width=8, softmax=False, batchnorm=False):
    inputs = k.Input((8, 8, 1))
    x = k.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv")(inputs)
    if batchnorm:
        x = k.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = k.layers.ReLU()(x)
    x = k.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    outputs = k.layers.Dense(10, activation="softmax" if softmax else None, name=f"{name}_out")(x)
    return k.Model(inputs, outputs, name=name)


def _loss(distiller, x, y, sample_weight=None):
    return float(distiller.compute_loss(x, y, distiller(x, training=False), sample_weight))


def test_loss_is_alpha_weighted_sum_of_hard_and_soft_terms():
    k.utils.set_random_seed(0)
    teacher, student = _cnn("t", 16), _cnn("s")
    distiller = Distiller(teacher, student, LogitsDistillation(2.0), student_loss_weight=0.3)
    distiller.compile()
    t, s = teacher(X).numpy(), student(X).numpy()
    log_q = s - np.log(np.exp(s).sum(-1, keepdims=True))
    hard = -log_q[np.arange(len(Y)), Y].mean()
    soft = LogitsDistillation(2.0).compute_loss(t, s).numpy().mean()
    assert _loss(distiller, X, Y) == pytest.approx(0.3 * hard + 0.7 * soft, rel=1e-5)
    assert float(distiller.student_loss_tracker.result()) == pytest.approx(hard, rel=1e-5)


def test_sample_weights_are_honoured():
    distiller = Distiller(_cnn("t", 16), _cnn("s"), "logits_mse", student_loss_weight=0.5)
    distiller.compile()
    weights = np.r_[np.ones(16), np.zeros(16)].astype(np.float32)
    half = _loss(distiller, X[:16], Y[:16])
    assert _loss(distiller, X, Y, weights) == pytest.approx(half / 2, rel=1e-5)


def test_a_loss_that_needs_labels_gets_them_and_trains():
    k.utils.set_random_seed(0)
    teacher, student = _cnn("t", 16), _cnn("s")
    distiller = Distiller(teacher, student, "decoupled_kd", student_loss_weight=0.0)
    distiller.compile(optimizer="adam")
    expected = DecoupledKD().compute_loss(teacher(X), student(X), labels=Y).numpy().mean()
    assert _loss(distiller, X, Y) == pytest.approx(expected, rel=1e-5)
    history = distiller.fit(X, Y, epochs=3, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
    with pytest.raises(EdgeDistillError, match="decoupled_kd: needs the batch's labels"):
        distiller.compute_loss(X, None, distiller(X, training=False))


def test_a_softmax_student_is_handled_like_its_logits():
    k.utils.set_random_seed(1)
    teacher, logits_student = _cnn("t", 16), _cnn("s")
    softmax_student = _cnn("s", softmax=True)
    softmax_student.set_weights(logits_student.get_weights())
    losses = []
    for student in (logits_student, softmax_student):
        distiller = Distiller(teacher, student, LogitsDistillation(4.0), student_loss_weight=0.5)
        distiller.compile()
        losses.append(_loss(distiller, X, Y))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_a_custom_hard_label_loss_from_compile():
    distiller = Distiller(_cnn("t", 16), _cnn("s"), "logits_mse", student_loss_weight=1.0)
    distiller.compile(loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    expected = float(k.losses.SparseCategoricalCrossentropy(from_logits=True)(Y, _cnn_out(
        distiller.student)))
    assert _loss(distiller, X, Y) == pytest.approx(expected, rel=1e-5)


def _cnn_out(model):
    return model(X, training=False)


def test_only_student_and_adapter_weights_move():
    k.utils.set_random_seed(2)
    teacher = _cnn("t", 16, batchnorm=True)
    teacher.compile(optimizer="adam", loss=k.losses.SparseCategoricalCrossentropy(True))
    teacher.fit(X, Y, epochs=1, verbose=0)  # BatchNorm statistics away from their init
    student = _cnn("s", 4)
    before = {w.name: w.numpy().copy() for w in teacher.weights}
    student_before = [w.numpy().copy() for w in student.weights]
    distiller = Distiller(teacher, student, [
        LogitsDistillation(), FeatureDistillation("t_conv", "s_conv")])
    adapter_before = [w.numpy().copy() for w in distiller.adapters[1].weights]
    distiller.compile(optimizer=k.optimizers.Adam(1e-2), metrics=[LabelAccuracy()])
    distiller.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    for w in teacher.weights:
        np.testing.assert_array_equal(before[w.name], w.numpy(), err_msg=w.name)
    assert all(not np.array_equal(a, b.numpy())
               for a, b in zip(student_before, student.weights, strict=True))
    assert all(not np.array_equal(a, b.numpy())
               for a, b in zip(adapter_before, distiller.adapters[1].weights, strict=True))
    assert {v.name for v in distiller.trainable_variables} == {
        v.name for v in student.trainable_variables + distiller.adapters[1].trainable_variables}
    # The adapter is the Distiller's, never the student's.
    assert not any("adapter" in layer.name for layer in student.layers)


def test_feature_losses_find_layers_and_name_missing_ones():
    with pytest.raises(EdgeDistillError, match="has no layer 'nope'"):
        Distiller(_cnn("t", 16), _cnn("s"), FeatureDistillation("t_conv", "nope"))
    distiller = Distiller(_cnn("t", 16), _cnn("s"), [FeatureDistillation("t_conv", "s_conv")])
    out = distiller(X[:2])
    assert set(out) == {OUTPUT, "s_conv"} and out["s_conv"].shape == (2, 8, 8, 8)


def test_cached_teacher_outputs_give_identical_losses():
    teacher, student = _cnn("t", 16), _cnn("s")
    distiller = Distiller(teacher, student, [LogitsDistillation(), RKDDistance()],
                          student_loss_weight=0.2)
    distiller.compile()
    live = _loss(distiller, X, Y)
    packed = {INPUTS: X, TEACHER_OUTPUTS: {OUTPUT: teacher(X).numpy()}}
    assert _loss(distiller, packed, Y) == pytest.approx(live, rel=1e-6)


def test_rejects_bad_settings():
    with pytest.raises(EdgeDistillError, match="output shape"):
        Distiller(_cnn("t"), k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(),
                                           k.layers.Dense(3)]))
    with pytest.raises(EdgeDistillError, match=r"alpha: must lie in \[0, 1\]"):
        Distiller(_cnn("t"), _cnn("s"), student_loss_weight=float("nan"))
    with pytest.raises(EdgeDistillError, match="2 weights for 1 losses"):
        Distiller(_cnn("t"), _cnn("s"), "logits_mse", distillation_loss_weights=[1, 2])


def test_a_saved_distiller_reloads(tmp_path):
    k.utils.set_random_seed(3)
    distiller = Distiller(_cnn("t", 16), _cnn("s"),
                          [LogitsDistillation(3.0), FeatureDistillation("t_conv", "s_conv")],
                          distillation_loss_weights=[1.0, 0.5], student_loss_weight=0.2)
    distiller.compile(optimizer="adam")
    distiller.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    distiller.save(tmp_path / "distiller.keras")
    again = k.models.load_model(tmp_path / "distiller.keras", compile=False)
    assert isinstance(again, Distiller)
    assert again.get_config()["distillation_losses"] == distiller.get_config()[
        "distillation_losses"]
    assert again.distillation_loss_weights == [1.0, 0.5] and again.student_loss_weight == 0.2
    np.testing.assert_allclose(again.student.predict(X, verbose=0),
                               distiller.student.predict(X, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(again.adapters[1](X[:2, :, :, :1].repeat(8, -1)),
                               distiller.adapters[1](X[:2, :, :, :1].repeat(8, -1)), rtol=1e-6)


def test_checkpoints_through_keras_callbacks(tmp_path):
    k.utils.set_random_seed(0)
    distiller = Distiller(_cnn("t"), _cnn("s"))
    distiller.compile(optimizer="adam")
    checkpoint = k.callbacks.ModelCheckpoint(tmp_path / "ckpt.weights.h5", save_weights_only=True)
    distiller.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpoint])
    restored = Distiller(_cnn("t"), _cnn("s"))
    restored.compile(optimizer="adam")
    restored.load_weights(tmp_path / "ckpt.weights.h5")
    np.testing.assert_allclose(restored.student.predict(X, verbose=0),
                               distiller.student.predict(X, verbose=0), rtol=1e-6)


_TWO_REPLICAS = textwrap.dedent("""
    import numpy as np
    from edgedistill._tf import keras, tensorflow
    tf = tensorflow()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    k = keras()
    from edgedistill.distill import Distiller, LabelAccuracy, RKDDistance

    def build(seed):
        k.utils.set_random_seed(seed)
        def cnn(name, width):
            inputs = k.Input((8, 8, 1))
            x = k.layers.Conv2D(width, 3, name=name + "_conv")(inputs)
            x = k.layers.GlobalAveragePooling2D()(x)
            return k.Model(inputs, k.layers.Dense(10)(x), name=name)
        return Distiller(cnn("t", 16), cnn("s", 4), ["logits_distillation", "logits_mse"],
                         student_loss_weight=0.3)

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8, 8, 1)).astype("float32"), rng.integers(0, 10, 64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    results = []
    for strategy in (tf.distribute.get_strategy(),
                     tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
        with strategy.scope():
            d = build(0)
            d.compile(optimizer=k.optimizers.SGD(0.1), metrics=[LabelAccuracy()])
        history = d.fit(ds, epochs=2, verbose=0)
        results.append((history.history["loss"], d.student.get_weights()[0]))
    (loss_1, w_1), (loss_2, w_2) = results
    assert len(tf.config.list_logical_devices("CPU")) == 2
    np.testing.assert_allclose(loss_1, loss_2, rtol=1e-4)
    np.testing.assert_allclose(w_1, w_2, rtol=1e-3, atol=1e-5)
    print("same on 1 and 2 replicas")
""")


def test_two_replicas_train_like_one():
    done = subprocess.run([sys.executable, "-c", _TWO_REPLICAS], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same on 1 and 2 replicas" in done.stdout
