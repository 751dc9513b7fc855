"""Per-op quantization error (convert.debug) on real, tiny digits CNNs."""

import json

import numpy as np
import pytest
from conftest import strict_json

from edgedistill._tf import keras
from edgedistill.compress import quantize_student
from edgedistill.convert import convert_model
from edgedistill.convert.debug import FLAG_RMSE_OVER_SCALE, debug_quantization
from edgedistill.convert.run import representative_set
from edgedistill.data import load_dataset
from edgedistill.errors import EdgeDistillError
from edgedistill.tflite_file import parse_tflite

k = keras()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def representative(digits):
    return representative_set(digits, 50)


def _trained(digits, *hidden):
    k.utils.set_random_seed(0)
    model = k.Sequential([
        k.layers.Input((8, 8, 1)),
        k.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv"),
        k.layers.MaxPooling2D(2, name="pool"),
        k.layers.Flatten(name="flat"),
        *hidden,
        k.layers.Dense(10, name="logits"),
    ])
    model.compile(optimizer=k.optimizers.Adam(5e-3),
                  loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.tf_dataset("train", 64, shuffle=True), epochs=4, verbose=0)
    return model


@pytest.fixture(scope="module")
def healthy(digits):
    return _trained(digits, k.layers.Dense(32, activation="relu", name="hidden"))


def _wide_channel(model, layer: str, consumer: str, factor: float = 1000.0):
    """A copy computing the same function, but with ``layer``'s strongest output channel
    ``factor`` times wider and ``consumer``'s weights for it ``factor`` times smaller:
    one range that int8 activations, quantized per tensor, cannot share."""
    copy = k.models.clone_model(model)
    copy.set_weights(model.get_weights())
    kernel, bias = copy.get_layer(layer).get_weights()
    channel = int(np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0).argmax())
    kernel[..., channel] *= factor
    bias[channel] *= factor
    copy.get_layer(layer).set_weights([kernel, bias])
    weights, consumer_bias = copy.get_layer(consumer).get_weights()
    weights[channel::kernel.shape[-1]] /= factor  # Flatten puts channels last.
    copy.get_layer(consumer).set_weights([weights, consumer_bias])
    return copy


@pytest.fixture(scope="module")
def broken(healthy, digits):
    model = _wide_channel(healthy, "hidden", "logits")
    np.testing.assert_allclose(model(digits.x_test[:100]), healthy(digits.x_test[:100]),
                               rtol=1e-3, atol=1e-3)
    return model


@pytest.fixture(scope="module")
def broken_report(broken, representative, digits):
    return debug_quantization(broken, representative, digits.x_test[:100],
                              labels=digits.y_test[:100])


def test_a_healthy_model_flags_nothing_and_rows_cover_every_quantized_op(healthy,
                                                                         representative, digits):
    report = debug_quantization(healthy, representative, digits.x_test[:100],
                                labels=digits.y_test[:100])
    assert report.flagged == report.remedies == report.selective_accuracy == ()
    assert report.accuracy_16x8 is None
    int8 = parse_tflite(convert_model(healthy, "int8", representative))
    assert [row.op for row in report.rows] == [op.opcode for op in int8.operators]
    assert [row.layer for row in report.rows] == ["conv", "pool", "flat", "hidden", "logits"]
    # Ops that requantize sit near ideal rounding, 0.29; ops that only move values at 0.
    for row in report.rows:
        if row.op in ("CONV_2D", "FULLY_CONNECTED"):
            assert 0.2 < row.rmse_over_scale < FLAG_RMSE_OVER_SCALE, row
        else:
            assert row.rmse_over_scale < 0.01, row
    assert report.float_accuracy > 0.8
    assert abs(report.int8_accuracy - report.float_accuracy) <= 0.02
    assert (report.debug_samples, report.calibration_samples) == (100, 500)
    assert report.accuracy_against == "labels"
    assert report.seconds < 30


def test_a_wide_range_channel_is_flagged_where_it_hurts_with_measured_remedies(broken_report):
    report = broken_report
    assert [row.layer for row in report.flagged] == ["logits"]
    assert report.flagged[0].rmse_over_scale > 5
    assert report.int8_accuracy < report.float_accuracy - 0.5
    # Keeping the wide-range layer and its consumer float recovers the float model; 16x8 most of it.
    assert report.selective_accuracy[0] >= report.float_accuracy - 0.03
    assert report.accuracy_16x8 > report.int8_accuracy + 0.5
    remedy = report.remedies[0]
    assert remedy.startswith("logits (FULLY_CONNECTED): off by ")
    assert f"accuracy on the 100 debug samples {report.int8_accuracy:.1%} all-int8" in remedy
    assert f"--mode 16x8 (int16 activations): {report.accuracy_16x8:.1%}" in remedy
    assert (f"keep hidden, logits in float (selective quantization): "
            f"{report.selective_accuracy[0]:.1%}") in remedy
    assert "--qat" in remedy
    assert "--calibration-per-class" not in remedy  # 500 samples are plenty


def test_few_calibration_samples_add_that_remedy(broken, digits):
    report = debug_quantization(broken, representative_set(digits, 1), digits.x_test[:100])
    assert report.calibration_samples == 10
    assert report.accuracy_against == "float model" and report.float_accuracy == 1.0
    assert "logits" in [row.layer for row in report.flagged]
    assert all("calibrate on more samples (--calibration-per-class; 10 in all now" in remedy
               and "agreement with the float model on the 100 debug samples" in remedy
               for remedy in report.remedies)


def test_the_range_setter_is_found_through_ops_that_only_move_values(digits, representative):
    # The wide channel is the conv's, two value-moving ops (pool, flatten) before the
    # flagged dense: all four kept float leave no quantized op, so the model is float.
    model = _wide_channel(_trained(digits), "conv", "logits")
    report = debug_quantization(model, representative, digits.x_test[:100])
    assert [row.layer for row in report.flagged] == ["logits"]
    assert "keep conv, pool, flat, logits in float" in report.remedies[0]
    assert report.selective_accuracy == (report.float_accuracy,)
    assert report.int8_accuracy < 0.5


def test_the_report_is_plain_json(broken_report):
    data = strict_json(json.dumps(broken_report.to_dict()))
    assert data["flagged"][0] == broken_report.flagged[0].to_dict()
    assert data["flagged"][0]["layer"] == "logits"
    assert len(data["rows"]) == 5 and data["criterion"].startswith("rmse/scale above 1")
    assert set(data["rows"][0]) == {"op", "layer", "tensor", "scale", "rmse_over_scale",
                                    "mean_error", "max_abs_error", "num_elements"}


def test_qat_models_and_other_modes_are_refused(healthy, representative, digits):
    qat = quantize_student(healthy)
    with pytest.raises(EdgeDistillError, match=f"^{qat.name}: trained quantization-aware.*"
                                               "debug the float model before --qat"):
        debug_quantization(qat, representative, digits.x_test[:100])
    with pytest.raises(EdgeDistillError, match="measures int8 only, not 16x8"):
        debug_quantization(healthy, representative, digits.x_test[:100], mode="16x8")
    with pytest.raises(EdgeDistillError, match="unknown"):
        debug_quantization(healthy, representative, digits.x_test[:100], mode="int4")
