"""The exceptions that reach users as a one-line message, and their exit codes."""


def one_line(text: str) -> str:
    """A message from elsewhere (LiteRT, TFLM, a parser) folded onto one line.

    Example:
        >>> one_line("conv.cc:390 zero_point != 0\\nNode number 2 (CONV_2D) failed to prepare.\\n")
        'conv.cc:390 zero_point != 0 Node number 2 (CONV_2D) failed to prepare.'
    """
    return " ".join(text.split())


class EdgeDistillError(Exception):
    """Bad input from the user: a missing file, a wrong shape, an unknown name.

    The message is a single line that names the file, field or op at fault and
    says what to do. The CLI prints it and exits with ``exit_code`` (2); the
    Python API lets it propagate.

    Example:
        >>> raise EdgeDistillError("m.tflite: not a TFLite flatbuffer; pass a .tflite file")
        Traceback (most recent call last):
        ...
        edgedistill.errors.EdgeDistillError: m.tflite: not a TFLite flatbuffer; pass a .tflite file
    """

    exit_code = 2


class CheckFailed(EdgeDistillError):
    """The work is done, but its own check of the result failed.

    For example TFLM's outputs differ from LiteRT's beyond the tolerance (the
    output is written), or a conversion lost more accuracy than the user
    allowed (nothing is written). The message says what disagrees and where
    the output is, if anywhere; exit code 1. ``details`` holds the finding
    behind it, when there is one (e.g. a conversion's report of each op's
    error), for the CLI to show above the message.
    """

    exit_code = 1

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.details = details


class InternalError(EdgeDistillError):
    """A fault of ours, not of the input: a child process failed unexpectedly.

    The message names the log file holding the traceback; exit code 1.
    """

    exit_code = 1
