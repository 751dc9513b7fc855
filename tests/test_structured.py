"""Channel pruning: exact on the kept channels, and a genuinely smaller .tflite."""

import numpy as np
import pytest

from edgedistill._tf import keras
from edgedistill.compress.structured import prune_channels
from edgedistill.errors import EdgeDistillError
from edgedistill.micro import measure_arena
from edgedistill.zoo import build

k = keras()
X = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)


def _with_trained_batchnorm(model, seed=1):
    """``model`` with random BatchNorm statistics, as training leaves them."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.random(gamma.shape) + 0.5, rng.random(beta.shape) - 0.5,
                               rng.random(mean.shape) - 0.5, rng.random(var.shape) + 0.5])
    return model


def _trained_like(name):
    """A zoo model with random weights and BatchNorm statistics."""
    return _with_trained_batchnorm(build(name, (8, 8, 1), 10))


def _with_removed_channels_zeroed(model, report):
    """The original model whose removed channels output exactly zero."""
    zeroed = k.models.clone_model(model)
    zeroed.set_weights(model.get_weights())
    layers = zeroed.layers
    for entry in report.layers:
        removed = sorted(set(range(entry["channels_before"])) - set(entry["kept"]))
        index = [layer.name for layer in layers].index(entry["layer"])
        producer, following = layers[index], layers[index + 1]
        kernel, *bias = producer.get_weights()
        kernel[..., removed] = 0
        producer.set_weights([kernel, *[np.where(np.isin(np.arange(b.size), removed), 0, b)
                                        for b in bias]])
        if isinstance(following, k.layers.BatchNormalization):
            gamma, beta, mean, var = following.get_weights()
            gamma[removed], beta[removed] = 0, 0
            following.set_weights([gamma, beta, mean, var])
    return zeroed


@pytest.mark.parametrize("name", ["student-cnn", "student-cnn3", "teacher-cnn", "tiny-cnn",
                                  "student-mlp"])
def test_the_smaller_model_computes_what_the_original_does_without_the_removed_channels(name):
    model = _trained_like(name)
    smaller, report = prune_channels(model, 0.5)
    assert report.params_after < report.params_before
    for entry in report.layers:
        assert entry["channels_after"] == round(entry["channels_before"] / 2)
        assert smaller.get_layer(entry["layer"]).output_shape[-1] == entry["channels_after"]
    np.testing.assert_allclose(smaller(X), _with_removed_channels_zeroed(model, report)(X),
                               rtol=1e-5, atol=1e-5)


def test_the_kept_channels_are_the_strongest():
    model = _trained_like("student-cnn")
    _, report = prune_channels(model, 0.5, layers=("block1",))
    kernel = model.get_layer("block1").get_weights()[0]
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0)
    assert set(report.layers[0]["kept"]) == set(np.argsort(norms)[-4:])
    assert [entry["layer"] for entry in report.layers] == ["block1"]


def test_fewer_macs_bytes_and_arena_in_the_tflite(tmp_path):
    from edgedistill import targets
    from edgedistill.convert import convert
    from edgedistill.data import load_dataset
    from edgedistill.profile import profile_model

    digits = load_dataset("digits")
    model = _trained_like("teacher-cnn")
    smaller, _ = prune_channels(model, 0.5)
    figures = {}
    for label, m in (("original", model), ("smaller", smaller)):
        m.save(tmp_path / f"{label}.h5")
        converted = convert(tmp_path / f"{label}.h5", digits, tmp_path / label)
        macs = profile_model(converted.tflite_path, targets.list_targets()[:1]).totals.macs
        figures[label] = (macs, converted.tflite_bytes,
                          measure_arena(converted.tflite_path).measured_bytes)
    (macs, size, arena), (macs2, size2, arena2) = figures["original"], figures["smaller"]
    # Halving every hidden layer's outputs halves the first layer's MACs and
    # quarters those of layers that lose half their inputs too.
    assert macs2 < 0.35 * macs and size2 < 0.35 * size and arena2 < arena


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(fraction=1.0), "must lie in (0, 1)"),
    (dict(fraction=0.5, layers=("logits",)), "'logits' is not a hidden Conv or Dense"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(EdgeDistillError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prune_channels(_trained_like("student-cnn"), **kwargs)


def _conv_bn(x, filters, name, **kwargs):
    x = k.layers.Conv2D(filters, 3, padding="same", name=name, **kwargs)(x)
    return k.layers.BatchNormalization(name=f"{name}_bn")(x)


def _residual(depthwise=False):
    """A small ResNet: a stem, two residual blocks (one with a DepthwiseConv2D), a head."""
    inputs = k.Input((8, 8, 1))
    x = k.layers.ReLU()(_conv_bn(inputs, 8, "stem"))
    y = k.layers.ReLU()(_conv_bn(x, 8, "block1_a"))
    if depthwise:
        y = k.layers.DepthwiseConv2D(3, padding="same", name="block1_dw")(y)
    x = k.layers.ReLU()(k.layers.Add(name="skip1")([x, _conv_bn(y, 8, "block1_b")]))
    y = k.layers.ReLU()(_conv_bn(x, 8, "block2_a"))
    x = k.layers.Add(name="skip2")([x, _conv_bn(y, 8, "block2_b")])
    x = k.layers.Dense(12, name="embedding")(k.layers.GlobalAveragePooling2D()(x))
    model = k.Model(inputs, k.layers.Dense(10, name="logits")(k.layers.ReLU()(x)))
    return _with_trained_batchnorm(model, seed=2)


@pytest.mark.parametrize("depthwise", [False, True])
def test_residual_adds_keep_the_same_channels_on_every_branch(depthwise):
    model = _residual(depthwise)
    smaller, report = prune_channels(model, 0.5)
    kept = {entry["layer"]: entry["kept"] for entry in report.layers}
    # The stem and both blocks' second convs meet at the adds: one set of channels.
    assert kept["stem"] == kept["block1_b"] == kept["block2_b"]
    assert set(kept) == {"stem", "block1_a", "block1_b", "block2_a", "block2_b", "embedding"}
    assert smaller.get_layer("skip2").output_shape[-1] == 4
    np.testing.assert_allclose(smaller(X), _with_removed_channels_zeroed(model, report)(X),
                               rtol=1e-5, atol=1e-5)


def test_branches_it_cannot_slice_are_named():
    inputs = k.Input((8, 8, 1))
    x = k.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    y = k.layers.Conv2D(4, 3, padding="same", name="b")(x)
    out = k.layers.Dense(10)(k.layers.Flatten()(k.layers.Concatenate(name="join")([x, y])))
    with pytest.raises(EdgeDistillError, match="through 'join' \\(Concatenate\\)"):
        prune_channels(k.Model(inputs, out), 0.5)
    with pytest.raises(EdgeDistillError, match="block1_b, block2_b, stem add up in a residual"):
        prune_channels(_residual(), 0.5, layers=("stem",))
    # Channels an identity shortcut carries from the input stay whole.
    inputs = k.Input((8, 8, 4))
    x = k.layers.Add(name="skip")([inputs, k.layers.Conv2D(4, 3, padding="same", name="a")(
        inputs)])
    model = k.Model(inputs, k.layers.Dense(3)(k.layers.Flatten()(x)))
    with pytest.raises(EdgeDistillError, match="'a' is not a hidden Conv or Dense"):
        prune_channels(model, 0.5, layers=("a",))
    assert prune_channels(model, 0.5)[1].layers == ()


def test_distill_prunes_channels_then_distills_the_smaller_student(tmp_path):
    from edgedistill.data import load_dataset
    from edgedistill.distill import distill
    from edgedistill.models import load_keras_model

    digits = load_dataset("digits")
    trained = _trained_like("student-cnn")
    trained.save(tmp_path / "student.h5")
    teacher = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    teacher.save(tmp_path / "teacher.h5")
    result = distill(str(tmp_path / "teacher.h5"), str(tmp_path / "student.h5"), digits,
                     tmp_path / "run", epochs=2, prune_channels=0.5,
                     cache_dir=tmp_path / "cache")
    assert result.student_params == result.channel_pruning["params_after"] < trained.count_params()
    for path in (result.student_path, result.scratch_path):
        saved = load_keras_model(path)
        assert saved.get_layer("block2").output_shape[-1] == 8
