"""``convert``: a Keras model to a verified .tflite.

Its result goes on to the Micro stage (``edgedistill.micro.write_micro_bundle``)
and to the profile.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

import numpy as np

from edgedistill._fileio import check_output_dir, json_text, output_dir
from edgedistill._native_log import native_stderr_discarded
from edgedistill._tf import tensorflow
from edgedistill.convert import litert, modes
from edgedistill.convert.debug import DEBUG_SAMPLES, QuantizationDebugReport, debug_quantization
from edgedistill.data import Dataset, check_fits, load_dataset, load_inputs
from edgedistill.errors import CheckFailed, EdgeDistillError
from edgedistill.models import load_keras_model, output_units
from edgedistill.progress import Progress, SilentProgress

MODEL_FILE = "model.tflite"
RESULT_FILE = "conversion.json"


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """The converted model and how well it matches the Keras model on the test split.

    Attributes:
        agreement: share of test samples where the .tflite and the Keras model
            predict the same class (top-1).
        max_abs_diff, mean_abs_diff: the largest and the mean difference
            between their (dequantized) outputs.
        io_type: the .tflite's input and output type.
        calibration_source: where the representative dataset came from
            (None for the modes that need none).
        quantization: each op's int8 error on the first test samples, with
            remedies for the ops in trouble (``convert.debug``); int8 from a
            float model only.
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
    calibration_source: str | None
    seconds: dict
    quantization: QuantizationDebugReport | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ConversionResult:
        """The result back from ``to_dict()`` (a conversion.json)."""
        report = data.get("quantization")
        return cls(**{**data, "quantization": report and QuantizationDebugReport.from_dict(report)})


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
    from edgedistill.compress.qat import is_quantize_wrapped  # imports TensorFlow

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


def representative_set(data: Dataset, per_class: int, seed: int = 0) -> np.ndarray:
    """The representative dataset: ``per_class`` training samples of every class
    (all of a class with fewer), drawn with ``seed``, in training order.

    Drawing per class keeps a rare class's activation ranges in the
    calibration; a plain random draw can miss them.

    Example:
        >>> representative_set(load_dataset("digits"), 20).shape
        (200, 8, 8, 1)
    """
    if not (isinstance(per_class, int) and per_class >= 1):
        raise EdgeDistillError(f"calibration per class: a whole number from 1 up, got "
                               f"{per_class!r:.40}")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(rows, size=min(per_class, len(rows)), replace=False)
             for rows in (np.flatnonzero(data.y_train == c) for c in np.unique(data.y_train))]
    return data.x_train[np.sort(np.concatenate(picks))]


def _remedy(report: QuantizationDebugReport | None) -> str:
    """What to try, in a few words: the op-by-op finding when there is one."""
    if report is None or not report.flagged:
        return "try --qat when distilling, mode 16x8, or more calibration samples"
    worst = max(report.flagged, key=lambda row: row.rmse_over_scale)
    return (f"{len(report.flagged)} op(s) lose more than one int8 step, worst {worst.layer} "
            f"({worst.rmse_over_scale:.1f} steps); see the table of each op's error for "
            "measured remedies")


def _representative(data: Dataset, calibration, per_class: int,
                    seed: int) -> tuple[np.ndarray, str]:
    """The representative inputs and where they came from, in words."""
    if calibration is None:
        return (representative_set(data, per_class, seed),
                f"{per_class} per class from the training split")
    if isinstance(calibration, np.ndarray):
        return calibration.astype(np.float32), "given array"
    return load_inputs(calibration), str(calibration)


def convert(
    model: str | os.PathLike,
    data: str | os.PathLike | Dataset,
    out_dir: str | os.PathLike,
    *,
    mode: str = "int8",
    io_type: str | None = None,
    calibration_per_class: int = 50,
    calibration: str | os.PathLike | np.ndarray | None = None,
    max_accuracy_drop: float | None = None,
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
        out_dir: receives model.tflite and conversion.json.
        mode: ``int8`` (default), ``16x8``, ``float32``, ``float16`` or ``dynamic``.
        io_type: the model's input and output type: ``int8``, ``uint8`` or
            ``float32`` for int8; ``int16`` or ``float32`` for 16x8 (default:
            the mode's integer type).
        calibration_per_class: the representative dataset is this many
            training samples of every class (see ``representative_set``).
        calibration: the user's own representative inputs instead: an array,
            or an .npy / .npz file (see ``edgedistill.data.load_inputs``).
        max_accuracy_drop: fail, writing nothing, when the .tflite's test
            accuracy is more than this below the Keras model's (0.01 is one point).

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

    representative, calibration_source = _representative(data, calibration,
                                                         calibration_per_class, seed)
    if spec.needs_representative_data:
        check_fits(calibration_source, representative.shape[1:], None, keras_model.input_shape,
                   0, name)

    seconds = {}
    progress.stage("convert", f"{name} to {mode} TFLite ({io_type} I/O)")
    started = time.perf_counter()
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
    report = None
    from edgedistill.compress.qat import is_quantize_wrapped  # imports TensorFlow

    if mode == "int8" and not is_quantize_wrapped(keras_model):
        progress.stage("layers", f"int8 error of each op on {DEBUG_SAMPLES} test samples")
        started = time.perf_counter()
        try:
            report = debug_quantization(keras_model, representative,
                                        data.x_test[:DEBUG_SAMPLES],
                                        labels=data.y_test[:DEBUG_SAMPLES])
        except EdgeDistillError as e:  # the debugger's limits must not fail a good model
            progress.stage("layers", f"skipped: {e}")
        seconds["layers"] = time.perf_counter() - started
    if max_accuracy_drop is not None and keras_accuracy - tflite_accuracy > max_accuracy_drop:
        raise CheckFailed(
            f"{name}: {mode} TFLite accuracy {100 * tflite_accuracy:.2f}% is "
            f"{100 * (keras_accuracy - tflite_accuracy):.2f} points below the Keras model's "
            f"{100 * keras_accuracy:.2f}%, more than the {100 * max_accuracy_drop:g} allowed; "
            f"no model written ({_remedy(report)})", details=report)

    with output_dir(out_dir, force) as tmp:
        tflite_path = Path(tmp) / MODEL_FILE
        tflite_path.write_bytes(tflite_bytes)
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
            calibration_source=calibration_source if spec.needs_representative_data else None,
            seconds=seconds,
            quantization=report,
        )
        (Path(tmp) / RESULT_FILE).write_text(json_text(result.to_dict()))
    return result
