"""``convert``: a Keras model to a verified .tflite (and a TFLite Micro bundle)."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

import numpy as np

from edgedistill._fileio import check_output_dir, json_text, output_dir, relocated
from edgedistill._native_log import native_stderr_discarded
from edgedistill._tf import tensorflow
from edgedistill.compress.qat import is_quantize_wrapped
from edgedistill.convert import litert, modes
from edgedistill.data import Dataset, load_dataset
from edgedistill.errors import CheckFailed, EdgeDistillError
from edgedistill.models import load_keras_model, output_units
from edgedistill.progress import Progress, SilentProgress

MODEL_FILE = "model.tflite"
RESULT_FILE = "conversion.json"
MICRO_DIR = "micro"


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """The converted model and how well it matches the Keras model on the test split.

    Attributes:
        agreement: share of test samples where the .tflite and the Keras model
            predict the same class (top-1).
        max_abs_diff, mean_abs_diff: the largest and the mean difference
            between their (dequantized) outputs.
        io_type: the .tflite's input and output type.
        micro: the TFLite Micro bundle's summary, when one was written.
    """

    tflite_path: str
    mode: str
    io_type: str
    tflite_bytes: int
    keras_accuracy: float
    tflite_accuracy: float
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    test_samples: int
    calibration_samples: int
    seconds: dict
    micro: dict | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def convert_model(model, mode: str = "int8", representative: np.ndarray | None = None,
                  io_type: str | None = None) -> bytes:
    """Converts an in-memory tf_keras model (QAT-wrapped ones too) to .tflite bytes.

    Args:
        model: the tf_keras model.
        mode: a name from :mod:`edgedistill.convert.modes`.
        representative: calibration inputs (float32, model-shaped), needed by
            the full-integer modes.
        io_type: the model's input and output type (default: the mode's own,
            e.g. int8 for ``int8``); see ``ConversionMode.io_types``.

    Example:
        >>> tflite_bytes = convert_model(student, "int8", data.x_train[:200])
    """
    tf = tensorflow()
    spec = modes.get(mode)
    if mode == "16x8" and is_quantize_wrapped(model):
        raise EdgeDistillError(
            f"{model.name}: trained quantization-aware for int8, so it converts to int8 only "
            "(the converter has no 16x8 for its fake-quantization); convert a float model "
            "to 16x8, or this one with --mode int8")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    spec.configure(tf, converter)
    modes.set_io_type(tf, converter, spec.io_type(io_type))
    if spec.needs_representative_data:
        if representative is None or not len(representative):
            raise EdgeDistillError(f"mode {mode}: needs representative data for calibration")

        def samples():
            for row in representative:
                yield [row[None].astype(np.float32)]

        converter.representative_dataset = samples
    try:
        with native_stderr_discarded(), warnings.catch_warnings():
            # int8 inputs get their scale from calibration, not from user statistics.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return converter.convert()
    except Exception as e:  # The converter raises ConverterError and others with long logs.
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise EdgeDistillError(
            f"{model.name}: TFLite conversion ({mode}) failed: {first}"
        ) from None


def _micro_sample(tflite_bytes: bytes, data: Dataset) -> np.ndarray:
    """The first test sample in the model's input type, for the TFLM run check."""
    from edgedistill.tflite_file import parse_tflite

    model = parse_tflite(tflite_bytes)
    tensor = model.tensors[model.inputs[0]]
    sample = data.x_test[:1]
    if tensor.quantization is None:
        return sample.astype(tensor.dtype)
    q = tensor.quantization
    return litert.quantize(sample, np.dtype(tensor.dtype), q.scales[0], q.zero_points[0])


def _calibration_set(data: Dataset, count: int, seed: int) -> np.ndarray:
    """A seeded sample of the training split: the representative dataset."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(data.x_train), size=min(count, len(data.x_train)), replace=False)
    return data.x_train[np.sort(pick)]


def convert(
    model: str | os.PathLike,
    data: str | os.PathLike | Dataset,
    out_dir: str | os.PathLike,
    *,
    mode: str = "int8",
    io_type: str | None = None,
    calibration_samples: int = 500,
    max_accuracy_drop: float | None = None,
    micro: bool | None = None,
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> ConversionResult:
    """Converts a Keras model file and checks the .tflite against it with LiteRT.

    Args:
        model: a tf_keras model file (.keras/.h5), QAT-wrapped or not.
        data: ``"digits"``, ``"fashion-mnist[:DIR]"``, a ``.npz`` path or a Dataset;
            the representative set comes from its training split, the check
            from its test split.
        out_dir: receives model.tflite, conversion.json and (int8) micro/.
        mode: ``int8`` (default), ``16x8``, ``float32``, ``float16`` or ``dynamic``.
        io_type: the model's input and output type: ``int8``, ``uint8`` or
            ``float32`` for int8; ``int16`` or ``float32`` for 16x8 (default:
            the mode's integer type).
        calibration_samples: size of the representative dataset.
        max_accuracy_drop: fail, writing nothing, when the .tflite's test
            accuracy is more than this below the Keras model's (0.01 is one point).
        micro: write a TensorFlow Lite Micro bundle into ``out_dir/micro``;
            default: for the full-integer modes (int8, 16x8).

    Raises:
        CheckFailed: the accuracy dropped more than ``max_accuracy_drop``.

    Returns:
        A :class:`ConversionResult`.

    Example:
        >>> result = convert("runs/digits/student.keras", "digits", "runs/digits-int8")
        >>> result.agreement > 0.95
        True
    """
    progress = progress or SilentProgress()
    spec = modes.get(mode)
    io_type = spec.io_type(io_type)
    if max_accuracy_drop is not None and not (
            isinstance(max_accuracy_drop, int | float) and 0 <= max_accuracy_drop <= 1):
        raise EdgeDistillError(f"max accuracy drop: a fraction from 0 to 1 (0.01 is one "
                               f"point), got {max_accuracy_drop!r:.40}")
    check_output_dir(out_dir, force)
    if not isinstance(data, Dataset):
        data = load_dataset(data, seed=seed)
    keras_model = load_keras_model(model) if not hasattr(model, "predict") else model
    name = str(model) if not hasattr(model, "predict") else keras_model.name
    data.check_fits(keras_model.input_shape, output_units(keras_model, name), name)
    write_micro = spec.full_integer if micro is None else micro

    seconds = {}
    progress.stage("convert", f"{name} to {mode} TFLite ({io_type} I/O)")
    started = time.perf_counter()
    representative = _calibration_set(data, calibration_samples, seed)
    tflite_bytes = convert_model(
        keras_model, mode, representative if spec.needs_representative_data else None, io_type
    )
    seconds["convert"] = time.perf_counter() - started

    progress.stage("verify", f"LiteRT vs Keras on {len(data.x_test)} test samples")
    started = time.perf_counter()
    keras_out = keras_model.predict(data.x_test, batch_size=256, verbose=0)
    tflite_out = litert.predict(tflite_bytes, data.x_test)
    keras_pred, tflite_pred = keras_out.argmax(-1), tflite_out.argmax(-1)
    seconds["verify"] = time.perf_counter() - started
    keras_accuracy = float(np.mean(keras_pred == data.y_test))
    tflite_accuracy = float(np.mean(tflite_pred == data.y_test))
    if max_accuracy_drop is not None and keras_accuracy - tflite_accuracy > max_accuracy_drop:
        raise CheckFailed(
            f"{name}: {mode} TFLite accuracy {100 * tflite_accuracy:.2f}% is "
            f"{100 * (keras_accuracy - tflite_accuracy):.2f} points below the Keras model's "
            f"{100 * keras_accuracy:.2f}%, more than the {100 * max_accuracy_drop:g} allowed; "
            "no model written (try --qat when distilling, mode 16x8, or more calibration "
            "samples)")

    with output_dir(out_dir, force) as tmp:
        tflite_path = Path(tmp) / MODEL_FILE
        tflite_path.write_bytes(tflite_bytes)
        micro_summary = None
        if write_micro:
            from edgedistill.micro import write_micro_bundle

            progress.stage("micro", "TFLite Micro bundle, measuring the arena")
            started = time.perf_counter()
            bundle = write_micro_bundle(
                tflite_path, Path(tmp) / MICRO_DIR, sample_input=_micro_sample(tflite_bytes, data)
            )
            seconds["micro"] = time.perf_counter() - started
            micro_summary = relocated(bundle, tmp, Path(out_dir)).to_dict()
        result = ConversionResult(
            tflite_path=str(Path(out_dir) / MODEL_FILE),
            mode=mode,
            io_type=io_type,
            tflite_bytes=len(tflite_bytes),
            keras_accuracy=keras_accuracy,
            tflite_accuracy=tflite_accuracy,
            agreement=float(np.mean(keras_pred == tflite_pred)),
            max_abs_diff=float(np.max(np.abs(keras_out - tflite_out))),
            mean_abs_diff=float(np.mean(np.abs(keras_out - tflite_out))),
            test_samples=len(data.x_test),
            calibration_samples=len(representative) if spec.needs_representative_data else 0,
            seconds=seconds,
            micro=micro_summary,
        )
        (Path(tmp) / RESULT_FILE).write_text(json_text(result.to_dict()))
    return result
