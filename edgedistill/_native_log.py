"""Keeps native libraries' start-up chatter off the user's terminal.

TensorFlow, the TFLite converter and LiteRT write informational lines
("oneDNN custom operations are on", "Created TensorFlow Lite XNNPACK delegate",
"fully_quantize: 0, ...") straight to file descriptor 2, past Python's
``sys.stderr``, and no environment variable silences all of them. Wrapping
the calls that print them sends those lines to a scratch file instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_discarded() -> Iterator[None]:
    """Points file descriptor 2 at a scratch file for the duration of the block."""
    with contextlib.suppress(AttributeError, ValueError):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as scratch:
            os.dup2(scratch.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
