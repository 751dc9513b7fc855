"""Verdicts per target: fits flash, fits RAM, all ops supported, fast enough.

Each check is a :class:`Verdict`: ``ok`` True or False, or None when it could
not be checked (no latency budget given, no operator list for the runtime),
a one-line ``detail``, and when it fails the ``shortfall`` in bytes, ms or
operators.

Operators a runtime supports: TFLite Micro registers the builtins of
:data:`edgedistill.micro.TFLM_RESOLVER_METHODS`; LiteRT runs every builtin;
on an Ethos-U target the operators Vela leaves on the CPU run on TFLM. A
custom operator runs nowhere until the application registers a kernel for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgedistill.units import fmt_bytes, fmt_ms

FLASH, RAM, OPS, LATENCY = "flash", "ram", "ops", "latency"


@dataclass(frozen=True)
class Verdict:
    """One check of a model against a target.

    Example:
        >>> v = Verdict("ram", False, "needs 12 KiB, 8 KiB free", 4096, "bytes")
        >>> v.to_dict()["shortfall"]
        4096
    """

    check: str
    ok: bool | None
    detail: str
    shortfall: float | None = None
    unit: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dict(vars(self))


def memory_verdict(check: str, need: int, free: int, what: str) -> Verdict:
    """Whether ``need`` bytes fit in the ``free`` bytes left for the model.

    Example:
        >>> memory_verdict("flash", 300, 200, "model file").detail
        'model file 300 B > 200 B free: short by 100 B'
    """
    if need <= free:
        return Verdict(check, True, f"{what} {fmt_bytes(need)} <= {fmt_bytes(free)} free")
    return Verdict(check, False, f"{what} {fmt_bytes(need)} > {fmt_bytes(free)} free: short by "
                                 f"{fmt_bytes(need - free)}", need - free, "bytes")


def latency_verdict(estimate_ms: float, budget_ms: float | None, runtime: str) -> Verdict:
    """The estimate against the user's budget (``--max-latency-ms``); None without one.

    Example:
        >>> latency_verdict(12.5, 10.0, "tflm-cmsis-nn-2020").shortfall
        2.5
    """
    if budget_ms is None:
        return Verdict(LATENCY, None, "no latency budget given (--max-latency-ms)")
    said = f"estimate {fmt_ms(estimate_ms)} ({runtime})"
    if estimate_ms <= budget_ms:
        return Verdict(LATENCY, True, f"{said} <= budget {fmt_ms(budget_ms)}")
    return Verdict(LATENCY, False, f"{said} > budget {fmt_ms(budget_ms)}: over by "
                                   f"{fmt_ms(estimate_ms - budget_ms)}",
                   estimate_ms - budget_ms, "ms")


def ops_verdict(runtime_name: str, opcodes: Sequence[str],
                cpu_opcodes: Sequence[str] | None = None) -> Verdict:
    """Whether every operator of the model has a kernel in the runtime.

    Args:
        runtime_name: ``tflm``, ``litert``, ``vela`` or another runtime name.
        opcodes: the model's operator codes (``CUSTOM:<name>`` for custom ones).
        cpu_opcodes: on a Vela target, the codes of the operators Vela left on
            the CPU (None when Vela did not run: they are then not known).

    Example:
        >>> ops_verdict("tflm", ["CONV_2D", "CUSTOM:my_op"]).detail
        'no kernel in tflm for: CUSTOM:my_op (a custom op needs a kernel the application registers)'
    """
    if runtime_name == "vela":
        if cpu_opcodes is None:
            return Verdict(OPS, None, "Vela did not run: which operators the NPU takes is "
                                      "not known")
        missing = _unsupported("tflm", cpu_opcodes)
        where = (f"{len(cpu_opcodes)} operator(s) left on the CPU (TFLM): "
                 f"{', '.join(sorted(set(cpu_opcodes)))}" if cpu_opcodes
                 else "every operator runs on the NPU")
        if not missing:
            return Verdict(OPS, True, where)
        return Verdict(OPS, False, f"{where}; no TFLM kernel for: {', '.join(missing)}",
                       len(missing), "ops")
    if runtime_name not in ("tflm", "litert"):
        return Verdict(OPS, None, f"no operator list for {runtime_name}; not checked")
    missing = _unsupported(runtime_name, opcodes)
    if not missing:
        return Verdict(OPS, True, f"all {len(set(opcodes))} operator kinds have a kernel "
                                  f"in {runtime_name}")
    custom = " (a custom op needs a kernel the application registers)" if any(
        m.startswith("CUSTOM:") for m in missing) else ""
    return Verdict(OPS, False, f"no kernel in {runtime_name} for: {', '.join(missing)}{custom}",
                   len(missing), "ops")


def _unsupported(runtime_name: str, opcodes: Sequence[str]) -> list[str]:
    if runtime_name == "tflm":
        from edgedistill.micro import TFLM_RESOLVER_METHODS

        return sorted({op for op in opcodes if op not in TFLM_RESOLVER_METHODS})
    return sorted({op for op in opcodes if op.startswith("CUSTOM:")})


def summary(verdicts: Sequence[Verdict]) -> str:
    """One phrase for a table cell: ``fits``, or what fails (``too big: flash, RAM; too slow``).

    Example:
        >>> summary([Verdict("ram", False, ""), Verdict("latency", None, "")])
        'too big: RAM'
    """
    failed = {v.check for v in verdicts if v.ok is False}
    parts = []
    big = [name for check, name in ((FLASH, "flash"), (RAM, "RAM")) if check in failed]
    if big:
        parts.append("too big: " + ", ".join(big))
    if OPS in failed:
        parts.append("unsupported ops")
    if LATENCY in failed:
        parts.append("too slow")
    return "; ".join(parts) or "fits"
