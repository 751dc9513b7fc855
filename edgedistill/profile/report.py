"""Render a :class:`~edgedistill.profile.ProfileReport` as JSON, Markdown or rich tables.

Units are the ones people read: bytes as B / KiB / MiB, MACs as kMAC / MMAC /
GMAC, latency in ms. Large models show only their top operators by MACs.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from edgedistill._fileio import json_text
from edgedistill.profile import ProfileReport
from edgedistill.units import fmt_bytes, fmt_macs, fmt_ms

MAX_OPS_SHOWN = 30


def to_json(report: ProfileReport) -> str:
    """The report as indented JSON (``report.to_dict()``), ending in a newline.

    Example:
        >>> import json
        >>> json.loads(to_json(report))["totals"]["macs"]  # doctest: +SKIP
        2656768
    """
    return json_text(report.to_dict())


def _ram_note(report: ProfileReport) -> str:
    t = report.totals
    if t.ram_source == "measured":
        return "measured TFLite Micro arena"
    return "estimated activation arena; TFLM's own state (3-30 KiB) comes on top"


def _summary_rows(report: ProfileReport) -> list[tuple[str, str]]:
    m, t = report.model, report.totals
    io = [(f"input {s.name}", f"{list(s.shape)} {s.dtype}") for s in m.inputs]
    io += [(f"output {s.name}", f"{list(s.shape)} {s.dtype}") for s in m.outputs]
    return [
        ("model", m.path), ("sha256", m.sha256[:16] + "…"), *io,
        ("operators", f"{m.op_count} ({', '.join(m.opcodes)})"),
        ("MACs", fmt_macs(t.macs)),
        ("parameters", fmt_bytes(t.param_bytes)),
        ("flash (model file)", fmt_bytes(t.flash_bytes)),
        ("RAM", f"{fmt_bytes(t.ram_bytes)} — {_ram_note(report)}"),
    ]


def _shown_ops(report: ProfileReport) -> tuple[list[int], str]:
    """Indices of the ops to show and a caption saying what was left out."""
    indices = list(range(len(report.ops)))
    if len(indices) <= MAX_OPS_SHOWN:
        return indices, ""
    top = sorted(indices, key=lambda i: -report.ops[i].macs)[:MAX_OPS_SHOWN]
    return sorted(top), (f"top {MAX_OPS_SHOWN} of {len(indices)} operators by MACs; "
                         "the JSON output lists all")


def _target_rows(report: ProfileReport) -> list[list[str]]:
    return [[fit.target, fit.kind, fmt_ms(fit.latency_ms), fit.verdict,
             fmt_bytes(fit.flash_headroom_bytes), fmt_bytes(fit.ram_headroom_bytes)]
            for fit in report.targets]


_TARGET_HEADER = ["target", "kind", "latency (est.)", "verdict", "flash headroom", "RAM headroom"]


def _op_header(report: ProfileReport, kind: bool = True) -> list[str]:
    header = ["#", "op", *(["kind"] if kind else []), "dtype", "MACs", "% MACs", "params",
              "activations"]
    if report.targets:
        header.append(f"ms on {report.targets[0].target}")
    return header


def _op_rows(report: ProfileReport, indices: list[int], kind: bool = True) -> list[list[str]]:
    total = report.totals.macs or 1
    rows = []
    for i in indices:
        op = report.ops[i]
        row = [str(op.index), op.opcode, *([op.kind] if kind else []), op.dtype,
               fmt_macs(op.macs), f"{100 * op.macs / total:.1f}", fmt_bytes(op.param_bytes),
               fmt_bytes(op.activation_bytes)]
        if report.targets:
            row.append(fmt_ms(report.targets[0].per_op_ms[i]))
        rows.append(row)
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def to_markdown(report: ProfileReport) -> str:
    """The report as Markdown: a summary, a per-target table and a per-op table.

    Example:
        >>> print(to_markdown(report))  # doctest: +SKIP
        # Profile of kws_ref_model.tflite
        ...
    """
    name = report.model.path.replace("\\", "/").rsplit("/", 1)[-1]
    parts = [f"# Profile of {name}", "",
             _md_table(["", "value"], [[k, v] for k, v in _summary_rows(report)]), ""]
    if report.targets:
        parts += ["## Targets", "", _md_table(_TARGET_HEADER, _target_rows(report)), "",
                  "Latency is an analytic estimate (edgedistill/profile/latency.py); "
                  "headroom is what is left after the model and the target's reserved bytes.",
                  ""]
    indices, caption = _shown_ops(report)
    parts += ["## Operators", ""]
    if caption:
        parts += [f"_{caption}._", ""]
    parts += [_md_table(_op_header(report), _op_rows(report, indices)), ""]
    return "\n".join(parts)


def _rich_table(title: str, header: list[str], rows: list[list[str]], caption: str = "",
                numeric_from: int = 0) -> Table:
    table = Table(title=title, caption=caption or None, title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if i >= numeric_from else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def to_rich(report: ProfileReport) -> tuple:
    """Rich renderables for a terminal: summary, per-target table, per-op table.

    Example:
        >>> from rich.console import Console
        >>> for renderable in to_rich(report):  # doctest: +SKIP
        ...     Console().print(renderable)
    """
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for key, value in _summary_rows(report):
        summary.add_row(key, value)
    out: list = [Group(Text(f"Profile of {report.model.path}", style="bold"), summary)]
    if report.targets:
        # Short headers keep the table within an 80-column terminal.
        targets = _rich_table("Targets (latency is an estimate)",
                              ["target", "kind", "latency", "verdict", "flash left", "RAM left"],
                              [], numeric_from=2)
        for fit, row in zip(report.targets, _target_rows(report), strict=True):
            style = "green" if fit.fits else "red"
            targets.add_row(*row[:3], Text(row[3], style=style), *row[4:])
        out.append(targets)
    indices, caption = _shown_ops(report)
    # The kind column repeats the op name's information; terminals are narrow.
    title = f"Operators (ms on {report.targets[0].target})" if report.targets else "Operators"
    header = ["#", "op", "dtype", "MACs", "%", "params", "act."][: len(_op_header(report)) - 1]
    header += ["ms"] if report.targets else []
    out.append(_rich_table(title, header,
                           _op_rows(report, indices, kind=False),
                           caption=caption, numeric_from=3))
    return tuple(out)
