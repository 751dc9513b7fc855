"""Runs ``edgedistill.micro._probe`` in a child process and reads its log."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedistill._fileio import save_log, temporary_dir
from edgedistill.errors import EdgeDistillError, InternalError
from edgedistill.tflite_file import Tensor, TFLiteModel, parse_tflite, quantize, read_tflite

# The slowest MLPerf Tiny model needs well under a second per child; a child
# that takes this long is stuck, not busy.
CHILD_TIMEOUT_S = 300


def load_model(model) -> tuple[bytes, TFLiteModel]:
    """The bytes and parsed header of a .tflite given as bytes or a path."""
    if isinstance(model, bytes | bytearray | memoryview):
        data = bytes(model)
        return data, parse_tflite(data)
    parsed = read_tflite(model)
    return Path(model).read_bytes(), parsed


def sample_inputs(model: TFLiteModel, given=None, seed: int = 0,
                  count: int = 1) -> list[np.ndarray]:
    """One array per model input, each holding samples along a new first axis.

    ``given`` is one array per input (or an array for a single input) of one
    sample in the input's own shape, or of several along the batch axis when
    the input's batch is 1 (test data, ``x[:100]``). Float data for a
    quantized integer input is quantized with the input's scale and zero point.
    Without ``given``, ``count`` random samples span the whole range of 8- and
    16-bit integer types, [-1, 1) for floats and [0, 16) for wider integers
    (often indices, where the full range would be out of bounds), from a
    generator seeded with ``seed``.
    """
    tensors = [model.tensors[i] for i in model.inputs]
    if given is not None:
        arrays = list(given) if isinstance(given, list | tuple) else [given]
        if len(arrays) != len(tensors):
            raise EdgeDistillError(
                f"sample_input: {len(arrays)} array(s) for a model with {len(tensors)} input(s)")
        samples = [_as_samples(x, t, i, model.path)
                   for i, (x, t) in enumerate(zip(arrays, tensors, strict=True))]
        if len({len(x) for x in samples}) > 1:
            raise EdgeDistillError(
                "sample_input: the inputs hold different numbers of samples "
                f"({', '.join(str(len(x)) for x in samples)}); give each input as many")
        return samples
    rng = np.random.default_rng(seed)
    arrays = []
    for t in tensors:
        shape, dtype = (count, *t.shape), _feedable_dtype(t, model.path)
        if dtype.kind == "f":
            arrays.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 2, size=shape).astype(bool))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            lo, hi = (info.min, info.max) if dtype.itemsize <= 2 else (0, 15)
            arrays.append(rng.integers(lo, hi, size=shape, dtype=dtype, endpoint=True))
        else:
            raise EdgeDistillError(
                f"{model.path}: input {t.name!r} has dtype {t.dtype}, which TFLM cannot feed")
    return arrays


def _feedable_dtype(tensor: Tensor, where: str) -> np.dtype:
    try:
        return np.dtype(tensor.dtype)
    except TypeError:
        raise EdgeDistillError(f"{where}: input {tensor.name!r} has dtype {tensor.dtype}, "
                               "which TFLM cannot feed") from None


def _as_samples(x, tensor: Tensor, index: int, where: str) -> np.ndarray:
    """``x`` as (samples, *tensor.shape) in the tensor's dtype, or a one-line error."""
    shape = tuple(tensor.shape)
    wanted = f"{tensor.dtype} {shape}, or several samples along the batch axis"
    if not isinstance(x, np.ndarray):
        raise EdgeDistillError(
            f"sample_input[{index}]: {type(x).__name__} for input {tensor.name!r}; pass a "
            f"numpy array of {wanted}")
    if x.shape == shape:
        x = x[None]
    elif shape and shape[0] == 1 and x.shape[1:] == shape[1:] and len(x):
        x = x[:, None]
    else:
        raise EdgeDistillError(
            f"sample_input[{index}]: shape {x.shape} does not fit input {tensor.name!r} "
            f"({wanted}); pass arrays shaped like the model's input")
    q, dtype = tensor.quantization, _feedable_dtype(tensor, where)
    if x.dtype.kind == "f" and dtype.kind in "iu" and q is not None and len(q.scales) == 1:
        x = quantize(x, dtype, q.scales[0], q.zero_points[0])
    if x.dtype.name != tensor.dtype:
        raise EdgeDistillError(
            f"sample_input[{index}]: {x.dtype.name} data for input {tensor.name!r} of "
            f"{tensor.dtype}; pass {tensor.dtype} (or float data, for a quantized input)")
    return np.ascontiguousarray(x)


@dataclass(frozen=True)
class ChildResult:
    """What one child process reported."""

    attempts: tuple[tuple[int, bool, str], ...]   # (arena, ok, error) per finished attempt
    crashed_at: int | None                        # arena being tried when the child died
    returncode: int
    messages: str                                 # tflite-micro's own output
    litert_error: str | None = None               # why LiteRT could not run the model

    def failure(self, where: str, doing: str) -> EdgeDistillError:
        """The error to raise for a child that did not finish its task.

        A Python traceback in the child is a fault of ours: it goes to a log
        file that the message names. Anything else (a crash or a refusal of
        tflite-micro) is about the model.
        """
        if "Traceback (most recent call last)" in self.messages:
            log = save_log("micro-child", self.messages)
            return InternalError(
                f"{where}: the tflite-micro child failed while {doing} (exit code "
                f"{self.returncode}); its traceback is in {log}; please report it")
        detail = tflm_message(self.messages) or f"exit code {self.returncode}"
        return EdgeDistillError(f"{where}: TFLM failed while {doing}: {detail}")


class Workdir:
    """A temporary directory holding the model and inputs the children read."""

    def __init__(self, data: bytes, inputs: Sequence[np.ndarray]):
        self._cleanup = contextlib.ExitStack()
        self.path = self._cleanup.enter_context(temporary_dir("edgedistill-micro"))
        self.model = self.path / "model.tflite"
        self.model.write_bytes(data)
        self.inputs = self.path / "inputs.npz"
        np.savez(self.inputs, **{f"input{i}": x for i, x in enumerate(inputs)})
        self._runs = 0

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup.close()

    def run(self, task: str, **fields) -> ChildResult:
        """Runs one child task; a crash of the child is reported, never raised."""
        self._runs += 1
        log = self.path / f"log{self._runs}.jsonl"
        request = self.path / f"request{self._runs}.json"
        request.write_text(json.dumps(
            {"task": task, "model": str(self.model), "inputs": str(self.inputs),
             "log": str(log), **fields}))
        # The child imports this very package, installed or not.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "edgedistill.micro._probe", str(request)],
                capture_output=True, text=True, errors="replace", timeout=CHILD_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise EdgeDistillError(
                f"tflite-micro did not finish a {task} within {CHILD_TIMEOUT_S} s; "
                "the model is too large for a microcontroller bundle") from None
        attempts, pending, litert_error = [], None, None
        for line in log.read_text().splitlines() if log.exists() else []:
            entry = json.loads(line)
            if "try" in entry:
                pending = entry["try"]
            elif "litert_error" in entry:
                litert_error = entry["litert_error"]
            else:
                attempts.append((entry["arena"], entry["ok"], entry["error"]))
                pending = None
        return ChildResult(tuple(attempts), pending, proc.returncode, proc.stdout + proc.stderr,
                           litert_error)


def tflm_message(messages: str) -> str:
    """The first line of tflite-micro's output that says what went wrong."""
    for line in messages.splitlines():
        line = line.strip()
        if line and not line.startswith(("[RecordingMicroAllocator]", "INFO:")):
            return line
    return ""
