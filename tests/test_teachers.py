"""Teachers from every format agree with their source; damaged files are clean errors."""

from pathlib import Path

import numpy as np
import pytest

from edgedistill._tf import keras, tensorflow
from edgedistill.distill.cache import cached_teacher_outputs
from edgedistill.distill.teachers import EnsembleTeacher, as_teacher, load_teacher
from edgedistill.errors import EdgeDistillError

tf = tensorflow()
k = keras()
rng = np.random.default_rng(0)
X = rng.random((20, 8, 8, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1))
    x = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = k.layers.Flatten()(x)
    return k.Model(inputs, k.layers.Dense(10, name="logits")(x), name="tiny")


@pytest.fixture(scope="module")
def reference(model):
    return model.predict(X, verbose=0)


@pytest.fixture(scope="module")
def tflite_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("tfl") / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_tf_keras_file_and_layers(model, reference, tmp_path):
    model.save(tmp_path / "t.h5")
    teacher = load_teacher(tmp_path / "t.h5")
    assert teacher.kind == "keras" and teacher.output_shape == (None, 10)
    out = teacher.predict(X, batch_size=7, layer_names=["conv"])
    np.testing.assert_allclose(out["output"], reference, rtol=1e-5, atol=1e-6)
    assert out["conv"].shape == (20, 8, 8, 4)
    assert teacher.layer_output_shape("conv")[1:] == (8, 8, 4)
    with pytest.raises(EdgeDistillError, match="has no layer 'nope'"):
        teacher.layer_output_shape("nope")


def test_keras3_file(tmp_path):
    import keras as keras3

    inputs = keras3.Input((8, 8, 1))
    x = keras3.layers.Flatten()(keras3.layers.Conv2D(3, 3, name="conv")(inputs))
    model = keras3.Model(inputs, keras3.layers.Dense(10, activation="softmax")(x))
    model.save(tmp_path / "k3.keras")
    teacher = load_teacher(tmp_path / "k3.keras")
    assert teacher.kind == "keras3" and teacher.gives_probabilities
    out = teacher.predict(X, layer_names=["conv"])
    np.testing.assert_allclose(out["output"], model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    assert out["conv"].shape == (20, 6, 6, 3)


def test_saved_model(model, reference, tmp_path):
    tf.saved_model.save(model, str(tmp_path / "sm"))
    teacher = load_teacher(tmp_path / "sm")
    assert teacher.kind == "saved_model" and teacher.input_shape[1:] == (8, 8, 1)
    np.testing.assert_allclose(teacher.predict(X)["output"], reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(EdgeDistillError, match="exposes no layers"):
        teacher.predict(X, layer_names=["conv"])


def test_tflite_float_and_int8(model, reference, tflite_file, tmp_path):
    teacher = load_teacher(tflite_file)
    np.testing.assert_allclose(teacher.predict(X, batch_size=6)["output"], reference, rtol=1e-4,
                               atol=1e-5)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in X)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    (tmp_path / "int8.tflite").write_bytes(converter.convert())
    quantized = load_teacher(tmp_path / "int8.tflite")
    out = quantized.predict(X)["output"]
    assert np.abs(out - reference).max() < 0.1 * np.abs(reference).max()
    # In the training graph, through tf.numpy_function.
    graph_out = tf.function(lambda x: quantized.outputs(x)["output"])(tf.constant(X))
    np.testing.assert_allclose(graph_out.numpy(), out, rtol=1e-6)


def test_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    w = rng.normal(size=(64, 10)).astype(np.float32)
    b = rng.normal(size=10).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "w", "b"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 8, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              tmp_path / "t.onnx")
    teacher = load_teacher(tmp_path / "t.onnx")
    assert teacher.kind == "onnx" and not teacher.gives_probabilities
    np.testing.assert_allclose(teacher.predict(X)["output"], X.reshape(20, -1) @ w + b,
                               rtol=1e-4, atol=1e-4)


def test_npy_outputs_and_ensemble(model, reference, tmp_path):
    np.save(tmp_path / "t.npy", reference)
    teacher = load_teacher(tmp_path / "t.npy")
    assert not teacher.runs_in_graph
    np.testing.assert_array_equal(teacher.rows(np.array([3, 1])), reference[[3, 1]])
    with pytest.raises(EdgeDistillError, match="cannot follow new or augmented inputs"):
        teacher.predict(X)
    with pytest.raises(EdgeDistillError, match="has 20 rows but the training data needs row 25"):
        teacher.rows(np.array([25]))

    other = k.models.clone_model(model)
    ensemble = EnsembleTeacher([as_teacher(model), other], weights=[3, 1])

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    expected = np.log(0.75 * softmax(reference) + 0.25 * softmax(other.predict(X, verbose=0)))
    np.testing.assert_allclose(ensemble.predict(X)["output"], expected, rtol=1e-4, atol=1e-5)
    graph = tf.function(lambda x: ensemble.outputs(x)["output"])(tf.constant(X)).numpy()
    np.testing.assert_allclose(graph, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(EdgeDistillError, match="2 weights for 3 teachers|3 weights for 2"):
        EnsembleTeacher([model, other], weights=[1, 2, 3])


@pytest.mark.parametrize("name,content,message", [
    ("t.h5", b"not hdf5", "cannot load as a tf_keras model"),
    ("t.keras", b"PK\x03\x04 broken zip", "cannot load as a tf_keras model"),
    ("t.tflite", b"\x00" * 64, "t.tflite: "),
    ("t.onnx", b"garbage", "not a loadable ONNX model"),
    ("t.npy", b"\x93NUMPY garbage", "not a readable .npy file"),
    ("t.pt", b"torch", "unknown teacher format .pt"),
])
def test_damaged_files_are_one_line_errors(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(EdgeDistillError, match=message) as error:
        load_teacher(tmp_path / name)
    assert "\n" not in str(error.value)


def test_unsuitable_arrays_and_paths(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((4, 3), np.nan, np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(5, np.float32))
    for name, message in (("nan.npy", "NaN"), ("flat.npy", "2-D float array"),
                          ("missing.h5", "no such teacher")):
        with pytest.raises(EdgeDistillError, match=message):
            load_teacher(tmp_path / name)
    (tmp_path / "dir").mkdir()
    with pytest.raises(EdgeDistillError, match="without saved_model.pb"):
        load_teacher(tmp_path / "dir")


def _mutants(data: bytes, count: int, seed: int):
    mutate = np.random.default_rng(seed)
    for _ in range(count):
        b = bytearray(data)
        how = mutate.integers(3)
        if how == 0:  # flip bytes
            for i in mutate.integers(0, len(b), 1 + mutate.integers(8)):
                b[i] = int(mutate.integers(256))
        elif how == 1:  # truncate
            b = b[: int(mutate.integers(1, len(b)))]
        else:  # overwrite a run with an extreme value
            i = int(mutate.integers(0, max(1, len(b) - 4)))
            b[i:i + 4] = b"\xff\xff\xff\x7f"
        yield bytes(b)


def _survives(path, shape):
    """Each load either works, giving finite outputs of the right shape, or says why in one line."""
    try:
        teacher = load_teacher(path)
        out = (teacher.rows(np.arange(2)) if not teacher.runs_in_graph
               else teacher.predict(X[:2])["output"])
    except EdgeDistillError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert out.shape == shape and np.isfinite(out).all()


def test_fuzzed_npy_files(tmp_path):
    np.save(tmp_path / "good.npy", rng.random((6, 4)).astype(np.float32))
    data = (tmp_path / "good.npy").read_bytes()
    for i, mutant in enumerate(_mutants(data, 40, seed=1)):
        (tmp_path / f"m{i}.npy").write_bytes(mutant)
        _survives(tmp_path / f"m{i}.npy", (2, 4))


def test_fuzzed_tflite_files(tflite_file, tmp_path):
    for i, mutant in enumerate(_mutants(tflite_file.read_bytes(), 12, seed=2)):
        (tmp_path / f"m{i}.tflite").write_bytes(mutant)
        _survives(tmp_path / f"m{i}.tflite", (2, 10))


def test_cache_misses_then_hits_and_keys_on_teacher_and_data(model, tmp_path):
    teacher = as_teacher(model)
    first = cached_teacher_outputs(teacher, X, cache_dir=tmp_path, layer_names=["conv"])
    again = cached_teacher_outputs(teacher, X, cache_dir=tmp_path, layer_names=["conv"])
    assert not first.hit and again.hit and first.path == again.path
    for name in ("output", "conv"):
        np.testing.assert_array_equal(first.arrays[name], again.arrays[name])
    assert isinstance(again.arrays["output"], np.memmap)
    assert not again.arrays["output"].flags.writeable
    np.testing.assert_allclose(again.arrays["output"], model.predict(X, verbose=0), rtol=1e-5)
    other_data = cached_teacher_outputs(teacher, X[:10], cache_dir=tmp_path)
    changed = k.models.clone_model(model)
    other_teacher = cached_teacher_outputs(as_teacher(changed), X, cache_dir=tmp_path)
    assert len({first.path, other_data.path, other_teacher.path}) == 3


def test_cache_recovers_from_a_damaged_entry(model, tmp_path):
    teacher = as_teacher(model)
    entry = cached_teacher_outputs(teacher, X, cache_dir=tmp_path)
    expected = np.array(entry.arrays["output"])
    (Path(entry.path) / "output.npy").write_bytes(b"damaged")
    again = cached_teacher_outputs(teacher, X, cache_dir=tmp_path)
    assert not again.hit
    np.testing.assert_allclose(again.arrays["output"], expected)


def test_cache_reads_npy_rows(model, reference, tmp_path):
    np.save(tmp_path / "t.npy", reference)
    cached = cached_teacher_outputs(load_teacher(tmp_path / "t.npy"), X[:5],
                                    rows=np.array([4, 3, 2, 1, 0]), cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(cached.arrays["output"], reference[[4, 3, 2, 1, 0]])
