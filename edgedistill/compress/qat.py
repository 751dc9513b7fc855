"""Quantization-aware training inside the distillation loop (tfmot).

``quantize_student`` wraps a float student in tfmot's fake-quantization so
the distiller trains the weights the int8 converter will see. The TFLite
converter reads the learned ranges straight from the wrapped model.

Example:
    >>> qat_student = quantize_student(student)
    >>> Distiller(teacher=teacher, student=qat_student).compile(...)
"""

from __future__ import annotations

from edgedistill._tf import tfmot
from edgedistill.errors import EdgeDistillError

_QAT_LAYERS = ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2")


def quantize_student(model):
    """Returns a QAT copy of ``model`` (tfmot ``quantize_model``; weights kept).

    A model that already carries QAT wrappers is returned as it is.

    Raises:
        EdgeDistillError: a layer tfmot cannot quantize, named in the message.
    """
    if is_quantize_wrapped(model):
        return model
    try:
        return tfmot().quantization.keras.quantize_model(model)
    except (ValueError, RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeDistillError(
            f"student {model.name}: quantization-aware training cannot wrap it ({first}); "
            "use layers tfmot supports (Conv2D, DepthwiseConv2D, Dense, pooling, ReLU) "
            "or drop --qat"
        ) from None


def is_quantize_wrapped(model) -> bool:
    """True when ``model`` carries tfmot's QAT wrappers."""
    return any(type(layer).__name__ in _QAT_LAYERS for layer in model.layers)
