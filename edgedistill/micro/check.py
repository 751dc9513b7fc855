"""Does the bundle run? TFLM's outputs against LiteRT's on evaluation inputs.

The model runs in tflite-micro (in a child process) with the arena the bundle
recommends, on every input, and in LiteRT with its reference kernels
(``OpResolverType.BUILTIN_REF``), which implement the same integer arithmetic
as TFLM's reference kernels but do not always round a requantization the same
way: one operator's output can differ by 1 LSB, and the next operators carry
the difference on. Measured on 100 random inputs each, the MLPerf Tiny models
differ by 0 LSB (KWS, VWW), 3 LSB (the AD01 autoencoder, 10 FULLY_CONNECTED
layers; 99.4 % of values within 1 LSB) and 6 LSB (ResNet-8, one value of 1,000,
its softmax amplifying its logits' rounding). So integer outputs must agree
within 1 LSB per operator of the model, which a wrong kernel or a misread
quantization exceeds by far; float outputs within 1e-4 of the largest output
magnitude (at least 1e-4). LiteRT's
default kernels (XNNPACK and the optimized builtins) round differently, and a
softmax at the end amplifies one-LSB differences in its logits: on random
inputs the MLPerf Tiny ResNet-8 differs from them by up to 35 LSB. That
difference is reported, for information, but not checked. For a classifier
the share of inputs on which both pick the same class is reported too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from edgedistill.errors import EdgeDistillError, one_line
from edgedistill.micro._child import Workdir, load_model, sample_inputs
from edgedistill.tflite_file import TFLiteModel

INT_TOLERANCE_LSB_PER_OPERATOR = 1
FLOAT_RELATIVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class RunCheck:
    """TFLM against LiteRT on ``samples`` inputs, per model output.

    inputs: where the inputs came from ("given", "random, seed 0").
    max_diffs, mean_diffs: largest and mean |TFLM - LiteRT reference| over
        all inputs (in quantization steps, LSB, for integer outputs).
    tolerances: the allowed difference for each output.
    optimized_max_diffs: the same against LiteRT's default kernels (not checked).
    top1_agreement, optimized_top1_agreement: share of inputs on which TFLM
        and LiteRT (reference, default kernels) pick the same class from the
        first output; None when the model is not a classifier.
    """

    arena_bytes: int
    inputs: str
    samples: int
    max_diffs: tuple[float, ...]
    mean_diffs: tuple[float, ...]
    tolerances: tuple[float, ...]
    optimized_max_diffs: tuple[float, ...]
    passed: bool
    top1_agreement: float | None = None
    optimized_top1_agreement: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        for key in ("max_diffs", "mean_diffs", "tolerances", "optimized_max_diffs"):
            # An output whose shape differs between the runtimes has no finite difference.
            d[key] = [x if math.isfinite(x) else None for x in d[key]]
        d["reference"] = "ai_edge_litert Interpreter, OpResolverType.BUILTIN_REF"
        d["disagreement"] = self.disagreement()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> RunCheck:
        """The check back from ``to_dict()`` (a manifest's "parity")."""
        def floats(key):
            return tuple(float("inf") if x is None else x for x in data[key])

        return cls(data["arena_bytes"], data["inputs"], data["samples"], floats("max_diffs"),
                   floats("mean_diffs"), floats("tolerances"), floats("optimized_max_diffs"),
                   data["passed"], data["top1_agreement"], data["optimized_top1_agreement"])

    def disagreement(self) -> str:
        """What differs between TFLM and LiteRT, in words; empty when the check passed.

        Example:
            >>> RunCheck(6000, "given", 1, (3.0,), (3.0,), (1.0,), (3.0,), False).disagreement()
            'output 0 differs by 3 (tolerance 1)'
        """
        found = []
        for i, (diff, tolerance) in enumerate(zip(self.max_diffs, self.tolerances, strict=True)):
            if not (math.isfinite(diff) and math.isfinite(tolerance)):
                found.append(f"output {i} differs in shape or is not finite")
            elif diff > tolerance:
                found.append(f"output {i} differs by {diff:g} (tolerance {tolerance:g})")
        return "; ".join(found)


def _top1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.reshape(len(a), -1).argmax(-1) == b.reshape(len(b), -1).argmax(-1)))


def _is_classifier(model: TFLiteModel) -> bool:
    """Whether a SOFTMAX produces the first output (its scores are then classes)."""
    return any(op.opcode == "SOFTMAX" and model.outputs[0] in op.outputs
               for op in model.operators)


def _diff(a: np.ndarray, b: np.ndarray, reduce=np.max) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(reduce(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _tolerance(reference: np.ndarray, operators: int) -> float:
    if reference.dtype.kind == "f":
        peak = float(np.max(np.abs(reference))) if reference.size else 0.0
        return FLOAT_RELATIVE_TOLERANCE * max(1.0, peak)
    return float(INT_TOLERANCE_LSB_PER_OPERATOR * max(1, operators))


def check_run(model, arena_bytes: int, *, inputs=None, random_samples: int = 10,
              seed: int = 0, classifier: bool | None = None) -> RunCheck:
    """Invokes the model in TFLM with ``arena_bytes`` on each input and compares with LiteRT.

    Args:
        model: path of a .tflite file, or its bytes.
        arena_bytes: the arena TFLM gets.
        inputs: one numpy array per model input (or one array for a single
            input): one sample in the input's shape, or several along its
            batch axis; float data for a quantized input is quantized with the
            input's scale. ``random_samples`` random inputs, seeded with
            ``seed``, when None.
        classifier: whether the first output holds class scores, for the
            top-1 agreement; default: when a SOFTMAX produces it.

    Raises:
        EdgeDistillError: not a TFLite file, inputs of the wrong dtype or
            shape, or TFLM fails with this arena.

    Example:
        >>> check_run("kws_ref_model.tflite", 26704).top1_agreement   # doctest: +SKIP
        1.0
    """
    data, parsed = load_model(model)
    samples = sample_inputs(parsed, inputs, seed, count=random_samples)
    with Workdir(data, samples) as work:
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
    diffs = tuple(_diff(t, r) for t, r in zip(tflm, ref, strict=True))
    tolerances = tuple(_tolerance(r, len(parsed.operators)) for r in ref)
    classes = bool(ref) and ref[0].ndim > 1 and ref[0].shape[-1] > 1 and (
        _is_classifier(parsed) if classifier is None else classifier)
    agreeing = classes and tflm[0].shape == ref[0].shape == opt[0].shape
    return RunCheck(
        arena_bytes=int(arena_bytes),
        inputs="given" if inputs is not None else f"random, seed {seed}",
        samples=len(samples[0]) if samples else 1,
        max_diffs=diffs,
        mean_diffs=tuple(_diff(t, r, np.mean) for t, r in zip(tflm, ref, strict=True)),
        tolerances=tolerances,
        optimized_max_diffs=tuple(_diff(t, o) for t, o in zip(tflm, opt, strict=True)),
        passed=all(d <= t for d, t in zip(diffs, tolerances, strict=True)),
        top1_agreement=_top1(tflm[0], ref[0]) if agreeing else None,
        optimized_top1_agreement=_top1(tflm[0], opt[0]) if agreeing else None,
    )
