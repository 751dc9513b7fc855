"""The zoo builds every model for any image shape; students stay small and QAT-able."""

import numpy as np
import pytest

from edgedistill import zoo
from edgedistill.compress import quantize_student
from edgedistill.errors import EdgeDistillError

STUDENTS = ("student-cnn", "student-cnn3", "tiny-cnn", "student-mlp")
TEACHERS = ("teacher-cnn", "teacher-mlp")


@pytest.mark.parametrize("name", zoo.ZOO)
@pytest.mark.parametrize("input_shape", [(8, 8, 1), (28, 28), (28, 28, 3)])
def test_every_zoo_model_maps_inputs_to_one_logit_per_class(name, input_shape):
    model = zoo.build(name, input_shape, num_classes=7)
    outputs = model(np.zeros((2, *input_shape), np.float32))
    assert outputs.shape == (2, 7)
    assert model.layers[-1].get_config().get("activation", "linear") == "linear"


@pytest.mark.parametrize("student", STUDENTS)
def test_students_are_ten_times_smaller_than_teachers_and_quantize(student):
    model = zoo.build(student, (28, 28, 1), 10)
    smallest_teacher = min(zoo.build(t, (28, 28, 1), 10).count_params() for t in TEACHERS)
    assert 10 * model.count_params() <= smallest_teacher
    quantize_student(model)


def test_every_cnn_student_stays_within_the_benchmarks_15k_parameters_on_fashion_mnist():
    sizes = {name: zoo.build(name, (28, 28, 1), 10).count_params()
             for name in ("student-cnn", "student-cnn3", "tiny-cnn")}
    assert max(sizes.values()) <= 15_000, sizes


def test_tiny_cnn_is_the_far_end_of_the_capacity_gap():
    tiny = zoo.build("tiny-cnn", (28, 28, 1), 10).count_params()
    assert tiny < 1_500
    assert tiny < zoo.build("student-cnn", (28, 28, 1), 10).count_params() / 5


def test_unknown_zoo_name_lists_the_known_ones():
    with pytest.raises(EdgeDistillError, match="tiny-cnn"):
        zoo.build("huge-cnn", (8, 8, 1), 10)
