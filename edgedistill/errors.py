"""The one exception type that reaches users as a one-line message."""


class EdgeDistillError(Exception):
    """Bad input from the user: a missing file, a wrong shape, an unknown name.

    The message is a single line that names the file, field or op at fault and
    says what to do. The CLI prints it and exits with code 2; the Python API
    lets it propagate.

    Example:
        >>> raise EdgeDistillError("m.tflite: not a TFLite flatbuffer; pass a .tflite file")
        Traceback (most recent call last):
        ...
        edgedistill.errors.EdgeDistillError: m.tflite: not a TFLite flatbuffer; pass a .tflite file
    """
