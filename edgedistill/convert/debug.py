"""Per-op int8 quantization error, with measured remedies (TFLite's QuantizationDebugger).

The debugger runs each quantized op beside its float twin on the same inputs,
so a row is that op's own error: rmse/scale, the root-mean-square error in int8
steps. Ideal rounding gives 1/sqrt(12) = 0.29 for any op, so one threshold fits all.

Example:
    >>> report = debug_quantization(student, x_train[:500], x_test[:100], labels=y_test[:100])
    >>> [row.layer for row in report.flagged]
    ['logits']
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import re
import time
import warnings

import numpy as np

from edgedistill._native_log import native_stderr_discarded
from edgedistill._tf import tensorflow
from edgedistill.convert import litert, modes
from edgedistill.errors import EdgeDistillError
from edgedistill.tflite_file import parse_tflite

# On digits, the requantizing ops of 16 healthy models (9 architectures, 1 to 6
# epochs, 50 to 500 calibration samples) measured 0.79 at most; ops in trouble 1.7
# (a wide-range channel; top-1 agreement 98.9%) to 16 (agreement 12%), or 1.1 to 40
# when clipped. No median-relative clause: it would pass a model whose every op clips.
FLAG_RMSE_OVER_SCALE = 1.0
CRITERION = (f"rmse/scale above {FLAG_RMSE_OVER_SCALE:g}: the op's error exceeds one int8 step "
             "(ideal rounding gives 0.29)")
# Ops that only move int8 values (MAX_POOL_2D, RESHAPE) measure 1e-5, the rest 0.18 up.
_PASSTHROUGH = 0.01
# Healthy digits CNNs calibrated on 10 to 20 samples: 4 of 6 had ops flagged (1.1 to 6.4),
# as ranges the calibration never saw clip; on 50 to 500 samples, none.
SMALL_CALIBRATION = 100
# Real inputs beyond the calibration inputs' range are clipped at the model's
# input; a few outliers are normal, this share is not.
UNCOVERED_INPUTS = 0.01
# What `convert` measures each op on: the first test samples (the ops' errors
# settle well before; the debugger's own cost is the calibration conversion).
DEBUG_SAMPLES = 100


@dataclasses.dataclass(frozen=True)
class LayerError:
    """One quantized op's output error on the debug samples, int8 against float.

    Attributes:
        op: the TFLite op kind, e.g. ``CONV_2D``.
        layer: the Keras layers it came from, ``+``-joined when fused.
        tensor: its output tensor, as selective quantization names it.
        rmse_over_scale: the root-mean-square error in int8 steps (``scale``);
            mean and max errors are in the output's own units.
    """

    op: str
    layer: str
    tensor: str
    scale: float
    rmse_over_scale: float
    mean_error: float
    max_abs_error: float
    num_elements: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class QuantizationDebugReport:
    """Every quantized op's error, the ones flagged, and what to do about them.

    Attributes:
        rows: one per quantized op, in execution order.
        flagged: the rows that meet ``criterion``; ``remedies`` has one line each.
        accuracy_against: top-1 accuracies on the debug samples are against
            ``"labels"``, or the ``"float model"``'s predictions.
        selective_accuracy: one per flagged row: that op, and the ops that set
            its inputs' ranges, kept float (selective quantization).
        accuracy_16x8: with int16 activations; None when nothing is flagged
            or 16x8 cannot convert the model.
    """

    rows: tuple[LayerError, ...]
    flagged: tuple[LayerError, ...]
    remedies: tuple[str, ...]
    criterion: str
    debug_samples: int
    calibration_samples: int
    accuracy_against: str
    float_accuracy: float
    int8_accuracy: float
    selective_accuracy: tuple[float, ...]
    accuracy_16x8: float | None
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> QuantizationDebugReport:
        """The report back from ``to_dict()``."""
        return cls(**{**data, "rows": tuple(LayerError(**r) for r in data["rows"]),
                      "flagged": tuple(LayerError(**r) for r in data["flagged"]),
                      "remedies": tuple(data["remedies"]),
                      "selective_accuracy": tuple(data["selective_accuracy"])})


def debug_quantization(model, representative: np.ndarray, debug_samples: np.ndarray, *,
                       labels: np.ndarray | None = None,
                       mode: str = "int8") -> QuantizationDebugReport:
    """Each op's int8 error; for ops flagged by ``CRITERION``, remedies with measured accuracy.

    Measured: the op and its inputs' range-setters kept float (about 30 ms each);
    16x8 (one more conversion, only when something is flagged). Suggested too:
    more calibration samples (under ``SMALL_CALIBRATION``); quantization-aware training.

    Args:
        model: an in-memory float tf_keras classifier.
        representative, debug_samples: calibration inputs, and inputs to measure on
            (about 100 suffice); float32, model-shaped.
        labels: of ``debug_samples``; without them, accuracy is agreement with the float model.
        mode: ``int8`` only: TFLite's debugger quantizes everything to int8.

    Raises:
        EdgeDistillError: another mode; a QAT-wrapped model (the debugger finds no op
            to verify; ``is_quantize_wrapped`` tells); or the debugger failed.

    Example:
        >>> report = debug_quantization(student, representative, x_test[:100], labels=y_test[:100])
        >>> report.int8_accuracy, report.selective_accuracy, report.accuracy_16x8
        (0.06, (0.92,), 0.79)
    """
    from edgedistill.compress.qat import is_quantize_wrapped  # imports TensorFlow

    started = time.perf_counter()
    modes.get(mode)  # An unknown name gets the usual message.
    if mode != "int8":
        raise EdgeDistillError(f"{model.name}: quantization debugging measures int8 only, not "
                               f"{mode} (TFLite's debugger quantizes to int8); use mode int8")
    if is_quantize_wrapped(model):
        raise EdgeDistillError(
            f"{model.name}: trained quantization-aware, so its int8 ranges come from training "
            "and TFLite's quantization debugger cannot measure it; debug the float model "
            "before --qat, or check this one with --max-drop")
    if not len(representative) or not len(debug_samples):
        raise EdgeDistillError(f"{model.name}: quantization debugging needs samples; got none")
    tf = tensorflow()
    float_out = np.asarray(model(debug_samples, training=False))
    reference = float_out.argmax(-1) if labels is None else np.asarray(labels)
    float_accuracy = float(np.mean(float_out.argmax(-1) == reference))

    def accuracy(tflite: bytes) -> float:
        return float(np.mean(litert.predict(tflite, debug_samples).argmax(-1) == reference))

    with native_stderr_discarded(), warnings.catch_warnings():
        # The debugger runs TF's deprecated interpreter and calibrates inputs: not the user's doing.
        warnings.filterwarnings("ignore", message="(?s).*tf.lite.Interpreter is deprecated")
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        debugger = _run_debugger(tf, model, representative, debug_samples)
        rows = _rows(debugger, model)
        flagged = tuple(row for row in rows if row.rmse_over_scale > FLAG_RMSE_OVER_SCALE)
        int8_accuracy = accuracy(debugger.get_nondebug_quantized_model())
        kept = [_kept_float(parse_tflite(debugger.calibrated_model), row, rows) for row in flagged]
        selective = []
        for keep in kept:
            if len(keep) == len(rows):  # The debugger refuses a model with no quantized op.
                selective.append(float_accuracy)
                continue
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=[row.tensor for row in keep])
            selective.append(accuracy(debugger.get_nondebug_quantized_model()))
    accuracy_16x8 = None
    if flagged:
        from edgedistill.convert.run import convert_model  # run imports this module

        with contextlib.suppress(EdgeDistillError):  # Some ops have no 16x8 kernel.
            accuracy_16x8 = accuracy(convert_model(model, "16x8", representative))
    what = "accuracy" if labels is not None else "agreement with the float model"
    remedies = tuple(
        f"{row.layer} ({row.op}): off by {row.rmse_over_scale:.2f} int8 steps (rms); {what} on "
        f"the {len(debug_samples)} debug samples {int8_accuracy:.1%} all-int8. Remedies: "
        + _remedies(keep, sel, accuracy_16x8, representative, debug_samples)
        for row, keep, sel in zip(flagged, kept, selective, strict=True))
    return QuantizationDebugReport(
        rows, flagged, remedies, CRITERION, len(debug_samples), len(representative),
        "labels" if labels is not None else "float model", float_accuracy, int8_accuracy,
        tuple(selective), accuracy_16x8, time.perf_counter() - started)


def _run_debugger(tf, model, representative, debug_samples):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    modes.get("int8").configure(tf, converter)
    converter.representative_dataset = lambda: ([row[None].astype(np.float32)]
                                                for row in representative)
    try:
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=lambda: ([row[None].astype(np.float32)] for row in debug_samples))
        debugger.run()
    except Exception as e:  # The converter raises ConverterError and others with long logs.
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise EdgeDistillError(f"{model.name}: quantization debugging failed: {first}") from None
    return debugger


def _rows(debugger, model) -> tuple[LayerError, ...]:
    debugger.layer_statistics_dump(dump := io.StringIO())
    dump.seek(0)
    return tuple(
        LayerError(row["op_name"], _layer(row["tensor_name"], model), row["tensor_name"],
                   float(row["scale"]),
                   float(np.sqrt(float(row["mean_squared_error"])) / float(row["scale"])),
                   float(row["mean_error"]), float(row["max_abs_error"]),
                   int(float(row["num_elements"])))
        for row in csv.DictReader(dump))


def _layer(tensor: str, model) -> str:
    """The Keras layers named in a tensor name; the output layer for the converter's output."""
    parts = set(re.split(r"[/;]", tensor))
    found = [layer.name for layer in model.layers if layer.name in parts]
    if found:
        return "+".join(found)
    if tensor.startswith("StatefulPartitionedCall") and len(model.outputs) == 1:
        return model.output_names[0]
    return tensor


def _kept_float(graph, flagged: LayerError, rows) -> list[LayerError]:
    """The flagged op, the ops that set its inputs' ranges, and the value-moving ops between:
    a wide-range input crushes the op's other inputs before it runs, so keeping the op
    alone float fixes little (measured: 10% accuracy, against 91% with its range-setter)."""
    by_tensor = {row.tensor: row for row in rows}
    producer = {t: op for op in graph.operators for t in op.outputs}
    index = {t.name: t.index for t in graph.tensors}
    kept, todo = [flagged], [flagged.tensor]
    while todo:
        op = producer.get(index.get(todo.pop()))
        for i in op.inputs if op else ():
            source = by_tensor.get(graph.tensors[i].name) if i >= 0 else None
            if source is not None and source not in kept:
                kept.append(source)
                if source.rmse_over_scale < _PASSTHROUGH:
                    todo.append(source.tensor)
    return sorted(kept, key=rows.index)


def _remedies(kept, selective: float, accuracy_16x8: float | None, representative: np.ndarray,
              debug_samples: np.ndarray) -> str:
    lo, hi = float(representative.min()), float(representative.max())
    outside = float(np.mean((debug_samples < lo) | (debug_samples > hi)))
    steps = []
    if outside > UNCOVERED_INPUTS:
        steps.append(f"calibrate on inputs like the real ones ({outside:.0%} of the debug "
                     f"samples' values lie outside the calibration inputs' range [{lo:.3g}, "
                     f"{hi:.3g}], and the model's input is clipped to it)")
    if len(representative) < SMALL_CALIBRATION:
        steps.append(f"calibrate on more samples (--calibration-per-class; "
                     f"{len(representative)} in all now, and ranges they never saw are clipped)")
    if accuracy_16x8 is not None:
        steps.append(f"convert with --mode 16x8 (int16 activations): {accuracy_16x8:.1%}")
    steps.append(f"keep {', '.join(row.layer for row in kept)} in float (selective "
                 f"quantization): {selective:.1%}")
    return "; ".join([*steps, "distill with --qat (quantization-aware training)"]) + "."
