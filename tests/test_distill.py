import numpy as np
import pytest

from edgedistill._tf import keras, tensorflow
from edgedistill.data import load_dataset
from edgedistill.distill import Distiller, LogitsDistillation, distill, get, serialize
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model

tf = tensorflow()
k = keras()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _dense(units, name, softmax=False):
    return k.Sequential(
        [k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(16, activation="relu"),
         k.layers.Dense(units, activation="softmax" if softmax else None)],
        name=name,
    )


def test_logits_distillation_is_temperature_scaled_kl():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(5, 10)), rng.normal(size=(5, 10))
    temperature = 3.0

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(t / temperature), softmax(s / temperature)
    expected = (p * (np.log(p) - np.log(q))).sum(-1) * temperature**2
    got = LogitsDistillation(temperature)(tf.constant(t), tf.constant(s)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    same = LogitsDistillation(temperature)(tf.constant(t), tf.constant(t))
    assert np.allclose(same, 0, atol=1e-5)


def test_loss_registry_round_trip():
    loss = get({"class_name": "LogitsDistillation", "config": {"temperature": 2.0}})
    assert serialize(loss) == {
        "class_name": "LogitsDistillation",
        "config": {"temperature": 2.0, "loss": "kl_divergence"},
    }
    assert get("logits_distillation").temperature == 4.0
    with pytest.raises(EdgeDistillError, match="unknown distillation loss"):
        get("nope")
    with pytest.raises(EdgeDistillError, match="temperature"):
        LogitsDistillation(temperature=0)


def test_distiller_trains_student_and_leaves_teacher_frozen(digits):
    k.utils.set_random_seed(0)
    teacher, student = _dense(10, "teacher", softmax=True), _dense(10, "student")
    teacher_weights = [w.numpy().copy() for w in teacher.weights]
    distiller = Distiller(teacher=teacher, student=student, student_loss_weight=0.5)
    distiller.compile(optimizer=k.optimizers.Adam(1e-2),
                      metrics=[k.metrics.SparseCategoricalAccuracy(name="accuracy")])
    history = distiller.fit(digits.tf_dataset("train", 64, shuffle=True), epochs=3, verbose=0,
                            validation_data=digits.tf_dataset("val", 64))
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert {"student_loss", "distillation_loss", "accuracy", "val_accuracy"} <= set(history.history)
    for before, after in zip(teacher_weights, teacher.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


def test_distiller_runs_under_a_distribution_strategy(digits):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        distiller = Distiller(teacher=_dense(10, "t"), student=_dense(10, "s"))
        distiller.compile(optimizer="adam")
    history = distiller.fit(digits.tf_dataset("train", 64), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_distiller_rejects_different_output_shapes():
    with pytest.raises(EdgeDistillError, match="output shape"):
        Distiller(teacher=_dense(10, "t"), student=_dense(3, "s"))


def test_distill_with_qat_writes_loadable_student(tmp_path, digits):
    result = distill("teacher-mlp", "student-mlp", digits, tmp_path / "run", epochs=1,
                     qat=True, seed=1)
    assert result.teacher_params / result.student_params >= 10
    assert 0.0 <= result.student_accuracy <= 1.0 and result.scratch_accuracy is not None
    student = load_keras_model(result.student_path)
    assert any("quant" in layer.name for layer in student.layers)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "distill.json", "scratch_student.h5", "student.h5", "teacher.h5",
    ]


def test_distill_checks_data_against_the_models(tmp_path, digits):
    teacher = _dense(10, "t")
    teacher.save(tmp_path / "t.h5")
    student = _dense(3, "s")
    student.save(tmp_path / "s.h5")
    with pytest.raises(EdgeDistillError, match="output shapes differ"):
        distill(tmp_path / "t.h5", tmp_path / "s.h5", digits, tmp_path / "out", epochs=1)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "wide.npz", x_train=rng.random((20, 4, 4, 1)),
             y_train=rng.integers(0, 10, 20), x_test=rng.random((5, 4, 4, 1)),
             y_test=rng.integers(0, 10, 5))
    with pytest.raises(EdgeDistillError, match=r"wide.npz: inputs have shape \(4, 4, 1\)"):
        distill(tmp_path / "t.h5", "student-mlp", tmp_path / "wide.npz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_distill_accepts_a_student_that_is_already_qat_wrapped(tmp_path, digits):
    from edgedistill.compress import is_quantize_wrapped, quantize_student
    from edgedistill.models import save_keras_model

    student = quantize_student(_dense(10, "s"))
    assert quantize_student(student) is student
    save_keras_model(student, tmp_path / "qat.h5")
    result = distill("teacher-mlp", tmp_path / "qat.h5", digits, tmp_path / "run", epochs=1,
                     qat=True)
    assert is_quantize_wrapped(load_keras_model(result.student_path))
    assert is_quantize_wrapped(load_keras_model(result.scratch_path))


def test_distiller_checkpoints_with_keras_callbacks(tmp_path, digits):
    k.utils.set_random_seed(0)
    distiller = Distiller(teacher=_dense(10, "t"), student=_dense(10, "s"))
    distiller.compile(optimizer="adam")
    checkpoint = k.callbacks.ModelCheckpoint(tmp_path / "ckpt.weights.h5", save_weights_only=True)
    distiller.fit(digits.tf_dataset("train", 64), epochs=1, verbose=0, callbacks=[checkpoint])
    restored = Distiller(teacher=_dense(10, "t"), student=_dense(10, "s"))
    restored.compile(optimizer="adam")
    restored.load_weights(tmp_path / "ckpt.weights.h5")
    x = digits.x_test[:8]
    np.testing.assert_allclose(restored.student.predict(x, verbose=0),
                               distiller.student.predict(x, verbose=0), rtol=1e-6)
