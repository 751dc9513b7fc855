"""Does the bundle run? TFLM's outputs against LiteRT's on one input.

The model runs in tflite-micro (in a child process) with the arena the bundle
recommends, and in LiteRT with its reference kernels
(``OpResolverType.BUILTIN_REF``), which implement the same integer arithmetic
as TFLM's reference kernels: integer outputs must agree within 1 LSB, float
outputs within 1e-4 of the largest output magnitude (at least 1e-4). LiteRT's
default kernels (XNNPACK and the optimized builtins) round differently, and a
softmax at the end amplifies one-LSB differences in its logits: on random
inputs the MLPerf Tiny ResNet-8 differs from them by up to 35 LSB. That
difference is reported, for information, but not checked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from edgedistill.errors import EdgeDistillError, one_line
from edgedistill.micro._child import Workdir, load_model, sample_inputs

INT_TOLERANCE_LSB = 1
FLOAT_RELATIVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class RunCheck:
    """TFLM against LiteRT on one input, per model output.

    max_diffs: largest |TFLM - LiteRT reference| (LSB for integer outputs).
    tolerances: the allowed difference for each output.
    optimized_max_diffs: the same against LiteRT's default kernels (not checked).
    """

    arena_bytes: int
    sample: str
    max_diffs: tuple[float, ...]
    tolerances: tuple[float, ...]
    optimized_max_diffs: tuple[float, ...]
    passed: bool

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        for key in ("max_diffs", "tolerances", "optimized_max_diffs"):
            # An output whose shape differs between the runtimes has no finite difference.
            d[key] = [x if math.isfinite(x) else None for x in d[key]]
        d["reference"] = "ai_edge_litert Interpreter, OpResolverType.BUILTIN_REF"
        d["disagreement"] = self.disagreement()
        return d

    def disagreement(self) -> str:
        """What differs between TFLM and LiteRT, in words; empty when the check passed.

        Example:
            >>> RunCheck(6000, "given", (3.0,), (1.0,), (3.0,), False).disagreement()
            'output 0 differs by 3 (tolerance 1)'
        """
        found = []
        for i, (diff, tolerance) in enumerate(zip(self.max_diffs, self.tolerances, strict=True)):
            if not (math.isfinite(diff) and math.isfinite(tolerance)):
                found.append(f"output {i} differs in shape or is not finite")
            elif diff > tolerance:
                found.append(f"output {i} differs by {diff:g} (tolerance {tolerance:g})")
        return "; ".join(found)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _tolerance(reference: np.ndarray) -> float:
    if reference.dtype.kind == "f":
        peak = float(np.max(np.abs(reference))) if reference.size else 0.0
        return FLOAT_RELATIVE_TOLERANCE * max(1.0, peak)
    return float(INT_TOLERANCE_LSB)


def check_run(model, arena_bytes: int, *, sample_input=None, seed: int = 0) -> RunCheck:
    """Invokes the model in TFLM with ``arena_bytes`` and compares with LiteRT.

    Args:
        model: path of a .tflite file, or its bytes.
        arena_bytes: the arena TFLM gets.
        sample_input: one numpy array per model input (or one array for a
            single input); random within each dtype's range, seeded with
            ``seed``, when None.

    Raises:
        EdgeDistillError: not a TFLite file, sample_input of the wrong dtype or
            shape, or TFLM fails with this arena.

    Example:
        >>> check_run("ad01_int8.tflite", 5664).max_diffs   # doctest: +SKIP
        (1.0,)
    """
    data, parsed = load_model(model)
    inputs = sample_inputs(parsed, sample_input, seed)
    with Workdir(data, inputs) as work:
        outputs = work.path / "outputs.npz"
        result = work.run("run", arenas=[int(arena_bytes)], outputs=str(outputs))
        if result.litert_error is not None:
            raise EdgeDistillError(
                f"{parsed.path}: LiteRT, which TFLM's outputs are checked against, cannot run "
                f"the model: {one_line(result.litert_error)}")
        if not (result.attempts and result.attempts[0][1]) or result.returncode != 0:
            raise result.failure(parsed.path, f"running the model with a {arena_bytes}-byte arena")
        with np.load(outputs) as npz:
            n = sum(1 for k in npz.files if k.startswith("ref"))
            tflm = [npz[f"tflm{i}"] for i in range(n)]
            ref = [npz[f"ref{i}"] for i in range(n)]
            opt = [npz[f"opt{i}"] for i in range(n)]
    diffs = tuple(_max_diff(t, r) for t, r in zip(tflm, ref, strict=True))
    tolerances = tuple(_tolerance(r) for r in ref)
    return RunCheck(
        arena_bytes=int(arena_bytes),
        sample="given" if sample_input is not None else f"random, seed {seed}",
        max_diffs=diffs,
        tolerances=tolerances,
        optimized_max_diffs=tuple(_max_diff(t, o) for t, o in zip(tflm, opt, strict=True)),
        passed=all(d <= t for d, t in zip(diffs, tolerances, strict=True)),
    )
