"""Quantization-aware training: Conv1D students, and what reaches the int8 converter."""

import numpy as np
import pytest

from edgedistill._tf import keras
from edgedistill.compress import is_quantize_wrapped, quantize_student
from edgedistill.convert import convert
from edgedistill.data import load_dataset
from edgedistill.distill import distill
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model, save_keras_model
from edgedistill.tflite_file import read_tflite

k = keras()


def _conv1d_model(classes=4):
    return k.Sequential([
        k.layers.Input((32, 1)),
        k.layers.Conv1D(8, 3, activation="relu"),
        k.layers.Conv1D(8, 3, padding="same"),
        k.layers.ReLU(),
        k.layers.GlobalAveragePooling1D(),
        k.layers.Dense(classes),
    ], name="conv1d_student")


@pytest.fixture(scope="module")
def waves(tmp_path_factory):
    """Sines of 4 frequencies with noise: a 1-D task a small Conv1D learns."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 600)
    t = np.arange(32) / 32
    x = np.sin(2 * np.pi * (labels[:, None] + 1) * t + rng.random((600, 1)) * 6.28)
    x = (x + 0.2 * rng.standard_normal(x.shape)).astype(np.float32)[..., None]
    path = tmp_path_factory.mktemp("data") / "waves.npz"
    np.savez(path, x_train=x[:400], y_train=labels[:400], x_val=x[400:500],
             y_val=labels[400:500], x_test=x[500:], y_test=labels[500:])
    return load_dataset(path)


def test_a_conv1d_student_is_wrapped_with_its_weights_kept():
    model = _conv1d_model()
    wrapped = quantize_student(model)
    assert is_quantize_wrapped(wrapped)
    for layer in model.layers:
        if isinstance(layer, k.layers.Conv1D | k.layers.Dense):
            wrapper = wrapped.get_layer(f"quant_{layer.name}")

            def by_name(weights):
                return {w.name.split("/")[-1]: w.numpy() for w in weights
                        if w.name.endswith(("kernel:0", "bias:0"))}

            kept, original = by_name(wrapper.weights), by_name(layer.weights)
            assert kept.keys() == original.keys() == {"kernel:0", "bias:0"}
            for name in kept:
                np.testing.assert_array_equal(kept[name], original[name])


def test_a_conv1d_student_distills_with_qat_and_converts_to_int8_only(waves, tmp_path):
    teacher = _conv1d_model()
    teacher.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(waves.x_train, waves.y_train, epochs=5, verbose=0)
    save_keras_model(teacher, tmp_path / "teacher.h5")
    save_keras_model(_conv1d_model(), tmp_path / "student.h5")
    result = distill(str(tmp_path / "teacher.h5"), str(tmp_path / "student.h5"), waves,
                     tmp_path / "run", epochs=3, qat=True, cache_dir=tmp_path / "cache")
    assert is_quantize_wrapped(load_keras_model(result.student_path))
    converted = convert(result.student_path, waves, tmp_path / "int8")
    model = read_tflite(converted.tflite_path)
    assert {t.dtype for t in model.tensors} <= {"int8", "int32"}
    assert "CONV_2D" in model.opcodes
    assert converted.agreement >= 0.95


def test_a_layer_tfmot_cannot_quantize_is_named():
    model = k.Sequential([k.layers.Input((8, 4)), k.layers.LSTM(4), k.layers.Dense(3)],
                         name="recurrent")
    with pytest.raises(EdgeDistillError, match="student recurrent: quantization-aware .*lstm"):
        quantize_student(model)
