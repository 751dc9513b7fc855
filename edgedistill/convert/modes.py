"""TFLite conversion modes, by name.

Each mode configures a ``tf.lite.TFLiteConverter``. ``int8`` is the one
microcontrollers need: every tensor int8, inputs and outputs included,
calibrated on a representative dataset.

Example:
    >>> get("int8").needs_representative_data
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from edgedistill.errors import EdgeDistillError


@dataclasses.dataclass(frozen=True)
class ConversionMode:
    """How to set up the converter for one kind of output model."""

    name: str
    description: str
    needs_representative_data: bool
    configure: Callable  # (tf, converter) -> None


def _int8(tf, converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


def _float32(tf, converter):
    pass


def _float16(tf, converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(tf, converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


MODES = {
    mode.name: mode
    for mode in (
        ConversionMode(
            "int8",
            "full-integer int8, int8 input and output (microcontrollers, NPUs)",
            True,
            _int8,
        ),
        ConversionMode("float32", "float32, no quantization (reference)", False, _float32),
        ConversionMode(
            "float16", "float16 weights, float32 compute (GPU delegates)", False, _float16
        ),
        ConversionMode(
            "dynamic", "int8 weights, float activations (dynamic-range; CPUs)", False, _dynamic
        ),
    )
}


def get(name: str) -> ConversionMode:
    """The conversion mode called ``name``."""
    if name not in MODES:
        raise EdgeDistillError(f"mode: {name!r} unknown; use one of {', '.join(MODES)}")
    return MODES[name]
