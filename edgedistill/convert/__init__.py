"""Conversion: Keras to TFLite (int8 full-integer by default), verified with LiteRT.

Importing this package does not import TensorFlow; ``convert`` and
``convert_model`` do when called.
"""

from edgedistill.convert.modes import MODES, ConversionMode
from edgedistill.convert.run import ConversionResult, convert, convert_model

__all__ = ["MODES", "ConversionMode", "ConversionResult", "convert", "convert_model"]
