"""Reports of hardware targets (``edgedistill targets list`` and ``show``)."""

from __future__ import annotations

from collections.abc import Iterable

from edgedistill.reports import Report
from edgedistill.reports.document import Cell, Column, Facts, Heading, Table
from edgedistill.targets.record import Target
from edgedistill.units import fmt_bytes, fmt_hz


def targets_report(targets: Iterable[Target]) -> Report:
    """One row per target: name, kind, processor, clock, flash, RAM, runtime.

    Example:
        >>> from edgedistill import targets
        >>> print(targets_report(targets.list_targets()).render("md"))  # doctest: +SKIP
    """
    targets = tuple(targets)
    # Names are what users type, so they are never cut; the processor wraps instead.
    columns = (Column("name", wrap=False), Column("kind"), Column("processor"),
               Column("clock", numeric=True), Column("flash", numeric=True),
               Column("RAM", numeric=True), Column("runtime", terminal=False))
    rows = [(t.name, t.kind, t.processor, fmt_hz(t.clock_hz), fmt_bytes(t.flash_bytes),
             fmt_bytes(t.ram_bytes), str(t.runtime)) for t in targets]
    title = "Hardware targets"
    return Report("targets", title, (Heading(title), Table(columns, rows)),
                  [t.to_dict() for t in targets])


def _display(field: str, value: object) -> str:
    if field.endswith("clock_hz"):
        return f"{fmt_hz(value)} ({value})"
    if field.endswith("_bytes"):
        return f"{fmt_bytes(value)} ({value})"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _leaves(data: object, prefix: str = ""):
    """(dotted field, value) for every leaf of ``to_dict()``, named as in ``sources``."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            yield from _leaves(value, f"{prefix}[{i}]")
    elif data is not None:
        yield prefix, data


def target_report(target: Target) -> Report:
    """Every field of one target with the source of its value under it.

    Example:
        >>> from edgedistill import targets
        >>> print(target_report(targets.get("pixel-4")).render("table"))  # doctest: +SKIP
    """
    data = {k: v for k, v in target.to_dict().items() if k not in ("sources", "path")}
    rows = [(field, Cell(_display(field, value), note=target.sources.get(field, "")))
            for field, value in _leaves(data)]
    return Report("target", target.title, (
        Heading(target.title), Facts([("file", target.path)]),
        Table((Column("field"), Column("value / source")), rows)),
        target.to_dict())
