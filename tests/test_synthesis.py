"""DeepInversion-style synthesis: inputs that match the teacher's BatchNorm statistics."""

import numpy as np
import pytest

from edgedistill import zoo
from edgedistill._tf import keras
from edgedistill.data import load_dataset
from edgedistill.distill.synthesis import synthesize
from edgedistill.errors import EdgeDistillError

k = keras()


@pytest.fixture(scope="module")
def teacher():
    data = load_dataset("digits")
    k.utils.set_random_seed(0)
    model = zoo.build("teacher-cnn", data.input_shape, data.num_classes)
    model.compile(k.optimizers.Adam(1e-3), k.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, verbose=0)
    return model


def test_inputs_are_in_range_with_balanced_classes_and_match_the_statistics(teacher):
    before = [w.copy() for w in teacher.get_weights()]
    x, y, record = synthesize(teacher, 50, batch_size=32, steps=100, seed=1)
    assert x.shape == (50, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y, minlength=10).tolist() == [5] * 10
    assert record.batchnorm_layers == ("block1_bn", "block2_bn", "block3_bn")
    assert record.batchnorm_loss < 0.5 * record.initial_batchnorm_loss
    assert record.teacher_agreement > 0.25  # chance is 0.1
    for a, b in zip(before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_synthesis_is_seeded(teacher):
    a = synthesize(teacher, 20, batch_size=16, steps=5, seed=4)
    b = synthesize(teacher, 20, batch_size=16, steps=5, seed=4)
    c = synthesize(teacher, 20, batch_size=16, steps=5, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_a_teacher_without_batchnorm_is_refused():
    model = zoo.build("teacher-mlp", (8, 8, 1), 10)
    with pytest.raises(EdgeDistillError, match="has no BatchNormalization layer"):
        synthesize(model, 10)


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 0}, "count: must be a whole number"),
    ({"count": 10, "steps": 0}, "steps: must be"),
    ({"count": 10, "batch_size": 2.5}, "batch_size: must be"),
    ({"count": 10, "learning_rate": float("nan")}, "learning_rate: must be"),
    ({"count": 10, "l2_weight": -1}, "l2_weight: must be"),
    ({"count": 10, "value_range": (1, 0)}, "low must be below high"),
])
def test_bad_settings_are_clean_errors(teacher, kwargs, message):
    with pytest.raises(EdgeDistillError, match=message):
        synthesize(teacher, **kwargs)
