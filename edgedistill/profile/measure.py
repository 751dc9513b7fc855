"""Measuring a model's latency on this machine with LiteRT, to set beside the host estimate.

The LiteRT interpreter (``ai_edge_litert``, no TensorFlow) runs the model with
XNNPACK on ``threads`` threads: ``warmup`` untimed invokes first (XNNPACK
packs weights and the caches fill on the first ones), then ``runs`` timed
invokes on a fixed random input; each phase stops early (after at least 1
warm-up and 3 timed invokes) once 2 s have gone by. The median is the
figure; the spread says how noisy the machine was.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedistill.errors import EdgeDistillError

WARMUP = 10
RUNS = 50
# Timed invokes stop after this long (at least MIN_RUNS), so a big model is measured in seconds.
BUDGET_S = 2.0
MIN_RUNS = 3


@dataclass(frozen=True)
class Measurement:
    """Wall-clock latency of ``runs`` invokes after ``warmup`` untimed ones.

    ``median_ms`` and ``p90_ms`` are None where the tool that timed the runs
    does not print them (TFLite's ``benchmark_model`` prints the mean, and in
    builds since 2023 the median and p95); :attr:`typical_ms` is the median,
    else the mean.

    Example:
        >>> m = Measurement("litert-xnnpack", "ai-edge-litert 2.3.0", 2, 10, 50, 0.05, 0.04, 0.09)
        >>> m.to_dict()["median_ms"], m.typical
        (0.05, 'median')
    """

    runtime: str
    version: str
    threads: int
    warmup: int
    runs: int
    median_ms: float | None
    min_ms: float
    p90_ms: float | None
    mean_ms: float | None = None
    p95_ms: float | None = None

    def __post_init__(self) -> None:
        if self.median_ms is None and self.mean_ms is None:
            raise ValueError("a Measurement needs its median or its mean")

    @property
    def typical_ms(self) -> float:
        """The median, or the mean where no median was measured."""
        return self.median_ms if self.median_ms is not None else self.mean_ms

    @property
    def typical(self) -> str:
        """Which of the two :attr:`typical_ms` is: ``median`` or ``mean``."""
        return "median" if self.median_ms is not None else "mean"

    def estimate_error(self, estimate_ms: float) -> float:
        """How far ``estimate_ms`` lands from this measurement: estimate / typical - 1."""
        return estimate_ms / self.typical_ms - 1.0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dict(vars(self))


def measure_litert(model: str | Path | bytes, threads: int, warmup: int = WARMUP,
                   runs: int = RUNS) -> Measurement:
    """Times the model with the LiteRT interpreter on this machine.

    Args:
        model: a .tflite model LiteRT can run: its path, or its bytes.
        threads: the interpreter's thread count (the host target's ``latency.threads``).
        warmup: untimed invokes before timing.
        runs: timed invokes at most; the median is reported.

    Raises:
        EdgeDistillError: LiteRT is not installed, or cannot load or run the model.

    Example:
        >>> measure_litert("kws_ref_model.tflite", threads=2).median_ms  # doctest: +SKIP
        0.045
    """
    if runs < 1 or warmup < 0 or threads < 1:
        raise EdgeDistillError(f"measure_litert: runs={runs}, warmup={warmup}, "
                               f"threads={threads}; give runs and threads >= 1, warmup >= 0")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise EdgeDistillError("LiteRT is not installed: pip install ai-edge-litert") from None
    from importlib.metadata import version

    try:
        interpreter = (Interpreter(model_content=model, num_threads=threads)
                       if isinstance(model, bytes) else
                       Interpreter(model_path=str(model), num_threads=threads))
        interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random(rng, detail))
        warmed, deadline = 0, time.perf_counter() + BUDGET_S
        while warmed < warmup and (warmed < 1 or time.perf_counter() < deadline):
            interpreter.invoke()
            warmed += 1
        times: list[float] = []
        deadline = time.perf_counter() + BUDGET_S
        while len(times) < runs and (len(times) < MIN_RUNS or time.perf_counter() < deadline):
            start = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000.0)
    except (RuntimeError, ValueError) as exc:
        what = "the model" if isinstance(model, bytes) else model
        raise EdgeDistillError(f"{what}: LiteRT could not run it: "
                               f"{str(exc).splitlines()[0][:200]}") from None
    return Measurement(runtime="litert-xnnpack",
                       version=f"ai-edge-litert {version('ai-edge-litert')}", threads=threads,
                       warmup=warmed, runs=len(times), **spread(times))


def spread(times_ms: Sequence[float]) -> dict[str, float]:
    """``median_ms``, ``mean_ms``, ``min_ms`` and ``p90_ms`` of some timings.

    Example:
        >>> spread([3.0, 1.0, 2.0])["median_ms"], spread([3.0, 1.0, 2.0])["p90_ms"]
        (2.0, 3.0)
    """
    ordered = sorted(times_ms)
    return {"median_ms": statistics.median(ordered), "mean_ms": statistics.fmean(ordered),
            "min_ms": ordered[0], "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]}


def _random(rng: np.random.Generator, detail: dict) -> np.ndarray:
    shape, dtype = detail["shape"], np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)
