import numpy as np
import pytest

from edgedistill._tf import keras
from edgedistill.compress import quantize_student
from edgedistill.convert import convert, convert_model
from edgedistill.data import load_dataset
from edgedistill.errors import EdgeDistillError
from edgedistill.models import save_keras_model
from edgedistill.tflite_file import parse_tflite

k = keras()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained_qat_model(digits, tmp_path_factory):
    """A small QAT CNN trained for a few epochs: what distill hands to convert."""
    k.utils.set_random_seed(0)
    model = k.Sequential([
        k.layers.Input((8, 8, 1)),
        k.layers.Conv2D(8, 3, padding="same", activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.Flatten(),
        k.layers.Dense(10),
    ])
    model = quantize_student(model)
    model.compile(optimizer=k.optimizers.Adam(5e-3),
                  loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.tf_dataset("train", 64, shuffle=True), epochs=4, verbose=0)
    path = tmp_path_factory.mktemp("model") / "qat.h5"
    save_keras_model(model, path)
    return path


def test_int8_conversion_is_full_integer_and_agrees_with_keras(trained_qat_model, digits,
                                                               tmp_path):
    result = convert(trained_qat_model, digits, tmp_path / "out", micro=False)
    model = parse_tflite((tmp_path / "out" / "model.tflite").read_bytes())
    assert model.tensors[model.inputs[0]].dtype == "int8"
    assert model.tensors[model.outputs[0]].dtype == "int8"
    assert result.keras_accuracy > 0.8
    assert result.agreement >= 0.97
    assert abs(result.tflite_accuracy - result.keras_accuracy) < 0.03
    assert result.calibration_samples == 500
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "conversion.json", "model.tflite"
    ]


def test_float32_conversion_matches_keras_exactly(digits):
    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    tflite = convert_model(model, "float32")
    from edgedistill.convert.litert import predict

    np.testing.assert_allclose(predict(tflite, digits.x_test[:50]),
                               model.predict(digits.x_test[:50], verbose=0), atol=1e-5)


def test_int8_without_representative_data_is_an_error():
    model = k.Sequential([k.layers.Input((4,)), k.layers.Dense(2)])
    with pytest.raises(EdgeDistillError, match="representative data"):
        convert_model(model, "int8")


def test_bad_model_files(tmp_path, digits):
    with pytest.raises(EdgeDistillError, match="no such model file"):
        convert(tmp_path / "missing.h5", digits, tmp_path / "out")
    (tmp_path / "notes.h5").write_text("not a model")
    with pytest.raises(EdgeDistillError, match="cannot load as a tf_keras model"):
        convert(tmp_path / "notes.h5", digits, tmp_path / "out")
    with pytest.raises(EdgeDistillError, match="mode"):
        convert(tmp_path / "notes.h5", digits, tmp_path / "out", mode="int4")
    assert not (tmp_path / "out").exists()


def test_the_converter_sees_tf_keras():
    """TF_USE_LEGACY_KERAS is set before TensorFlow loads, so tf.keras is Keras 2."""
    import tf_keras

    from edgedistill._tf import tensorflow

    assert tensorflow().keras.Model is tf_keras.Model
