"""Teachers from anywhere: tf_keras, Keras 3, SavedModel, .tflite, ONNX, precomputed .npy.

A :class:`Teacher` is a frozen model seen through one small interface: its
outputs on a batch inside the training graph (:meth:`Teacher.outputs`), on
NumPy arrays in batches (:meth:`Teacher.predict`), and a digest of its
content that keys the cache of its outputs. :class:`EnsembleTeacher` averages
several teachers' soft targets.

A teacher whose outputs sum to 1 on every row is taken to give probabilities;
the Distiller then uses their logarithm as logits. Keras teachers tell by
their last activation; others are probed once on random inputs.

Example:
    >>> teacher = load_teacher("teacher.tflite")
    >>> teacher.predict(x_test[:8])["output"].shape
    (8, 10)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgedistill._tf import keras, tensorflow
from edgedistill.errors import EdgeDistillError
from edgedistill.models import KERAS_SUFFIXES, load_keras_model, outputs_probabilities

OUTPUT = "output"
# Loading a malformed .tflite can crash LiteRT natively; a child tries it first.
_TFLITE_CHECK_TIMEOUT_S = 60


class Teacher:
    """A frozen model whose outputs a student learns from.

    Attributes:
        name: the file or model, for messages.
        kind: ``"keras"``, ``"keras3"``, ``"saved_model"``, ``"tflite"``,
            ``"onnx"``, ``"npy"`` or ``"ensemble"``.
        output_shape: ``(None, classes)``.
        input_shape: ``(None, ...)`` when known, else None.
        gives_probabilities: outputs are softmax probabilities, not logits.
        digest: sha256 of the teacher's content; keys its cached outputs.
        runs_in_graph: False only for precomputed outputs, which cannot
            follow new (augmented) inputs.
    """

    name: str
    kind: str
    output_shape: tuple
    input_shape: tuple | None = None
    gives_probabilities: bool = False
    digest: str
    runs_in_graph = True

    def outputs(self, x, layer_names: Sequence[str] = ()) -> dict:
        """``{"output": (batch, classes), layer: ...}`` in inference mode, inside tf.function."""
        raise NotImplementedError

    def layer_output_shape(self, name: str) -> tuple:
        raise EdgeDistillError(
            f"{self.name}: a {self.kind} teacher exposes no layers; feature and relation losses "
            "on named layers need a Keras teacher"
        )

    def predict(self, x: np.ndarray, batch_size: int = 256,
                layer_names: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Outputs on a NumPy array, computed ``batch_size`` rows at a time."""
        tf = tensorflow()
        layer_names = tuple(layer_names)
        run = tf.function(lambda batch: self.outputs(batch, layer_names), reduce_retracing=True)
        parts = [
            {k: v.numpy() for k, v in run(tf.constant(x[i:i + batch_size])).items()}
            for i in range(0, len(x), batch_size)
        ]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class KerasTeacher(Teacher):
    """A tf_keras model; named layers' outputs are available to feature losses."""

    kind = "keras"

    def __init__(self, model, name: str | None = None, digest: str | None = None):
        self.model = model
        model.trainable = False
        self.name = name or model.name
        self.output_shape = _classes_shape(model.output_shape, self.name)
        self.input_shape = tuple(model.input_shape) if not isinstance(
            model.input_shape, list) else None
        self.gives_probabilities = outputs_probabilities(model)
        self.digest = digest or _weights_digest(model.get_weights(), model.to_json())
        self._extractors: dict[tuple, object] = {}

    def outputs(self, x, layer_names=()):
        layer_names = tuple(layer_names)
        if not layer_names:
            return {OUTPUT: self.model(x, training=False)}
        return self._extractor(layer_names)(x, training=False)

    def _extractor(self, layer_names: tuple):
        if layer_names not in self._extractors:
            outputs = {OUTPUT: self.model.outputs[0]}
            outputs.update({name: self._layer(name).output for name in layer_names})
            self._extractors[layer_names] = keras().Model(self.model.inputs, outputs)
        return self._extractors[layer_names]

    def _layer(self, name: str):
        try:
            return self.model.get_layer(name)
        except ValueError:
            some = ", ".join(layer.name for layer in self.model.layers[:8])
            raise EdgeDistillError(
                f"{self.name}: has no layer {name!r}; its layers include {some}") from None

    def layer_output_shape(self, name: str) -> tuple:
        return tuple(self._layer(name).output_shape)


class Keras3Teacher(Teacher):
    """A Keras 3 model (TensorFlow backend), run inside the tf_keras training graph."""

    kind = "keras3"

    def __init__(self, model, name: str | None = None, digest: str | None = None):
        self.model = model
        model.trainable = False
        self.name = name or model.name
        self.output_shape = _classes_shape(tuple(model.outputs[0].shape), self.name)
        self.input_shape = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else None
        activation = getattr(model.layers[-1], "activation", None)
        self.gives_probabilities = (type(model.layers[-1]).__name__ == "Softmax"
                                    or getattr(activation, "__name__", "") == "softmax")
        self.digest = digest or _weights_digest(model.get_weights(), model.to_json())
        self._extractors: dict[tuple, object] = {}

    def outputs(self, x, layer_names=()):
        layer_names = tuple(layer_names)
        if not layer_names:
            return {OUTPUT: self.model(x, training=False)}
        return dict(self._extractor(layer_names)(x, training=False))

    def _extractor(self, layer_names: tuple):
        import keras as keras3

        if layer_names not in self._extractors:
            outputs = {OUTPUT: self.model.outputs[0]}
            outputs.update({name: self._layer(name).output for name in layer_names})
            self._extractors[layer_names] = keras3.Model(self.model.inputs, outputs)
        return self._extractors[layer_names]

    def _layer(self, name: str):
        try:
            return self.model.get_layer(name)
        except ValueError:
            some = ", ".join(layer.name for layer in self.model.layers[:8])
            raise EdgeDistillError(
                f"{self.name}: has no layer {name!r}; its layers include {some}") from None

    def layer_output_shape(self, name: str) -> tuple:
        return tuple(self._layer(name).output.shape)


class SavedModelTeacher(Teacher):
    """A TensorFlow SavedModel directory, called through its serving signature."""

    kind = "saved_model"

    def __init__(self, path: Path):
        tf = tensorflow()
        self.name = str(path)
        self.digest = _file_digest(path)
        try:
            self._loaded = tf.saved_model.load(str(path))
            signature = self._loaded.signatures["serving_default"]
        except Exception as e:  # TensorFlow raises many types for a damaged SavedModel
            raise EdgeDistillError(
                f"{path}: cannot load as a SavedModel ({_first_line(e)}); export it with "
                "tf.saved_model.save or model.export") from None
        inputs = signature.structured_input_signature[1]
        outputs = signature.structured_outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeDistillError(
                f"{path}: its serving signature has {len(inputs)} inputs and {len(outputs)} "
                "outputs; a teacher has one of each")
        (self._input_name, spec), = inputs.items()
        (self._output_name, out_spec), = outputs.items()
        self._signature = signature
        self.input_shape = tuple(spec.shape)
        self.output_shape = _classes_shape(tuple(out_spec.shape), self.name)
        self.gives_probabilities = _probe_probabilities(self)

    def outputs(self, x, layer_names=()):
        _no_layers(self, layer_names)
        tf = tensorflow()
        result = self._signature(**{self._input_name: tf.cast(x, tf.float32)})
        return {OUTPUT: tf.cast(result[self._output_name], tf.float32)}


class _NumpyTeacher(Teacher):
    """A teacher run by a NumPy runtime; in the graph through ``tf.numpy_function``."""

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def outputs(self, x, layer_names=()):
        _no_layers(self, layer_names)
        tf = tensorflow()
        out = tf.numpy_function(lambda batch: self._run(batch).astype(np.float32),
                                [tf.cast(x, tf.float32)], tf.float32, stateful=False)
        out.set_shape((None, self.output_shape[-1]))
        return {OUTPUT: out}

    def predict(self, x, batch_size=256, layer_names=()):
        _no_layers(self, layer_names)
        parts = [self._run(np.asarray(x[i:i + batch_size], np.float32))
                 for i in range(0, len(x), batch_size)]
        return {OUTPUT: np.concatenate(parts).astype(np.float32)}


class TFLiteTeacher(_NumpyTeacher):
    """A .tflite model run with LiteRT, float or quantized (inputs quantized, outputs not)."""

    kind = "tflite"

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        from edgedistill.tflite_file import read_tflite

        self.name = str(path)
        try:
            parsed = read_tflite(path)
        except EdgeDistillError:
            raise
        except Exception as e:  # the flatbuffer library raises several types on bad offsets
            raise EdgeDistillError(f"{path}: not a readable TFLite model ({_first_line(e)})") \
                from None
        if len(parsed.inputs) != 1 or len(parsed.outputs) != 1:
            raise EdgeDistillError(
                f"{path}: has {len(parsed.inputs)} inputs and {len(parsed.outputs)} outputs; "
                "a teacher has one of each")
        _check_tflite_in_child(path)
        self.digest = _file_digest(path)
        self._interpreter = Interpreter(model_path=str(path))
        self._lock = threading.Lock()  # an interpreter runs one batch at a time
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.input_shape = (None, *map(int, self._input["shape"][1:]))
        self.output_shape = _classes_shape((None, *map(int, self._output["shape"][1:])),
                                           self.name)
        self._batch = None
        self.gives_probabilities = _probe_probabilities(self)

    def _run(self, x):
        with self._lock:
            if self._batch != len(x):
                self._interpreter.resize_tensor_input(self._input["index"], [len(x), *x.shape[1:]])
                self._interpreter.allocate_tensors()
                self._batch = len(x)
            self._interpreter.set_tensor(self._input["index"], _quantize(x, self._input))
            self._interpreter.invoke()
            return _dequantize(self._interpreter.get_tensor(self._output["index"]),
                               self._output)


class OnnxTeacher(_NumpyTeacher):
    """An ONNX model run with onnxruntime (``pip install edgedistill[onnx]``)."""

    kind = "onnx"

    def __init__(self, path: Path):
        try:
            import onnxruntime
        except ImportError:
            raise EdgeDistillError(
                f"{path}: ONNX teachers need onnxruntime; pip install 'edgedistill[onnx]'"
            ) from None
        self.name = str(path)
        self.digest = _file_digest(path)
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for damaged models
            raise EdgeDistillError(f"{path}: not a loadable ONNX model ({_first_line(e)})") \
                from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeDistillError(
                f"{path}: has {len(inputs)} inputs and {len(outputs)} outputs; a teacher has "
                "one of each")
        self._input_name = inputs[0].name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape)
        self.output_shape = _classes_shape(
            tuple(d if isinstance(d, int) else None for d in outputs[0].shape), self.name)
        self._lock = threading.Lock()
        self.gives_probabilities = _probe_probabilities(self)

    def _run(self, x):
        with self._lock:
            try:
                return self._session.run(None, {self._input_name: x})[0]
            except Exception as e:  # onnxruntime reports shape errors as its own types
                raise EdgeDistillError(f"{self.name}: onnxruntime failed ({_first_line(e)})") \
                    from None


class NpyTeacher(Teacher):
    """Precomputed teacher outputs: one row per row of the user's training array."""

    kind = "npy"
    runs_in_graph = False

    def __init__(self, path: Path):
        self.name = str(path)
        try:
            self._array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as e:  # NumPy's header parser raises SyntaxError and others too
            raise EdgeDistillError(f"{path}: not a readable .npy file ({_first_line(e)})") \
                from None
        a = self._array
        if a.ndim != 2 or a.shape[1] < 2 or not np.issubdtype(a.dtype, np.floating):
            raise EdgeDistillError(
                f"{path}: holds {a.dtype} {a.shape}; precomputed outputs are a 2-D float array, "
                "one row of class scores per training sample")
        if not np.isfinite(a).all():
            raise EdgeDistillError(f"{path}: holds NaN or infinite values")
        self.output_shape = (None, int(a.shape[1]))
        sums = np.asarray(a[:64], np.float64).sum(axis=1)
        self.gives_probabilities = bool(np.all(a[:64] >= 0) and np.allclose(sums, 1, atol=1e-3))
        self.digest = _file_digest(path)

    def outputs(self, x, layer_names=()):
        raise EdgeDistillError(
            f"{self.name}: precomputed outputs cannot follow new or augmented inputs; drop "
            "--augment or give a teacher model")

    def predict(self, x, batch_size=256, layer_names=()):
        return self.outputs(x)

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """The outputs of the training rows ``indices``."""
        indices = np.asarray(indices)
        if len(indices) and int(indices.max()) >= len(self._array):
            raise EdgeDistillError(
                f"{self.name}: has {len(self._array)} rows but the training data needs row "
                f"{int(indices.max())}; give one row per training sample, in the data's order")
        return np.asarray(self._array[indices], np.float32)


def ensemble_weights(weights: Sequence[float] | None, teachers: int) -> list[float]:
    """The normalised weights of an ensemble of ``teachers``: equal when ``weights`` is None.

    Raises:
        EdgeDistillError: not one weight per teacher, a weight that is not a
            finite number >= 0, or all weights 0.

    Example:
        >>> ensemble_weights([1, 3], 2)
        [0.25, 0.75]
    """
    if weights is None:
        return [1.0 / teachers] * teachers
    if len(weights) != teachers:
        raise EdgeDistillError(
            f"teacher weights: {len(weights)} weights for {teachers} teachers; give one per "
            "teacher, or none for equal weights")
    try:
        weights = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise EdgeDistillError(f"teacher weights: must be numbers, got {weights!r:.60}") from None
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise EdgeDistillError(f"teacher weights: must be finite, >= 0, not all 0: {weights}")
    return [w / sum(weights) for w in weights]


class EnsembleTeacher(Teacher):
    """Several teachers whose soft targets are averaged, optionally weighted.

    The output is ``log(sum_i w_i * softmax(teacher_i))``: log-probabilities of
    the averaged distribution, which serve as the ensemble's logits.

    Args:
        teachers: two or more teachers with the same output shape.
        weights: one non-negative weight per teacher (default equal); normalised.
    """

    kind = "ensemble"

    def __init__(self, teachers: Sequence[Teacher], weights: Sequence[float] | None = None):
        self.members = [as_teacher(t) for t in teachers]
        if len(self.members) < 2:
            raise EdgeDistillError("ensemble: give two or more teachers")
        self.weights = ensemble_weights(weights, len(self.members))
        shapes = {tuple(m.output_shape[1:]) for m in self.members}
        if len(shapes) != 1:
            raise EdgeDistillError(
                f"ensemble: teachers' output shapes differ ({sorted(shapes)}); all must predict "
                "the same classes")
        self.name = " + ".join(m.name for m in self.members)
        self.output_shape = self.members[0].output_shape
        self.input_shape = next((m.input_shape for m in self.members if m.input_shape), None)
        self.runs_in_graph = all(m.runs_in_graph for m in self.members)
        self.digest = hashlib.sha256(json.dumps(
            [[m.digest for m in self.members], self.weights]).encode()).hexdigest()

    def outputs(self, x, layer_names=()):
        _no_layers(self, layer_names)
        tf = tensorflow()
        mixed = tf.add_n([
            w * _probabilities(m.outputs(x)[OUTPUT], m.gives_probabilities, tf)
            for w, m in zip(self.weights, self.members, strict=True)
        ])
        return {OUTPUT: tf.math.log(tf.maximum(mixed, 1e-12))}

    def combine(self, member_outputs: Sequence[np.ndarray]) -> np.ndarray:
        """The ensemble's output from its members' outputs, in NumPy."""
        mixed = sum(
            w * _probabilities_np(out, m.gives_probabilities)
            for w, m, out in zip(self.weights, self.members, member_outputs, strict=True)
        )
        return np.log(np.maximum(mixed, 1e-12)).astype(np.float32)

    def predict(self, x, batch_size=256, layer_names=()):
        _no_layers(self, layer_names)
        return {OUTPUT: self.combine([m.predict(x, batch_size)[OUTPUT] for m in self.members])}


def as_teacher(obj) -> Teacher:
    """A :class:`Teacher` for a Teacher, a tf_keras model or a Keras 3 model."""
    if isinstance(obj, Teacher):
        return obj
    if isinstance(obj, keras().Model):
        return KerasTeacher(obj)
    if type(obj).__module__.startswith("keras") and hasattr(obj, "outputs"):
        return Keras3Teacher(obj)
    raise EdgeDistillError(f"cannot use a {type(obj).__name__} as a teacher; give a Keras model "
                           "or a model file")


def load_teacher(spec: str | os.PathLike) -> Teacher:
    """Loads a teacher from a file or directory, by what it is.

    ``.keras``/``.h5``: tf_keras, else (``.keras``) Keras 3; a directory with
    ``saved_model.pb``: SavedModel; ``.tflite``: LiteRT; ``.onnx``: onnxruntime;
    ``.npy``: precomputed outputs for the training rows.

    Raises:
        EdgeDistillError: a missing, damaged or unsuitable file, in one line.
    """
    path = Path(spec)
    suffix = path.suffix.lower()
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return SavedModelTeacher(path)
        raise EdgeDistillError(f"{path}: a directory without saved_model.pb; give a SavedModel "
                               "directory or a model file")
    if not path.is_file():
        raise EdgeDistillError(
            f"{path}: no such teacher; give a .keras/.h5, .tflite, .onnx or .npy file, a "
            "SavedModel directory or a zoo name")
    if suffix in KERAS_SUFFIXES:
        return _load_keras(path)
    loaders = {".tflite": TFLiteTeacher, ".onnx": OnnxTeacher, ".npy": NpyTeacher}
    if suffix not in loaders:
        raise EdgeDistillError(
            f"{path}: unknown teacher format {suffix or '(no suffix)'}; give a .keras/.h5, "
            ".tflite, .onnx or .npy file or a SavedModel directory")
    return loaders[suffix](path)


def _load_keras(path: Path) -> Teacher:
    try:
        return KerasTeacher(load_keras_model(path), name=str(path), digest=_file_digest(path))
    except EdgeDistillError as tf_keras_error:
        if path.suffix.lower() != ".keras":
            raise
        try:
            import keras as keras3

            model = keras3.saving.load_model(path, compile=False)
        except Exception:  # Keras 3 raises many types for a foreign or damaged file
            raise tf_keras_error from None
        return Keras3Teacher(model, name=str(path), digest=_file_digest(path))


def _classes_shape(shape, name: str) -> tuple:
    if isinstance(shape, list) or len(shape) != 2 or not shape[-1] or shape[-1] < 2:
        raise EdgeDistillError(
            f"{name}: output shape {shape} is not (batch, classes); a teacher is a single-output "
            "classifier")
    return (None, int(shape[-1]))


def _no_layers(teacher: Teacher, layer_names) -> None:
    if layer_names:
        teacher.layer_output_shape(layer_names[0])


def _probabilities(outputs, gives_probabilities: bool, tf):
    outputs = tf.cast(outputs, tf.float32)
    return outputs if gives_probabilities else tf.nn.softmax(outputs, axis=-1)


def _probabilities_np(outputs: np.ndarray, gives_probabilities: bool) -> np.ndarray:
    outputs = np.asarray(outputs, np.float64)
    if gives_probabilities:
        return outputs
    e = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _probe_probabilities(teacher: _NumpyTeacher | SavedModelTeacher) -> bool:
    """True when outputs on random inputs are non-negative rows summing to 1."""
    shape = teacher.input_shape
    if shape is None or any(d is None for d in shape[1:]):
        return False
    x = np.random.default_rng(0).random((4, *shape[1:])).astype(np.float32)
    out = np.asarray(teacher.predict(x)[OUTPUT], np.float64)
    if not np.isfinite(out).all():
        raise EdgeDistillError(f"{teacher.name}: gives NaN or infinite outputs on random inputs")
    return bool(np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3))


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(detail["dtype"], np.floating):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


_TFLITE_CHILD = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
detail = interpreter.get_input_details()[0]
interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
"""


def _check_tflite_in_child(path: Path) -> None:
    """Loads and runs the model once in a child, where a native crash harms nothing."""
    try:
        done = subprocess.run([sys.executable, "-c", _TFLITE_CHILD, str(path)],
                              capture_output=True, text=True,
                              timeout=_TFLITE_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgeDistillError(f"{path}: LiteRT did not finish running it in "
                               f"{_TFLITE_CHECK_TIMEOUT_S} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise EdgeDistillError(f"{path}: LiteRT cannot run it ({last[:160]})")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        with open(file, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _weights_digest(weights, architecture: str) -> str:
    digest = hashlib.sha256(architecture.encode())
    for w in weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:160]
