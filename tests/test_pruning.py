"""Magnitude pruning with tfmot: every pattern reaches its sparsity, and the zeros reach int8."""

from pathlib import Path

import numpy as np
import pytest

from edgedistill._tf import keras
from edgedistill.compress.pruning import (
    Pruning,
    is_prune_wrapped,
    prune_student,
    pruning_callbacks,
    sparsity_report,
    strip_student,
)
from edgedistill.convert import convert
from edgedistill.data import load_dataset
from edgedistill.errors import EdgeDistillError
from edgedistill.models import load_keras_model
from edgedistill.zoo import build

k = keras()
EPOCHS = 4


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _pruned(digits, pruning):
    model = build("student-cnn", (8, 8, 1), 10)
    steps = EPOCHS * int(np.ceil(len(digits.x_train) / 64))
    wrapped = prune_student(model, pruning, total_steps=steps)
    wrapped.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
    wrapped.fit(digits.x_train, digits.y_train, batch_size=64, epochs=EPOCHS, verbose=0,
                callbacks=pruning_callbacks())
    return strip_student(wrapped)


def _sparsities(model):
    return {r.layer: r.sparsity for r in sparsity_report(model)}


@pytest.mark.parametrize(("pruning", "expected"), [
    (Pruning(0.5), {"block1": 0.5, "block2": 0.5, "logits": 0.5}),
    (Pruning(0.75, schedule="constant"), {"block1": 0.75, "block2": 0.75, "logits": 0.75}),
    # The first convolution sees one input channel: no 2:4 pattern fits it.
    (Pruning(m_by_n=(2, 4)), {"block1": 0.0, "block2": 0.5, "logits": 0.5}),
    (Pruning(0.5, block=(4, 2)), {"block1": 0.0, "block2": 0.0, "logits": 0.5}),
    (Pruning(layers={"block2": 0.8}), {"block1": 0.0, "block2": 0.8, "logits": 0.0}),
], ids=["polynomial", "constant", "2:4", "block", "per-layer"])
def test_each_pattern_reaches_its_sparsity(digits, pruning, expected):
    stripped = _pruned(digits, pruning)
    assert not is_prune_wrapped(stripped)
    for layer, sparsity in _sparsities(stripped).items():
        assert sparsity == pytest.approx(expected[layer], abs=0.01), (layer, sparsity)


def test_two_of_four_means_two_zeros_in_every_group_of_four(digits):
    stripped = _pruned(digits, Pruning(m_by_n=(2, 4)))
    kernel = np.asarray(stripped.get_layer("logits").kernel)  # (inputs, outputs)
    groups = kernel.T.reshape(kernel.shape[1], -1, 4)
    assert ((groups == 0).sum(-1) >= 2).all()


def test_wrapping_keeps_the_weights():
    model = build("student-cnn", (8, 8, 1), 10)
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    wrapped = prune_student(model, Pruning(0.5), total_steps=100)
    assert is_prune_wrapped(wrapped) and not is_prune_wrapped(model)
    np.testing.assert_allclose(strip_student(wrapped)(x), model(x), rtol=1e-6)


def test_the_zeros_survive_int8_conversion(digits, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    stripped = _pruned(digits, Pruning(0.5))
    stripped.save(tmp_path / "pruned.h5")
    result = convert(tmp_path / "pruned.h5", digits, tmp_path / "int8")
    interpreter = Interpreter(model_path=result.tflite_path)
    interpreter.allocate_tensors()
    kernels = [d for d in interpreter.get_tensor_details()
               if d["dtype"] == np.int8 and len(d["shape"]) in (2, 4) and d["shape"][0] > 1
               and d["name"].startswith(("student_cnn/logits", "student_cnn/block2"))]
    assert len(kernels) == 2, [d["name"] for d in kernels]
    for detail in kernels:
        assert np.mean(interpreter.get_tensor(detail["index"]) == 0) >= 0.49, detail["name"]


@pytest.mark.parametrize(("settings", "message"), [
    (dict(sparsity=1.5), "pruning sparsity: must lie in (0, 1)"),
    (dict(sparsity=float("nan")), "pruning sparsity: must lie in (0, 1)"),
    (dict(m_by_n=(4, 2)), "need 0 < m < n"),
    (dict(m_by_n=(2, 4), block=(2, 2)), "m_by_n or block, not both"),
    (dict(schedule="cubic"), "'cubic' unknown"),
    (dict(begin=0.7, end=0.5), "0 <= begin < end <= 1"),
    (dict(frequency=0), "frequency"),
    (dict(layers={"block1": 2.0}), "pruning layers: block1: must lie"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(EdgeDistillError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Pruning(**settings)


@pytest.mark.parametrize(("pruning", "message"), [
    (Pruning(layers={"nope": 0.5}), "has no layer 'nope'"),
    (Pruning(layers={"block1_pool": 0.5}), "'block1_pool' is a MaxPooling2D"),
    (Pruning(m_by_n=(2, 4), layers={"block1": 0.5}), "has 1 input channels"),
    (Pruning(block=(4, 2), layers={"block2": 0.5}), "block sparsity needs a rank-2 kernel"),
])
def test_layers_a_pattern_cannot_prune_are_named(pruning, message):
    with pytest.raises(EdgeDistillError, match=message):
        prune_student(build("student-cnn", (8, 8, 1), 10), pruning, total_steps=100)


def test_distill_prunes_the_student_and_its_baseline(digits, tmp_path):
    from edgedistill.distill import distill
    from edgedistill.models import load_keras_model

    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.h5")
    result = distill(str(tmp_path / "teacher.h5"), "student-cnn", digits, tmp_path / "run",
                     epochs=4, prune="sparsity=0.5,end=0.5", cache_dir=tmp_path / "cache")
    assert result.compression["scheme"] == "prune" and result.compression["sparsity"] == 0.5
    assert {r["layer"]: r["sparsity"] for r in result.compressed_layers} == pytest.approx(
        {"block1": 0.5, "block2": 0.5, "logits": 0.5}, abs=0.01)
    for path in (result.student_path, result.scratch_path):
        saved = load_keras_model(path)
        assert not is_prune_wrapped(saved)
        assert all(r.sparsity == pytest.approx(0.5, abs=0.01) for r in sparsity_report(saved))
    # The best epoch is one at full sparsity: the ramp ends with epoch 2 of 4.
    assert result.fits["distill"]["best_epoch"] >= 2
    assert result.fits["scratch"]["best_epoch"] >= 2
    np.testing.assert_allclose(
        result.student_accuracy,
        np.mean(load_keras_model(result.student_path).predict(digits.x_test, verbose=0)
                .argmax(-1) == digits.y_test))


def test_prune_and_qat_together_are_refused_before_any_training(digits, tmp_path):
    from edgedistill.distill import distill

    with pytest.raises(EdgeDistillError, match="prune with qat"):
        distill("teacher-mlp", "student-cnn", digits, tmp_path / "run", prune=0.5, qat=True)
    assert not (tmp_path / "run").exists()


def test_qat_after_pruning_keeps_the_zeros_into_int8(digits, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from edgedistill.compress import is_quantize_wrapped, quantize_student
    from edgedistill.compress.qat import is_sparse
    from edgedistill.distill import distill
    from edgedistill.models import load_keras_model

    stripped = _pruned(digits, Pruning(0.5))
    assert is_sparse(stripped) and not is_sparse(build("student-cnn", (8, 8, 1), 10))
    stripped.save(tmp_path / "pruned.h5")
    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.h5")
    result = distill(str(tmp_path / "teacher.h5"), str(tmp_path / "pruned.h5"), digits,
                     tmp_path / "pqat", epochs=2, qat=True, cache_dir=tmp_path / "cache")
    assert is_quantize_wrapped(load_keras_model(result.student_path))
    converted = convert(result.student_path, digits, tmp_path / "int8")
    interpreter = Interpreter(model_path=converted.tflite_path)
    interpreter.allocate_tensors()
    kernels = [d for d in interpreter.get_tensor_details()
               if d["dtype"] == np.int8 and len(d["shape"]) in (2, 4) and d["shape"][0] > 1]
    assert len(kernels) == 3
    for detail in kernels:
        assert np.mean(interpreter.get_tensor(detail["index"]) == 0) >= 0.49, detail["name"]
    # Without the prune-preserving scheme the same QAT fills the zeros in.
    plain = quantize_student(stripped, preserve_sparsity=False)
    plain.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain.fit(digits.x_train, digits.y_train, epochs=1, verbose=0)
    kernel = [w for w in plain.get_layer("quant_logits").weights if "kernel" in w.name][0]
    assert np.mean(kernel.numpy() == 0) < 0.1


def test_clustering_distills_the_student_and_its_baseline(digits, tmp_path):
    from edgedistill.compress import Clustering
    from edgedistill.distill import distill

    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.h5")
    result = distill(str(tmp_path / "teacher.h5"), "student-cnn", digits, tmp_path / "c",
                     epochs=2, cluster="clusters=8", cache_dir=tmp_path / "cache")
    assert result.compression == {"scheme": "cluster", "clusters": 8,
                                  "init": "kmeans_plus_plus", "layers": None}
    assert {r["distinct_values"] for r in result.compressed_layers} == {8}
    scratch = Clustering(8).report(load_keras_model(result.scratch_path))
    assert {r["distinct_values"] for r in scratch} == {8}
    with pytest.raises(EdgeDistillError, match="cluster with qat: run them one after the"):
        distill(str(tmp_path / "teacher.h5"), "student-cnn", digits, tmp_path / "q",
                cluster=8, qat=True)


def test_qat_after_clustering_keeps_the_clusters_into_int8(digits, tmp_path):
    """Cluster-preserving QAT, distilled: the saved student reloads and converts, and each
    output channel of the int8 kernels holds at most the cluster count of values."""
    from edgedistill.compress import is_quantize_wrapped
    from edgedistill.compress.qat import is_clustered, qat_scheme
    from edgedistill.convert.litert import kernel_statistics
    from edgedistill.distill import distill

    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.h5")
    clustered = distill(str(tmp_path / "teacher.h5"), "student-cnn", digits, tmp_path / "c",
                        epochs=2, cluster=8, cache_dir=tmp_path / "cache")
    float_student = load_keras_model(clustered.student_path)
    assert is_clustered(float_student) and not is_clustered(build("student-cnn", (8, 8, 1), 10))
    assert qat_scheme(float_student) == "cluster-preserving"
    result = distill(str(tmp_path / "teacher.h5"), clustered.student_path, digits,
                     tmp_path / "cqat", epochs=2, qat=True, cache_dir=tmp_path / "cache",
                     scratch_student=clustered.scratch_path)
    assert result.qat_scheme == "cluster-preserving"
    for path in (result.student_path, result.scratch_path):
        model = load_keras_model(path)
        assert is_quantize_wrapped(model)
        converted = convert(path, digits, tmp_path / f"int8-{Path(path).stem}")
        assert converted.agreement > 0.95
        large = [s for s in kernel_statistics(converted.tflite_path) if s["elements"] > 256]
        assert len(large) == 2 and all(s["distinct_values"] <= 8 for s in large), large


@pytest.mark.parametrize(("spec", "message"), [
    ("1", "a whole number from 2 to 256"),
    ("clusters=300", "a whole number from 2 to 256"),
    ("init=spiral", "'spiral' unknown"),
    ("centroids=4", "unknown setting 'centroids'"),
])
def test_bad_clustering_settings_are_one_line_errors(spec, message):
    from edgedistill.compress import Clustering

    with pytest.raises(EdgeDistillError, match=message):
        Clustering.from_spec(spec)


def test_schemes_round_trip_through_the_registry():
    from edgedistill.compress import Clustering, CompressionScheme, get, serialize

    for scheme in (Pruning(0.6, m_by_n=None), Pruning(m_by_n=(2, 4)), Clustering(8)):
        assert isinstance(scheme, CompressionScheme)
        assert get(serialize(scheme)) == scheme
    assert get("prune:sparsity=0.3,schedule=constant") == Pruning(0.3, schedule="constant")
    with pytest.raises(EdgeDistillError, match="squash: unknown compression scheme; known: "
                                               "cluster, prune"):
        get("squash")
