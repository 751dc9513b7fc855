"""Rich renderables of targets for the CLI (``edgedistill targets``)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from edgedistill.targets.schema import Target
from edgedistill.units import fmt_bytes, fmt_hz


def targets_table(targets: Iterable[Target]) -> Table:
    """One row per target: name, kind, processor, clock, flash, RAM.

    Example:
        >>> from rich.console import Console
        >>> from edgedistill import targets
        >>> Console(width=200).print(targets_table(targets.list_targets()))  # doctest: +SKIP
    """
    table = Table(title="Hardware targets")
    # Names are what users type, so they are never cut; the processor wraps instead.
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("processor", ratio=1)
    for column in ("clock", "flash", "RAM"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in targets:
        table.add_row(
            t.name,
            t.kind,
            t.processor,
            fmt_hz(t.clock_hz),
            fmt_bytes(t.flash_bytes),
            fmt_bytes(t.ram_bytes),
        )
    return table


def _display(field: str, value: object) -> str:
    if field.endswith("clock_hz"):
        return f"{fmt_hz(value)} ({value})"
    if field.endswith("_bytes"):
        return f"{fmt_bytes(value)} ({value})"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _rows(data: object, prefix: str = ""):
    """(dotted field, value) for every leaf of ``to_dict()``, named as in ``sources``."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _rows(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            yield from _rows(value, f"{prefix}[{i}]")
    elif data is not None:
        yield prefix, data


def target_details(target: Target) -> Group:
    """Every field of one target with the source of its value.

    Example:
        >>> from rich.console import Console
        >>> from edgedistill import targets
        >>> Console(width=200).print(target_details(targets.get("pixel-4")))  # doctest: +SKIP
    """
    header = Text.assemble((target.title, "bold"), f"\n{target.path}")
    # The source goes under its value, so it stays readable on an 80-column terminal.
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("field", style="cyan", overflow="fold", max_width=34)
    table.add_column("value / source", overflow="fold")
    data = {k: v for k, v in target.to_dict().items() if k not in ("sources", "path")}
    for field, value in _rows(data):
        source = target.sources.get(field)
        cell = Text(_display(field, value))
        if source:
            cell.append(f"\n{source}", style="dim")
        table.add_row(field, cell)
    return Group(header, table)
