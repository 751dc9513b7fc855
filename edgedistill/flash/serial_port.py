"""Reading the firmware's inference times from a serial port (pyserial).

The example application prints ``edgedistill: invoke_us=N arena_used=M`` after
every ``Invoke()`` (the arena on every line, since opening a port discards
what the board printed before, its start-up lines included); it says why when
it cannot run (``AllocateTensors() failed ...``), and that line becomes the
error. The first ``warmup`` times are dropped (caches, first-call setup), the
next ``runs`` are kept.

Example:
    >>> parse_line(b"edgedistill: invoke_us=1834 arena_used=21872\\r\\n")
    ('invoke', (1834, 21872))
"""

from __future__ import annotations

import re
import time

from edgedistill.errors import EdgeDistillError
from edgedistill.profile.measure import spread

_INVOKE = re.compile(rb"edgedistill: invoke_us=(\d{1,10})(?: arena_used=(\d{1,10}))?(?!\d)")
# What the application prints when it cannot go on.
_FAILURES = (b"AllocateTensors() failed", b"RegisterModelOps() failed", b"Invoke() failed",
             b"Model schema version")
MAX_LINE = 4096


def parse_line(line: bytes) -> tuple[str, tuple[int, int | None]] | tuple[str, str] | None:
    """What one line of the firmware says: ``('invoke', (microseconds, arena or None))``,
    ``('failure', text)``, or None for anything else."""
    if m := _INVOKE.search(line):
        return "invoke", (int(m[1]), None if m[2] is None else int(m[2]))
    if any(failure in line for failure in _FAILURES):
        return "failure", line.decode("utf-8", "replace").strip()[:200]
    return None


def read_invoke_times(port: str, baud: int, runs: int, warmup: int, timeout_s: float) -> dict:
    """Reads ``warmup + runs`` inference times from ``port``; returns their figures.

    Returns:
        ``runs``, ``warmup``, ``median_ms``, ``mean_ms``, ``min_ms``, ``p90_ms``
        and ``arena_used_bytes`` (None when the firmware did not say).

    Raises:
        EdgeDistillError: the port cannot be opened, the firmware reported a
            failure, or the times did not all come within ``timeout_s``.
    """
    try:
        import serial
    except ImportError:
        raise EdgeDistillError("pyserial is not installed: pip install pyserial") from None
    try:
        connection = serial.Serial(port, baud, timeout=0.2)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise EdgeDistillError(f"{port}: cannot open the serial port ({exc}); check --port "
                               "and that no serial monitor holds it") from None
    times: list[float] = []
    seen, arena = 0, None
    deadline = time.monotonic() + timeout_s
    with connection:
        while len(times) < runs:
            if time.monotonic() > deadline:
                raise EdgeDistillError(
                    f"{port}: {seen} of {warmup + runs} inference times within {timeout_s:g} s; "
                    f"is the firmware running, and printing at {baud} baud?")
            try:
                line = connection.readline(MAX_LINE)
            except serial.SerialException as exc:
                raise EdgeDistillError(f"{port}: the serial port failed ({exc}); was the "
                                       "board unplugged?") from None
            said = parse_line(line)
            if said is None:
                continue
            kind, value = said
            if kind == "failure":
                raise EdgeDistillError(f"{port}: the firmware says: {value}")
            microseconds, arena = value[0], value[1] if value[1] is not None else arena
            seen += 1
            if seen > warmup:
                times.append(microseconds / 1000.0)
    return {"runs": len(times), "warmup": warmup, **spread(times), "arena_used_bytes": arena}
