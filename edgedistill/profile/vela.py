"""Arm Vela's cycle and SRAM estimates for an Ethos-U target.

Vela (``pip install ethos-u-vela``) compiles the int8 model for the target's
NPU (``npu.accelerator_config``, ``npu.system_config``, ``npu.memory_mode``
in the target file; Vela's own defaults when the last two are absent) and
estimates every NPU operator's cycles from the NPU's MAC array and the memory
bandwidths of its system configuration. It runs without TensorFlow in the
profiling child (:mod:`._worker`: a malformed model can crash it), writes
into a temporary directory, and its results are kept per model and
configuration for the life of the process.

Operators Vela leaves to the CPU (float ones, or ones the NPU cannot run)
are listed; :mod:`edgedistill.profile.fit` costs them with the target's own
latency constants.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib.util
import io
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from edgedistill.errors import EdgeDistillError
from edgedistill.targets import Npu
from edgedistill.tflite_file import read_tflite

NPU_OPCODE = "CUSTOM:ethos-u"


class VelaUnavailable(EdgeDistillError):
    """Vela is not installed."""


class VelaFailed(EdgeDistillError):
    """Vela refused the model or the configuration; the message says why."""


@dataclass(frozen=True)
class VelaEstimate:
    """What Vela says about one model on one NPU configuration.

    ``cycles`` are NPU cycles for the whole network; ``per_op_cycles`` maps
    the name of each original operator's output tensor to its cycles.
    ``cpu_ops`` are the output tensor names of the operators left on the CPU.

    Example:
        >>> est = VelaEstimate("5.2.0", "ethos-u55-256", "Ethos_U55_High_End_Embedded",
        ...                    "Shared_Sram", 58340, 22190, 40000, 39, ())
        >>> est.to_dict()["cycles"]
        58340
    """

    version: str
    accelerator_config: str
    system_config: str
    memory_mode: str
    cycles: int
    sram_bytes: int
    compiled_bytes: int
    npu_ops: int
    cpu_ops: tuple[str, ...]
    per_op_cycles: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_op_cycles", MappingProxyType(dict(self.per_op_cycles)))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        d = dict(vars(self))
        d["cpu_ops"] = list(self.cpu_ops)
        d["per_op_cycles"] = dict(self.per_op_cycles)
        return d


def run_vela(model_path: str | Path, npu: Npu, sha256: str) -> VelaEstimate:
    """Vela's estimate of ``model_path`` on ``npu``, compiled in the profiling child.

    Args:
        model_path: the .tflite model (int8 or int16 ops go to the NPU).
        npu: the target's NPU with its Vela configuration.
        sha256: the model's digest, the key of the per-process cache.

    Raises:
        VelaUnavailable: Vela is not installed.
        VelaFailed: Vela refused the model or the configuration, or crashed.

    Example:
        >>> from edgedistill import targets
        >>> npu = targets.get("alif-ensemble-e7-hp").npu
        >>> run_vela("kws_ref_model.tflite", npu, "ab12").npu_ops  # doctest: +SKIP
        1
    """
    if not npu.accelerator_config:
        raise VelaFailed(f"npu.accelerator_config: not given for {npu.name}; name Vela's "
                         "--accelerator-config (e.g. ethos-u55-256) in the target file")
    if importlib.util.find_spec("ethosu") is None:
        raise VelaUnavailable("Vela is not installed: pip install ethos-u-vela")
    return _cached(str(model_path), npu.accelerator_config, npu.system_config,
                   npu.memory_mode, sha256)


@functools.lru_cache(maxsize=64)
def _cached(model_path: str, accelerator: str, system: str | None, memory: str | None,
            sha256: str) -> VelaEstimate:
    from edgedistill.profile import _worker

    # Vela takes 0.1-0.15 s on the MLPerf Tiny models (0.05-0.3 MB) and grows with size; ten
    # times that is looping (it does on some malformed operator options).
    limit = 1.0 + 5.0 * Path(model_path).stat().st_size / 1e6
    try:
        d = _worker.call("vela", limit, model=model_path, accelerator=accelerator,
                         system=system, memory=memory)
    except EdgeDistillError as exc:
        raise VelaFailed(str(exc)) from None
    return VelaEstimate(**{**d, "cpu_ops": tuple(d["cpu_ops"])})


def compile_here(model: str, accelerator: str, system: str | None, memory: str | None) -> dict:
    """Runs Vela in this process (the profiling child's job) and returns its estimate's dict."""
    try:
        from ethosu.vela import vela
        from ethosu.vela._version import __version__
    except ImportError:
        raise VelaUnavailable("Vela is not installed: pip install ethos-u-vela") from None
    with tempfile.TemporaryDirectory(prefix="edgedistill-vela-") as out:
        args = [model, "--accelerator-config", accelerator, "--output-dir", out,
                "--verbose-performance"]
        if system and memory:
            args += ["--config", "Arm/vela.ini", "--system-config", system,
                     "--memory-mode", memory]
        with _quiet() as log:
            try:
                code = vela.main(args)
            except (Exception, SystemExit) as exc:  # Vela raises its own error classes
                code, reason = 1, str(exc)
            else:
                reason = log.getvalue()
        if code != 0:
            first = next((line for line in reason.splitlines() if line.strip()), "no message")
            raise VelaFailed(f"{model}: Vela ({accelerator}, {system or 'default'}, "
                             f"{memory or 'default'}) refused it: {first[:200]}")
        return _read_outputs(Path(out), Path(model).stem, __version__, accelerator).to_dict()


def _read_outputs(out: Path, stem: str, version: str, accelerator: str) -> VelaEstimate:
    compiled = out / f"{stem}_vela.tflite"
    graph = read_tflite(compiled)
    cpu_ops = tuple(graph.tensors[op.outputs[0]].name for op in graph.operators
                    if op.opcode != NPU_OPCODE and op.outputs)
    npu_ops = sum(op.opcode == NPU_OPCODE for op in graph.operators)
    # No summary when every operator stays on the CPU.
    summaries = sorted(out.glob(f"{stem}_summary_*.csv"))
    totals = next(csv.DictReader(summaries[0].open()), {}) if summaries else {}
    per_op: dict[str, int] = {}
    layers = out / f"{stem}_per-layer.csv"
    if layers.is_file():
        for row in csv.DictReader(layers.open()):
            per_op[row["Name"]] = per_op.get(row["Name"], 0) + int(float(row["Op Cycles"]))
    return VelaEstimate(
        version=version, accelerator_config=accelerator,
        system_config=totals.get("system_config", ""),
        memory_mode=totals.get("memory_mode", ""), cycles=int(float(totals.get("cycles_total", 0))),
        sram_bytes=round(float(totals.get("sram_memory_used", 0)) * 1024),
        compiled_bytes=compiled.stat().st_size, npu_ops=npu_ops, cpu_ops=cpu_ops,
        per_op_cycles=per_op)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Collects Vela's Python output and silences its compiled core, which writes to fd 1 and 2."""
    log = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield log
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
