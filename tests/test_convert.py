import dataclasses

import numpy as np
import pytest

from edgedistill._tf import keras
from edgedistill.compress import quantize_student
from edgedistill.convert import convert, convert_model
from edgedistill.convert.run import representative_set
from edgedistill.data import load_dataset
from edgedistill.errors import EdgeDistillError
from edgedistill.micro import write_evaluated_bundle
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
    result = convert(trained_qat_model, digits, tmp_path / "out")
    model = parse_tflite((tmp_path / "out" / "model.tflite").read_bytes())
    assert model.tensors[model.inputs[0]].dtype == "int8"
    assert model.tensors[model.outputs[0]].dtype == "int8"
    assert result.keras_accuracy > 0.8
    assert result.agreement >= 0.97
    assert abs(result.tflite_accuracy - result.keras_accuracy) < 0.03
    assert result.calibration_samples == 500  # 50 of each of the 10 classes
    assert result.quantization is None  # trained quantization-aware: its ranges are learned
    assert result.calibration_source == "50 per class from the training split"
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
    result = convert(trained_float_model, digits, tmp_path / "out", mode=mode, io_type=io_type)
    model = parse_tflite((tmp_path / "out" / "model.tflite").read_bytes())
    assert result.io_type == dtype
    assert {model.tensors[i].dtype for i in (*model.inputs, *model.outputs)} == {dtype}
    weights = {t.dtype for t in model.tensors if t.is_constant and len(t.shape) > 1}
    assert weights == {"int8"}
    if mode == "16x8":  # int16 activations between the layers
        assert "int16" in {t.dtype for t in model.tensors if not t.is_constant}
    assert result.agreement >= 0.97 and 0 <= result.mean_abs_diff <= result.max_abs_diff
    if mode == "int8":  # every op's error measured; a trained model has none in trouble
        report = result.quantization
        assert len(report.rows) >= 4 and not report.flagged and report.debug_samples == 100
        assert max(row.rmse_over_scale for row in report.rows) < 1
    else:
        assert result.quantization is None
    if micro:  # TFLM runs it and agrees with LiteRT, and picks the same classes
        check = write_evaluated_bundle(result.tflite_path, tmp_path / "micro", digits).check
        assert check.passed and check.samples == 100 and check.top1_agreement >= 0.99


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
    with pytest.raises(CheckFailed, match=r"points below the Keras model's .* no model "
                                          r"written \(1 op\(s\) lose more than one int8 step, "
                                          r"worst") as failure:
        convert(tmp_path / "m.h5", blank, tmp_path / "out", max_accuracy_drop=0.01)
    assert not (tmp_path / "out").exists()
    report = failure.value.details
    # The input's range, calibrated on zeros, clips every real input at the first op.
    assert [row.op for row in report.flagged] == ["RESHAPE"]
    assert "outside the calibration inputs' range [0, 0]" in report.remedies[0]
    # The command line shows the table of each op's error above the one-line message.
    from click.testing import CliRunner

    from edgedistill.cli import main

    np.savez(tmp_path / "blank.npz", x_train=blank.x_train, y_train=blank.y_train,
             x_test=digits.x_test, y_test=digits.y_test)
    cli = CliRunner().invoke(main, ["convert", str(tmp_path / "m.h5"), "--data",
                                    str(tmp_path / "blank.npz"), "--out", str(tmp_path / "out"),
                                    "--max-drop", "1"])
    assert cli.exit_code == 1 and not (tmp_path / "out").exists()
    assert "int8 error of each op" in cli.stderr and "flagged" in cli.stderr
    assert cli.stderr.strip().splitlines()[-1].startswith("Error: ")
    result = convert(tmp_path / "m.h5", digits, tmp_path / "ok", max_accuracy_drop=0.05)
    assert result.keras_accuracy - result.tflite_accuracy <= 0.05


def test_the_representative_set_draws_each_class_evenly(digits):
    # Each input holds its own row number, so a draw tells which rows it took.
    labels = np.where(np.arange(len(digits.y_train)) < 5, 10, digits.y_train)
    numbered = dataclasses.replace(
        digits, x_train=np.arange(len(labels), dtype=np.float32).reshape(-1, 1, 1, 1),
        y_train=labels)
    rows = representative_set(numbered, 20, seed=3).ravel().astype(int)
    counts = np.bincount(labels[rows], minlength=11)
    assert counts[:10].tolist() == [20] * 10
    assert counts[10] == 5  # a class with fewer samples than asked gives all it has
    assert (np.diff(rows) > 0).all()  # in training order, no repeats
    assert not np.array_equal(rows, representative_set(numbered, 20, seed=4).ravel())


def test_a_users_calibration_file_is_what_calibrates(trained_float_model, digits, tmp_path):
    np.save(tmp_path / "calib.npy", digits.x_train[:37])
    result = convert(trained_float_model, digits, tmp_path / "out",
                     calibration=tmp_path / "calib.npy")
    assert (result.calibration_samples, result.calibration_source) == (
        37, str(tmp_path / "calib.npy"))
    # Calibrated on blank inputs, the input scale has nothing to measure: the
    # model differs from the one calibrated on real data.
    np.save(tmp_path / "blank.npy", digits.x_train[:37] * 0)
    blank = convert(trained_float_model, digits, tmp_path / "blank",
                    calibration=tmp_path / "blank.npy")
    assert blank.tflite_accuracy < result.tflite_accuracy - 0.2
    np.save(tmp_path / "wrong.npy", digits.x_train[:5, :4])
    with pytest.raises(EdgeDistillError, match=r"wrong.npy: inputs have shape \(4, 8, 1\)"):
        convert(trained_float_model, digits, tmp_path / "wrong", calibration=tmp_path /
                "wrong.npy")
