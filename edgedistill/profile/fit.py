"""One model on one target: latency for the target's runtime, its floor, and the verdicts.

Latency comes from Vela on an Ethos-U target (its network cycles at the
target's clock, plus the target's constants for the operators Vela leaves on
the CPU) and from the analytic model of :mod:`.latency` elsewhere. Vela's
per-layer cycles, which per_op_ms holds there, leave out the 1-2% of its total
that falls between layers. On the host target LiteRT
also measures the model (in the profiling child, :mod:`._worker`), so the
estimate stands beside a measurement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from edgedistill.errors import EdgeDistillError
from edgedistill.profile import _worker
from edgedistill.profile.analysis import OpCost
from edgedistill.profile.latency import estimate_latency, op_cycles
from edgedistill.profile.measure import Measurement
from edgedistill.profile.roofline import Peak
from edgedistill.profile.vela import VelaEstimate, run_vela
from edgedistill.profile.verdict import (
    FLASH,
    RAM,
    Verdict,
    latency_verdict,
    memory_verdict,
    ops_verdict,
    summary,
)
from edgedistill.targets import Runtime, Target
from edgedistill.tflite_file import TFLiteModel

ESTIMATE, VELA = "estimate", "vela"


@dataclass(frozen=True)
class TargetFit:
    """Whether the model fits a target, how fast it runs there, and for which runtime.

    Headroom is what is left after the model and the target's reserved bytes;
    negative when it does not fit. ``verdicts`` hold every check with its
    reason and shortfall; ``verdict`` sums them up in a phrase. ``floor_ms``
    is the roofline floor; ``latency_source`` says whether Vela or the
    analytic model gave the latency; ``measured`` is the LiteRT measurement
    on the host target.

    Example:
        >>> fit = TargetFit("b", "Board", "mcu", 1.0, (1.0,), True, False, 10, -5, "too big: RAM")
        >>> fit.to_dict()["verdict"]
        'too big: RAM'
    """

    target: str
    title: str
    kind: str
    latency_ms: float
    per_op_ms: tuple[float, ...]
    fits_flash: bool
    fits_ram: bool
    flash_headroom_bytes: int
    ram_headroom_bytes: int
    verdict: str
    runtime: Runtime | None = None
    latency_source: str = ESTIMATE
    floor_ms: float | None = None
    peak: Peak | None = None
    verdicts: tuple[Verdict, ...] = ()
    notes: tuple[str, ...] = ()
    vela: VelaEstimate | None = None
    measured: Measurement | None = None

    @property
    def fits(self) -> bool:
        """True when both flash and RAM fit."""
        return self.fits_flash and self.fits_ram

    @property
    def ok(self) -> bool:
        """True when no check failed (checks that could not run do not count)."""
        return all(v.ok is not False for v in self.verdicts) and self.fits

    @property
    def floor_pct(self) -> float | None:
        """The roofline floor as a percentage of the latency: how close to the peak it runs."""
        if self.floor_ms is None or self.latency_ms <= 0:
            return None
        return 100.0 * self.floor_ms / self.latency_ms

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = dict(vars(self))
        d["per_op_ms"] = list(self.per_op_ms)
        d["fits"], d["ok"], d["floor_pct"] = self.fits, self.ok, self.floor_pct
        for key in ("runtime", "peak", "vela", "measured"):
            d[key] = d[key].to_dict() if d[key] is not None else None
        d["verdicts"] = [v.to_dict() for v in self.verdicts]
        d["notes"] = list(self.notes)
        return d


def fit_target(target: Target, model: TFLiteModel, ops: Sequence[OpCost], ram: int,
               max_latency_ms: float | None = None, measure: bool = True) -> TargetFit:
    """Estimates, checks and (on the host) measures ``model`` on ``target``.

    Args:
        target: the target, already set to the runtime the estimate is for.
        model: the model read from its file.
        ops: its per-operator costs.
        ram: the RAM it needs (planned or measured arena), in bytes.
        max_latency_ms: the user's latency budget, or None.
        measure: measure with LiteRT when ``target`` is the host.

    Example:
        >>> from edgedistill import targets
        >>> from edgedistill.tflite_file import read_tflite
        >>> from edgedistill.profile.analysis import analyze
        >>> m = read_tflite("kws_ref_model.tflite")  # doctest: +SKIP
        >>> fit_target(targets.get("nucleo-l4r5zi"), m, analyze(m), 16000).verdict  # doctest: +SKIP
        'fits'
    """
    notes: list[str] = []
    estimate = estimate_latency(target, ops)
    latency_ms, per_op, source = estimate.total_ms, estimate.per_op_ms, ESTIMATE
    flash, vela = model.size_bytes, None
    if target.runtime.name == VELA and target.npu is not None:
        try:
            vela = run_vela(model.path, target.npu, model.sha256)
        except EdgeDistillError as exc:
            notes.append(f"{exc}; latency is the analytic estimate from the NPU's MAC rate")
        else:
            per_op, cpu_ms = _vela_per_op(target, model, ops, vela)
            latency_ms, source = vela.cycles * 1000.0 / target.clock_hz + cpu_ms, VELA
            # Tensors of operators left on the CPU live in TFLM's arena, which the plan counts.
            flash, ram = vela.compiled_bytes, max(vela.sram_bytes, ram) if vela.cpu_ops \
                else vela.sram_bytes
            notes.append(f"Vela {vela.version}: {vela.accelerator_config}, {vela.system_config}, "
                         f"{vela.memory_mode}; {vela.npu_ops} NPU op(s), {len(vela.cpu_ops)} "
                         f"on the CPU; flash is the compiled model, RAM Vela's SRAM")
    measured = None
    if measure and target.kind == "host":
        try:
            measured = Measurement(**_worker.call("measure", model=model.path,
                                                  threads=target.latency.threads))
        except EdgeDistillError as exc:
            notes.append(f"not measured: {exc}")
    cpu = None if vela is None else [_opcode_by_output(model, n) for n in vela.cpu_ops]
    verdicts = (
        memory_verdict(FLASH, flash, target.model_flash_bytes,
                       "compiled model" if vela else "model file"),
        memory_verdict(RAM, ram, target.model_ram_bytes, "arena"),
        ops_verdict(target.runtime.name, model.opcodes, cpu),
        latency_verdict(latency_ms, max_latency_ms, target.runtime.id),
    )
    return TargetFit(
        target=target.name, title=target.title, kind=target.kind,
        latency_ms=latency_ms, per_op_ms=tuple(per_op),
        fits_flash=bool(verdicts[0].ok), fits_ram=bool(verdicts[1].ok),
        flash_headroom_bytes=target.model_flash_bytes - flash,
        ram_headroom_bytes=target.model_ram_bytes - ram,
        verdict=summary(verdicts), runtime=target.runtime, latency_source=source,
        floor_ms=estimate.floor_ms, peak=estimate.peak, verdicts=verdicts, notes=tuple(notes),
        vela=vela, measured=measured)


def _output_name(model: TFLiteModel, op_index: int) -> str | None:
    outputs = model.operators[op_index].outputs
    return model.tensors[outputs[0]].name if outputs else None


def _opcode_by_output(model: TFLiteModel, name: str) -> str:
    for op in model.operators:
        if op.outputs and model.tensors[op.outputs[0]].name == name:
            return op.opcode
    return "unknown"


def _vela_per_op(target: Target, model: TFLiteModel, ops: Sequence[OpCost],
                 vela: VelaEstimate) -> tuple[list[float], float]:
    """Per-operator ms (Vela's NPU cycles, or a CPU fallback's cost) and the fallbacks' sum."""
    cpu = set(vela.cpu_ops)
    to_ms = 1000.0 / target.clock_hz
    per_op, cpu_ms = [], 0.0
    for op in ops:
        name = _output_name(model, op.index)
        if name in cpu:
            # TFLM on the M55 runs a fallback op with reference kernels, which the
            # target file costs with float_slowdown whatever the dtype.
            ms = op_cycles(target, dataclasses.replace(op, dtype="float32")) * to_ms
            cpu_ms += ms
        else:
            ms = vela.per_op_cycles.get(name, 0) * to_ms
        per_op.append(ms)
    return per_op, cpu_ms
