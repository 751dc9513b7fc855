"""Reports of profiles: one model, or several side by side.

Units are the ones people read: bytes as B / KiB / MiB, MACs as kMAC / MMAC /
GMAC, latency in ms. Tables show at most :data:`MAX_OPS_SHOWN` operators (the
top ones by MACs); the JSON and the HTML plots have them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from edgedistill.profile import RAM_MEASURED, ProfileReport
from edgedistill.reports import Report
from edgedistill.reports.document import (
    Cell,
    Column,
    Facts,
    Figure,
    Heading,
    Note,
    Table,
    demoted,
)
from edgedistill.units import fmt_bytes, fmt_macs, fmt_ms

MAX_OPS_SHOWN = 30
# Plots of more operators than this show the slowest ones; the tables say the rest.
MAX_OPS_PLOTTED = 60

_ESTIMATE_NOTE = ("Latency is an analytic estimate (edgedistill/profile/latency.py); headroom "
                  "is what is left after the model and the target's reserved bytes.")


def _ram_note(report: ProfileReport) -> str:
    if report.totals.ram_source == RAM_MEASURED:
        return "measured TFLite Micro arena"
    return "estimated activation arena; TFLM's own state (3-30 KiB) comes on top"


def _summary(report: ProfileReport) -> Facts:
    m, t = report.model, report.totals
    io = [(f"input {s.name}", f"{list(s.shape)} {s.dtype}") for s in m.inputs]
    io += [(f"output {s.name}", f"{list(s.shape)} {s.dtype}") for s in m.outputs]
    return Facts([
        ("model", m.path), ("sha256", m.sha256[:16] + "…"), *io,
        ("operators", f"{m.op_count} ({', '.join(m.opcodes)})"),
        ("MACs", fmt_macs(t.macs)),
        ("parameters", fmt_bytes(t.param_bytes)),
        ("flash (model file)", fmt_bytes(t.flash_bytes)),
        ("RAM", f"{fmt_bytes(t.ram_bytes)} — {_ram_note(report)}"),
    ])


def _verdict(fit) -> Cell:
    return Cell(fit.verdict, tone="good" if fit.fits else "bad")


def _targets_table(report: ProfileReport) -> Table:
    columns = (Column("target", wrap=False), Column("kind"),
               Column("latency (est.)", numeric=True, short="latency"), Column("verdict"),
               Column("flash headroom", numeric=True, short="flash left"),
               Column("RAM headroom", numeric=True, short="RAM left"))
    rows = [(fit.target, fit.kind, fmt_ms(fit.latency_ms), _verdict(fit),
             fmt_bytes(fit.flash_headroom_bytes), fmt_bytes(fit.ram_headroom_bytes))
            for fit in report.targets]
    return Table(columns, rows, title="Targets")


def _shown_ops(report: ProfileReport) -> tuple[list[int], str]:
    """Indices of the ops a table shows and a caption saying what was left out."""
    indices = list(range(len(report.ops)))
    if len(indices) <= MAX_OPS_SHOWN:
        return indices, ""
    top = sorted(indices, key=lambda i: -report.ops[i].macs)[:MAX_OPS_SHOWN]
    return sorted(top), (f"top {MAX_OPS_SHOWN} of {len(indices)} operators by MACs; "
                         "the JSON output lists all")


def _ops_table(report: ProfileReport) -> Table:
    first = report.targets[0] if report.targets else None
    columns = [Column("#", numeric=True), Column("op", wrap=False),
               # The kind repeats the op's name; terminals are narrow.
               Column("kind", terminal=False), Column("dtype"),
               Column("MACs", numeric=True), Column("% MACs", numeric=True, short="%"),
               Column("params", numeric=True),
               Column("activations", numeric=True, short="act.")]
    if first:
        columns.append(Column(f"ms on {first.target}", numeric=True, short="ms"))
    total = report.totals.macs or 1
    indices, caption = _shown_ops(report)
    rows = []
    for i in indices:
        op = report.ops[i]
        row = [str(op.index), op.opcode, op.kind, op.dtype, fmt_macs(op.macs),
               f"{100 * op.macs / total:.1f}", fmt_bytes(op.param_bytes),
               fmt_bytes(op.activation_bytes)]
        rows.append(row + ([fmt_ms(first.per_op_ms[i])] if first else []))
    title = f"Operators (ms on {first.target})" if first else "Operators"
    return Table(tuple(columns), rows, title=title, caption=caption)


def _op_labels(report: ProfileReport, indices: Sequence[int]) -> list[str]:
    return [f"#{report.ops[i].index} {report.ops[i].opcode}" for i in indices]


def _plotted(values: Sequence[float]) -> list[int]:
    """The ops a plot shows, in graph order: all, or the slowest :data:`MAX_OPS_PLOTTED`."""
    indices = range(len(values))
    if len(values) <= MAX_OPS_PLOTTED:
        return list(indices)
    return sorted(sorted(indices, key=lambda i: -values[i])[:MAX_OPS_PLOTTED])


def _op_figures(report: ProfileReport, name: str) -> list[Figure]:
    from edgedistill.reports import plots

    if not report.targets:
        macs = [op.macs for op in report.ops]
        shown = _plotted(macs)
        return [Figure(f"MACs per operator of {name}", lambda: plots.bars(
            _op_labels(report, shown), [macs[i] for i in shown], "MACs"))]
    first = report.targets[0]
    shown = _plotted(first.per_op_ms)
    figures = [Figure(f"Estimated latency per operator of {name} on {first.title}",
                      lambda: plots.bars(_op_labels(report, shown),
                                         [first.per_op_ms[i] for i in shown],
                                         f"ms on {first.target} (estimate)"))]
    if len(report.targets) > 1:
        def shares() -> str:
            values = [[100 * fit.per_op_ms[i] / (fit.latency_ms or 1) for fit in report.targets]
                      for i in shown]
            return plots.heatmap(_op_labels(report, shown),
                                 [fit.target for fit in report.targets], values,
                                 "% of the target's latency")
        figures.append(Figure(f"Each operator's share of the latency of {name}, per target",
                              shares))
    return figures


def _limits_figure(reports: Sequence[ProfileReport], names: Sequence[str]) -> Figure:
    """Flash and RAM of each model against each target's limits (a limit is the need plus
    the headroom left)."""
    from edgedistill.reports import plots

    fits = reports[0].targets

    def draw() -> str:
        pairs = list(zip(names, reports, strict=True))
        flash = [(n, [r.totals.flash_bytes] * len(fits)) for n, r in pairs]
        ram = [(n, [r.totals.ram_bytes] * len(fits)) for n, r in pairs]
        first = reports[0]
        flash_limits = [first.totals.flash_bytes + f.flash_headroom_bytes for f in fits]
        ram_limits = [first.totals.ram_bytes + f.ram_headroom_bytes for f in fits]
        return plots.against_limits([f.target for f in fits],
                                    [("flash (bytes)", flash, flash_limits),
                                     ("RAM (bytes)", ram, ram_limits)])
    subject = names[0] if len(names) == 1 else "each model"
    return Figure(f"Flash and RAM of {subject} against each target's limits", draw)


def _name(report: ProfileReport) -> str:
    return PurePath(report.model.path.replace("\\", "/")).name


def _model_blocks(report: ProfileReport, name: str, with_targets: bool) -> list:
    blocks: list = [Heading(f"Profile of {name}"), _summary(report)]
    if with_targets and report.targets:
        blocks += [_targets_table(report), Note(_ESTIMATE_NOTE),
                   _limits_figure([report], [name])]
    return [*blocks, _ops_table(report), *_op_figures(report, name)]


def profile_report(report: ProfileReport) -> Report:
    """The report of one profile: a summary, a per-target table, a per-op table, and in
    HTML the flash and RAM against each target's limits and the latency per operator.

    Example:
        >>> r = profile_report(profile_model("kws_ref_model.tflite", targets.list_targets()))
        >>> r.render("md").splitlines()[0]  # doctest: +SKIP
        '# Profile of kws_ref_model.tflite'
    """
    name = _name(report)
    return Report("profile", f"Profile of {name}", tuple(_model_blocks(report, name, True)),
                  report.to_dict())


def _distinct_names(reports: Sequence[ProfileReport]) -> list[str]:
    """File names, with as many parent folders as it takes to tell them apart."""
    paths = [PurePath(r.model.path.replace("\\", "/")) for r in reports]
    depth = 1
    while True:
        names = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(names)) == len(names) or depth >= max(len(p.parts) for p in paths):
            return names
        depth += 1


def _models_table(reports: Sequence[ProfileReport], names: Sequence[str]) -> Table:
    columns = (Column("model", wrap=False), Column("operators", numeric=True, short="ops"),
               Column("MACs", numeric=True), Column("parameters", numeric=True, short="params"),
               Column("flash", numeric=True), Column("RAM", numeric=True),
               Column("RAM is", terminal=False))
    rows = [(n, str(r.model.op_count), fmt_macs(r.totals.macs), fmt_bytes(r.totals.param_bytes),
             fmt_bytes(r.totals.flash_bytes), fmt_bytes(r.totals.ram_bytes),
             r.totals.ram_source) for n, r in zip(names, reports, strict=True)]
    return Table(columns, rows, title="Models")


def _grid(reports: Sequence[ProfileReport], names: Sequence[str]) -> Table:
    """Targets x models: the estimated latency, red with the verdict when it does not fit."""
    columns = (Column("target", wrap=False),
               *(Column(n, numeric=True) for n in names))
    rows = []
    for i, fit in enumerate(reports[0].targets):
        cells = []
        for report in reports:
            f = report.targets[i]
            cells.append(Cell(fmt_ms(f.latency_ms), tone="" if f.fits else "bad",
                              note="" if f.fits else f.verdict))
        rows.append((fit.target, *cells))
    return Table(columns, rows, title="Estimated latency per target",
                 caption="red: does not fit (the reason below the latency)")


def comparison_report(reports: Sequence[ProfileReport]) -> Report:
    """Several profiles side by side: the models, a targets x models grid of latency and
    fit, then each model's summary and operators; in HTML the latency and flash and RAM of
    every model against each target's limits.

    Raises:
        ValueError: fewer than two reports, or reports on different targets.

    Example:
        >>> chosen = targets.list_targets()
        >>> r = comparison_report([profile_model(p, chosen) for p in ("a.tflite", "b.tflite")])
        >>> [p["model"]["path"] for p in r.to_dict()]  # doctest: +SKIP
        ['a.tflite', 'b.tflite']
    """
    if len(reports) < 2:
        raise ValueError("a comparison needs two profiles or more")
    chosen = [f.target for f in reports[0].targets]
    if any([f.target for f in r.targets] != chosen for r in reports):
        raise ValueError("the profiles to compare must be on the same targets, in one order")
    names = _distinct_names(reports)
    title = f"Comparison of {len(reports)} models"
    blocks: list = [Heading(title), _models_table(reports, names)]
    if chosen:
        from edgedistill.reports import plots

        def latency() -> str:
            return plots.grouped_bars(chosen, [(n, [f.latency_ms for f in r.targets])
                                               for n, r in zip(names, reports, strict=True)],
                                      "estimated latency (ms)", log=True)
        blocks += [_grid(reports, names), Note(_ESTIMATE_NOTE),
                   Figure("Estimated latency of each model per target", latency),
                   _limits_figure(reports, names)]
    for report, name in zip(reports, names, strict=True):
        blocks += demoted(_model_blocks(report, name, with_targets=False))
    return Report("profile-comparison", title, tuple(blocks), [r.to_dict() for r in reports])
