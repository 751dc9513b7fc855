"""The tensor arena a model needs, measured with the real tflite-micro interpreter.

The smallest arena (a multiple of 16 bytes) with which the interpreter both
allocates the tensors and invokes the model is found by binary search, every
attempt in a child process because tflite-micro can crash on a tiny arena.

The measured figure comes from the host build of tflite-micro (reference
kernels, 64-bit pointers). On a 32-bit microcontroller the interpreter's own
structs (TfLiteEvalTensor, node and registration records, persistent
TfLiteTensors) are smaller, so for them the host figure is an upper bound. The
kernels' scratch buffers are not: optimized kernels such as CMSIS-NN ask for
their own scratch space in Prepare (e.g. an im2col buffer for a convolution)
that the reference kernels do not. The default margin covers that: 10 % of
the measured size, at least 1 KiB, rounded up to 16 bytes. If AllocateTensors
still fails on the device, TFLM prints how many bytes are missing.

What the arena holds comes from TFLM's RecordingMicroAllocator, run once at
the measured size: the head (tensors planned to share memory, and kernels'
scratch buffers) and the tail (what lives as long as the interpreter), split
by kind of allocation.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass

from edgedistill.errors import EdgeDistillError
from edgedistill.micro._child import Workdir, load_model, sample_inputs, tflm_message
from edgedistill.micro._search import ARENA_STEP, GENEROUS_ARENA

DEFAULT_MARGIN = 0.10
DEFAULT_MIN_MARGIN_BYTES = 1024
# A child that dies restarts the search from where it stopped; past this many
# deaths something other than the arena is wrong.
_MAX_CRASHES = 8


@dataclass(frozen=True)
class ArenaUse:
    """One kind of allocation in the arena, as TFLM's recording allocator reports it.

    kind: TFLM's name for it, e.g. "TfLiteEvalTensor data" or "Persistent buffer data".
    used_bytes: with alignment overhead; requested_bytes: without it.
    allocations: how many allocations of that kind.
    """

    kind: str
    used_bytes: int
    requested_bytes: int
    allocations: int


@dataclass(frozen=True)
class ArenaMeasurement:
    """How much arena the model needs in TFLM.

    measured_bytes: smallest arena (multiple of 16) that allocates and invokes.
    margin_bytes: added for microcontroller kernels (see the module docstring).
    recommended_bytes: measured_bytes + margin_bytes, for kTensorArenaSize.
    probes: interpreter runs the search took; seconds: its wall time.
    head_bytes: the planned part (activations shared by lifetime, scratch buffers).
    tail_bytes: the persistent part; uses: what it holds, by kind.
    """

    measured_bytes: int
    margin_bytes: int
    recommended_bytes: int
    probes: int
    seconds: float
    head_bytes: int | None = None
    tail_bytes: int | None = None
    uses: tuple[ArenaUse, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ArenaProbe:
    """One attempt to run the model with ``arena_bytes`` of arena.

    ok: allocated and invoked. reason: "ok", "too small: <TFLM error>" or
    "too small: crashed (exit code N)".
    """

    arena_bytes: int
    ok: bool
    reason: str

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def margin_for(measured_bytes: int, margin: float = DEFAULT_MARGIN,
               min_margin_bytes: int = DEFAULT_MIN_MARGIN_BYTES) -> int:
    """The margin added to a measured arena: max(margin * measured, min), rounded up to 16.

    Example:
        >>> margin_for(24000), margin_for(4640)
        (2400, 1024)
    """
    if not (margin >= 0 and math.isfinite(margin)) or min_margin_bytes < 0:
        raise EdgeDistillError(
            f"arena margin {margin!r} / minimum {min_margin_bytes!r}: must be non-negative numbers")
    raw = max(math.ceil(measured_bytes * margin), min_margin_bytes)
    return -(-raw // ARENA_STEP) * ARENA_STEP


def measure_arena(model, *, margin: float = DEFAULT_MARGIN,
                  min_margin_bytes: int = DEFAULT_MIN_MARGIN_BYTES) -> ArenaMeasurement:
    """Measures the smallest TFLM arena for a model and adds the margin.

    Args:
        model: path of a .tflite file, or its bytes.
        margin: fraction of the measured size added for device kernels.
        min_margin_bytes: the margin is at least this.

    Raises:
        EdgeDistillError: not a TFLite file, or TFLM cannot run the model even
            with a 16 MiB arena (the message quotes TFLM's error).

    Example:
        >>> m = measure_arena("ad01_int8.tflite")   # doctest: +SKIP
        >>> m.measured_bytes, m.recommended_bytes    # doctest: +SKIP
        (4640, 5664)
    """
    started = time.perf_counter()
    data, parsed = load_model(model)
    with Workdir(data, sample_inputs(parsed)) as work:
        hi, probes, last_error = _search(work, parsed.path)
        if hi is None:
            raise EdgeDistillError(
                f"{parsed.path}: TensorFlow Lite Micro cannot run this model even with a "
                f"{GENEROUS_ARENA // 2**20} MiB arena ({last_error}); check that all ops are "
                "int8 or float32 builtins TFLM supports")
        recorded = work.run("probe", arenas=[hi], allocations=True)
    head, tail, uses = parse_allocations(recorded.messages)
    extra = margin_for(hi, margin, min_margin_bytes)
    return ArenaMeasurement(hi, extra, hi + extra, probes + 1,
                            round(time.perf_counter() - started, 3), head, tail, uses)


_PART = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (head|tail) (\d+) bytes")
_USE = re.compile(r"\[RecordingMicroAllocator\] '([^']+)' used (\d+) bytes with alignment "
                  r"overhead \(requested (\d+) bytes for (\d+) ")


def parse_allocations(messages: str) -> tuple[int | None, int | None, tuple[ArenaUse, ...]]:
    """The head and tail sizes and the uses by kind from the recording allocator's lines.

    Example:
        >>> parse_allocations(
        ...     "[RecordingMicroAllocator] Arena allocation head 16000 bytes\\n"
        ...     "[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 840 bytes with "
        ...     "alignment overhead (requested 840 bytes for 35 allocations)\\n")
        (16000, None, (ArenaUse(kind='TfLiteEvalTensor data', used_bytes=840, \
requested_bytes=840, allocations=35),))
    """
    parts = {m[1]: int(m[2]) for m in _PART.finditer(messages)}
    uses = tuple(ArenaUse(m[1], int(m[2]), int(m[3]), int(m[4])) for m in _USE.finditer(messages))
    return parts.get("head"), parts.get("tail"), uses


def _search(work: Workdir, where: str, lo: int = 0,
            hi: int | None = None) -> tuple[int | None, int, str]:
    """Runs the search in children until it ends: (smallest working size, probes, last error).

    A child that dies marks the size it was trying as too small, and a new
    child carries on from there.
    """
    probes, crashes, last_error = 0, 0, ""
    while crashes <= _MAX_CRASHES:
        result = work.run("search", lo=lo, hi=hi)
        for arena, ok, error in result.attempts:
            probes += 1
            if ok:
                hi = min(arena, hi or arena)
            else:
                lo, last_error = max(lo, arena), tflm_message(result.messages) or error
        if result.crashed_at is None:
            if result.returncode != 0:
                raise result.failure(where, "searching the arena size")
            break
        probes += 1
        crashes += 1
        lo = max(lo, result.crashed_at)
        last_error = f"crashed (exit code {result.returncode})"
    return hi, probes, last_error


def try_arena(model, arena_bytes: int) -> ArenaProbe:
    """Runs the model once in TFLM with ``arena_bytes`` of arena, in a child process.

    A crash of tflite-micro is reported as "too small", never propagated.

    Example:
        >>> try_arena("ad01_int8.tflite", 4624).ok   # doctest: +SKIP
        False
    """
    data, parsed = load_model(model)
    with Workdir(data, sample_inputs(parsed)) as work:
        result = work.run("probe", arenas=[int(arena_bytes)])
    if result.attempts:
        _, ok, error = result.attempts[0]
        message = tflm_message(result.messages) or error
        if ok:
            return ArenaProbe(arena_bytes, True, "ok")
        return ArenaProbe(arena_bytes, False,
                          f"{'too small' if 'allocate' in error else 'failed'}: {message}")
    return ArenaProbe(arena_bytes, False, f"too small: crashed (exit code {result.returncode})")
