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
    """How to set up the converter for one kind of output model.

    Attributes:
        io_types: the input and output types the mode can give the model,
            its default first: an integer model can still take and return
            float32 (the converter adds QUANTIZE and DEQUANTIZE).
        full_integer: every operator runs on integers, as microcontrollers need.
    """

    name: str
    description: str
    needs_representative_data: bool
    configure: Callable  # (tf, converter) -> None
    io_types: tuple[str, ...] = ("float32",)
    full_integer: bool = False

    def io_type(self, requested: str | None) -> str:
        """``requested`` (default: the mode's own), checked against the mode."""
        if requested is None:
            return self.io_types[0]
        if requested not in self.io_types:
            raise EdgeDistillError(
                f"--io {requested}: mode {self.name} takes {' or '.join(self.io_types)} "
                "inputs and outputs")
        return requested


def _full_integer(ops: str):
    def configure(tf, converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, ops)]
    return configure


def _float32(tf, converter):
    pass


def _float16(tf, converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(tf, converter):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def set_io_type(tf, converter, io_type: str) -> None:
    """Gives the model ``io_type`` inputs and outputs (float32 is the converter's default)."""
    if io_type != "float32":
        converter.inference_input_type = getattr(tf, io_type)
        converter.inference_output_type = getattr(tf, io_type)


IO_TYPES = ("int8", "uint8", "int16", "float32")
MODES = {
    mode.name: mode
    for mode in (
        ConversionMode(
            "int8",
            "full-integer int8, int8 input and output by default (microcontrollers, NPUs)",
            True, _full_integer("TFLITE_BUILTINS_INT8"), ("int8", "uint8", "float32"), True,
        ),
        ConversionMode(
            "16x8",
            "int16 activations and int8 weights, int16 input and output by default (more "
            "accurate where int8 activations lose too much)",
            True, _full_integer("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"),
            ("int16", "float32"), True,
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
