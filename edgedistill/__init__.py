"""edgedistill: distill a large Keras teacher into a small student for the edge.

The stages are sub-packages (distill, compress, convert, micro, profile,
targets); importing ``edgedistill`` itself imports none of them, so reading or
profiling a .tflite never pulls in TensorFlow.
"""

__version__ = "0.1.0"
