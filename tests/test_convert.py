import dataclasses

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


def _trained(digits, folder, qat: bool):
    """A small CNN trained for a few epochs, QAT-wrapped or float: what distill hands over."""
    k.utils.set_random_seed(0)
    model = k.Sequential([
        k.layers.Input((8, 8, 1)),
        k.layers.Conv2D(8, 3, padding="same", activation="relu"),
        k.layers.MaxPooling2D(2),
        k.layers.Flatten(),
        k.layers.Dense(10),
    ])
    if qat:
        model = quantize_student(model)
    model.compile(optimizer=k.optimizers.Adam(5e-3),
                  loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.tf_dataset("train", 64, shuffle=True), epochs=4, verbose=0)
    path = folder / ("qat.h5" if qat else "float.h5")
    save_keras_model(model, path)
    return path


@pytest.fixture(scope="module")
def trained_qat_model(digits, tmp_path_factory):
    return _trained(digits, tmp_path_factory.mktemp("model"), qat=True)


@pytest.fixture(scope="module")
def trained_float_model(digits, tmp_path_factory):
    return _trained(digits, tmp_path_factory.mktemp("model"), qat=False)


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


@pytest.mark.parametrize(("mode", "io_type", "dtype", "micro"), [
    ("int8", "uint8", "uint8", True),
    ("int8", "float32", "float32", False),
    ("16x8", None, "int16", True),
    ("16x8", "float32", "float32", False),
])
def test_full_integer_modes_take_each_io_type(trained_float_model, digits, tmp_path, mode,
                                              io_type, dtype, micro):
    result = convert(trained_float_model, digits, tmp_path / "out", mode=mode, io_type=io_type,
                     micro=micro)
    model = parse_tflite((tmp_path / "out" / "model.tflite").read_bytes())
    assert result.io_type == dtype
    assert {model.tensors[i].dtype for i in (*model.inputs, *model.outputs)} == {dtype}
    weights = {t.dtype for t in model.tensors if t.is_constant and len(t.shape) > 1}
    assert weights == {"int8"}
    if mode == "16x8":  # int16 activations between the layers
        assert "int16" in {t.dtype for t in model.tensors if not t.is_constant}
    assert result.agreement >= 0.97 and 0 <= result.mean_abs_diff <= result.max_abs_diff
    if micro:  # TFLM runs it and agrees with LiteRT
        assert result.micro["check"]["passed"]


def test_an_io_type_the_mode_lacks_is_named(digits, tmp_path, trained_qat_model):
    with pytest.raises(EdgeDistillError, match="--io uint8: mode 16x8 takes int16 or float32"):
        convert("unused.h5", digits, tmp_path / "out", mode="16x8", io_type="uint8")
    with pytest.raises(EdgeDistillError, match="converts to int8 only"):
        convert(trained_qat_model, digits, tmp_path / "out", mode="16x8")
    assert not (tmp_path / "out").exists()


def test_a_conversion_losing_more_than_allowed_writes_nothing(digits, tmp_path):
    from edgedistill.errors import CheckFailed

    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    model.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.x_train, digits.y_train, epochs=3, verbose=0)
    # Calibrated on blank images, int8 cannot represent real inputs: accuracy collapses.
    model.save(tmp_path / "m.h5")
    blank = dataclasses.replace(digits, x_train=digits.x_train * 0)
    with pytest.raises(CheckFailed, match=r"points below the Keras model's .* no model written"):
        convert(tmp_path / "m.h5", blank, tmp_path / "out", max_accuracy_drop=0.01)
    assert not (tmp_path / "out").exists()
    result = convert(tmp_path / "m.h5", digits, tmp_path / "ok", max_accuracy_drop=0.05,
                     micro=False)
    assert result.keras_accuracy - result.tflite_accuracy <= 0.05
