"""Adversaries: bounded perturbations that raise the loss, specs, and robust accuracy."""

import dataclasses
import logging

import numpy as np
import pytest

from edgedistill._tf import keras, tensorflow
from edgedistill.distill.adversarial import (
    Adversary,
    adversarial_accuracy,
    evaluation_adversary,
    get,
)
from edgedistill.distill.distiller import Distiller
from edgedistill.distill.labels import hard_label_crossentropy
from edgedistill.distill.losses import LogitsDistillation
from edgedistill.errors import EdgeDistillError

k = keras()
tf = tensorflow()


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (256, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > x[:, 2] + x[:, 3]).astype(np.int64)
    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((6,)), k.layers.Dense(16, activation="relu"),
                          k.layers.Dense(2)])
    model.compile(k.optimizers.Adam(1e-2),
                  k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    return model, x, y


@pytest.mark.parametrize("spec", ["fgsm:epsilon=0.05", "pgd:epsilon=0.05,steps=4"])
def test_perturbation_stays_in_the_ball_and_the_range_and_raises_the_loss(trained, spec):
    model, x, y = trained
    adversary = get(spec)
    x_adv = adversary.perturb(model, tf.constant(x), tf.constant(y)).numpy()
    assert np.all(np.abs(x_adv - x) <= 0.05 + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    clean = hard_label_crossentropy(y, model(x)).numpy().mean()
    attacked = hard_label_crossentropy(y, model(x_adv)).numpy().mean()
    assert attacked > clean * 1.2


def test_pgd_hurts_at_least_as_much_as_fgsm(trained):
    model, x, y = trained
    clean = adversarial_accuracy(model, (x, y), get("fgsm:epsilon=1e-9"))
    fgsm = adversarial_accuracy(model, (x, y), get("fgsm:epsilon=0.1"))
    pgd = adversarial_accuracy(model, (x, y), get("pgd:epsilon=0.1,steps=10"))
    assert clean > 0.9
    assert pgd <= fgsm + 0.02 < clean


def test_evaluating_many_models_gives_no_retracing_warning(trained):
    model, x, y = trained
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        for _ in range(6):  # each a new model to TensorFlow, each with a short last batch
            adversarial_accuracy(k.models.clone_model(model), (x[:100], y[:100]),
                                 get("fgsm:epsilon=0.1"), batch_size=64)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [r for r in records if "retracing" in r.getMessage()]


def test_a_softmax_model_is_attacked_through_its_log_probabilities(trained):
    model, x, y = trained
    softmax = k.Sequential([model, k.layers.Softmax()])
    adversary = get("fgsm:epsilon=0.1")
    assert adversarial_accuracy(softmax, (x, y), adversary) == pytest.approx(
        adversarial_accuracy(model, (x, y), adversary), abs=0.01)


@pytest.mark.parametrize("training, steps", [("fgsm:epsilon=0.2", 10), ("pgd:epsilon=0.2", 10),
                                             ("pgd:epsilon=0.2,steps=20", 20)])
def test_robustness_is_measured_with_pgd_of_the_training_radius(training, steps):
    training = get(training)
    evaluation = evaluation_adversary(dataclasses.replace(training, value_range=(-1.0, 1.0)))
    assert evaluation == Adversary("pgd", 0.2, steps, value_range=(-1.0, 1.0))


def test_the_student_on_perturbed_inputs_is_matched_to_the_teacher_on_clean_ones(trained):
    teacher, x, y = trained
    k.utils.set_random_seed(1)
    student = k.Sequential([k.layers.Input((6,)), k.layers.Dense(4, activation="relu"),
                            k.layers.Dense(2)])
    adversary = get("fgsm:epsilon=0.2")  # no random start: the reference perturbs alike
    loss = LogitsDistillation(temperature=2.0)
    distiller = Distiller(teacher=teacher, student=student, distillation_losses=loss,
                          student_loss_weight=0.0, adversary=adversary)
    x, y = tf.constant(x[:64]), tf.constant(y[:64])
    total = float(distiller.compute_loss(x, y))

    x_adv = adversary.perturb(student, x, y)
    clean = float(tf.reduce_mean(loss.compute_loss(teacher(x), student(x))))
    robust = float(tf.reduce_mean(loss.compute_loss(teacher(x), student(x_adv))))
    followed = float(tf.reduce_mean(loss.compute_loss(teacher(x_adv), student(x_adv))))
    assert total == pytest.approx(clean + robust, rel=1e-5)
    assert abs(robust - followed) > 1e-3  # the teacher on perturbed inputs would differ


def test_spec_and_dict_forms():
    assert get("pgd:epsilon=0.2,steps=3") == Adversary("pgd", 0.2, 3)
    assert get({"method": "fgsm", "epsilon": 0.1}) == Adversary("fgsm", 0.1)
    assert get(Adversary().to_dict()) == Adversary()


@pytest.mark.parametrize("spec, message", [
    ("cw:epsilon=0.1", "method 'cw' unknown"),
    ("pgd:epsilon=0", "epsilon must be a positive number"),
    ("pgd:epsilon=nan", "epsilon must be a positive number"),
    ("pgd:steps=0", "steps must be a positive integer"),
    ("pgd:steps=2.5", "steps must be a positive integer"),
    ("pgd:radius=3", "unknown setting 'radius'"),
    ({"method": "pgd", "value_range": [1, 0]}, "value_range"),
    (3, "cannot interpret"),
])
def test_bad_adversaries_are_clean_errors(spec, message):
    with pytest.raises(EdgeDistillError, match=message):
        get(spec)
