"""Streamed data: tf.data pipelines and TFRecord directories, and every damaged one refused."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from edgedistill._tf import tensorflow
from edgedistill.cli import main
from edgedistill.data import load_dataset
from edgedistill.distill import distill
from edgedistill.distill.augment import stream_batches
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model
from edgedistill.streams import from_tf_data, load_tfrecords, write_tfrecords

tf = tensorflow()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def records(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("tfr") / "digits"
    return write_tfrecords(path, train=(digits.x_train, digits.y_train),
                           val=(digits.x_val, digits.y_val), test=(digits.x_test, digits.y_test))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEDISTILL_CACHE_DIR", str(tmp_path / "cache"))


def _stream(digits, **kwargs):
    return from_tf_data(tf.data.Dataset.from_tensor_slices((digits.x_train, digits.y_train)),
                        tf.data.Dataset.from_tensor_slices((digits.x_val, digits.y_val)),
                        tf.data.Dataset.from_tensor_slices((digits.x_test, digits.y_test)),
                        **kwargs)


def test_tfrecords_round_trip(records, digits):
    data = load_tfrecords(records)
    assert data.input_shape == (8, 8, 1) and data.num_classes == 10
    assert data.samples == {"train": len(digits.x_train), "val": len(digits.x_val),
                            "test": len(digits.x_test)}
    x, y = next(iter(data.train.batch(5)))
    np.testing.assert_array_equal(x.numpy(), digits.x_train[:5])
    np.testing.assert_array_equal(y.numpy(), digits.y_train[:5])
    assert load_dataset(records).samples == data.samples


def test_stream_batches_are_seeded_per_epoch_and_resume(digits):
    data = _stream(digits, shuffle_buffer=100)

    def epochs(start, n, seed=0):
        ds = stream_batches(data.train, samples=data.samples["train"], batch_size=64, seed=seed,
                            shuffle_buffer=100, augmentations=["shift", "mixup"],
                            num_classes=10, start_epoch=start)
        steps = -(-data.samples["train"] // 64)
        return [(x.numpy(), y.numpy()) for x, y in ds.take(n * steps)], steps

    whole, steps = epochs(0, 3)
    resumed, _ = epochs(2, 1)
    for (xa, ya), (xb, yb) in zip(whole[2 * steps:], resumed, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(whole[0][0], whole[steps][0])
    assert not np.array_equal(whole[0][0], epochs(0, 1, seed=1)[0][0][0])


def test_distill_on_a_stream_keeps_the_fair_baseline(digits, tmp_path):
    result = distill("teacher-mlp", "student-mlp", _stream(digits), tmp_path / "run", alpha=1.0,
                     epochs=2, teacher_epochs=1, seed=3, augment=["shift"])
    for a, b in zip(load_keras_model(result.student_path).get_weights(),
                    load_keras_model(result.scratch_path).get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert result.data["kind"] == "stream" and result.teacher_outputs is None
    assert 0.1 < result.teacher_accuracy <= 1.0


def test_the_command_line_distills_from_a_tfrecord_directory(records, tmp_path):
    result = CliRunner().invoke(main, ["distill", "-t", "teacher-mlp", "--teacher-epochs", "1",
                                       "-s", "student-mlp", "--data", str(records), "--out",
                                       str(tmp_path / "run"), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert record["data"]["kind"] == "stream" and record["data"]["train_samples"] > 1000


def _example(x, y, x_key="x"):
    feature = {x_key: tf.train.Feature(bytes_list=tf.train.BytesList(
                   value=[tf.io.serialize_tensor(np.asarray(x, np.float32)).numpy()])),
               "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[y]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path, examples):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example)


@pytest.mark.parametrize("case, message", [
    ("no-val", "no val*.tfrecord files"),
    ("garbage", "not a TFRecord file of (x, y) examples"),
    ("empty", "holds no records"),
    ("wrong-key", "not a TFRecord file of (x, y) examples"),
    ("scalar", "x must be an array"),
    ("shapes", "cannot be read"),
    ("truncated", "cannot be read"),
    ("negative", "negative labels"),
    ("val-shape", "different input shapes"),
])
def test_damaged_tfrecord_directories_are_one_line_errors(tmp_path, case, message):
    good = [_example(np.zeros((4, 4)), i % 3) for i in range(20)]
    train = val = good
    if case == "garbage":
        (tmp_path / "train.tfrecord").write_bytes(b"\x00garbage" * 50)
        train = None
    elif case == "empty":
        train = []
    elif case == "wrong-key":
        train = [_example(np.zeros((4, 4)), 1, x_key="image")]
    elif case == "scalar":
        train = [_example(np.float32(1.0), 1)]
    elif case == "shapes":
        train = good + [_example(np.zeros((5, 4)), 1)]
    elif case == "negative":
        train = good + [_example(np.zeros((4, 4)), -1)]
    elif case == "val-shape":
        val = [_example(np.zeros((2, 8)), 1)]
    if train is not None:
        _write(tmp_path / "train.tfrecord", train)
    if case == "truncated":
        data = (tmp_path / "train.tfrecord").read_bytes()
        (tmp_path / "train.tfrecord").write_bytes(data[: len(data) - 7])
    if case != "no-val":
        _write(tmp_path / "val.tfrecord", val)
    with pytest.raises(EdgeDistillError, match=re.escape(message)) as error:
        load_tfrecords(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("train, message", [
    ([1, 2, 3], "expected a tf.data.Dataset"),
    (tf.data.Dataset.range(3), "elements must be (x, y) pairs"),
    (tf.data.Dataset.from_tensor_slices((np.zeros((3, 2)), np.zeros(3, np.float32))),
     "y integer labels"),
    (tf.data.Dataset.from_tensor_slices((np.zeros((3, 2)), np.zeros((3, 2), np.int64))).batch(2),
     "one integer label per example"),
    (tf.data.Dataset.from_tensor_slices((np.array([[0, 1], [2, np.nan], [np.inf, 0]]),
                                         np.zeros(3, np.int64))),
     "train: example 1 holds NaN or infinity"),
])
def test_bad_pipelines_are_clean_errors(train, message):
    val = tf.data.Dataset.from_tensor_slices((np.zeros((3, 2), np.float32), np.zeros(3, np.int64)))
    with pytest.raises(EdgeDistillError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_tf_data(train, val)


def test_batched_pipelines_are_unbatched_and_classes_checked():
    x, y = np.zeros((10, 2), np.float32), np.arange(10) % 4
    data = from_tf_data(tf.data.Dataset.from_tensor_slices((x, y)).batch(3),
                        tf.data.Dataset.from_tensor_slices((x, y)))
    assert data.samples["train"] == 10 and data.input_shape == (2,) and data.num_classes == 4
    with pytest.raises(EdgeDistillError, match="beyond num_classes 3"):
        from_tf_data(tf.data.Dataset.from_tensor_slices((x, y)),
                     tf.data.Dataset.from_tensor_slices((x, y)), num_classes=3)
