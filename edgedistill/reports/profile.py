"""The report of one profile, and the parts a comparison of several shares with it.

Units are the ones people read: bytes as B / KiB / MiB, MACs as kMAC / MMAC /
GMAC, latency in ms. Tables show at most :data:`MAX_OPS_SHOWN` operators (the
top ones by MACs); the JSON and the HTML plots have them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from edgedistill.profile import RAM_MEASURED, ProfileReport
from edgedistill.profile.fit import VELA, TargetFit
from edgedistill.reports import Report
from edgedistill.reports.document import Cell, Column, Facts, Figure, Heading, Note, Table
from edgedistill.units import fmt_bytes, fmt_macs, fmt_ms

MAX_OPS_SHOWN = 30
# Plots of more operators than this show the slowest ones; the tables say the rest.
MAX_OPS_PLOTTED = 60

ESTIMATE_NOTE = ("Latency is an estimate for the runtime named (edgedistill/profile/latency.py; "
                 "Vela's on Ethos-U targets); the roofline floor is the MACs at the target's "
                 "peak MACs per cycle, and % of peak is that floor over the estimate. Headroom "
                 "is what is left after the model and the target's reserved bytes.")


def model_name(report: ProfileReport) -> str:
    """The model's file name."""
    return PurePath(report.model.path.replace("\\", "/")).name


def estimate_error_text(error: float) -> str:
    """How far an estimate lands from a measurement, signed.

    Example:
        >>> estimate_error_text(-0.125)
        'estimate 12.5% below the measurement'
    """
    side = "above" if error >= 0 else "below"
    return f"estimate {abs(error):.1%} {side} the measurement"


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


def verdict_cell(fit: TargetFit, latency: bool = False) -> Cell:
    """The verdict, green when every check passed and red when one failed; with
    ``latency``, the latency with the verdict under it when it failed."""
    if latency:
        return Cell(fmt_ms(fit.latency_ms), tone="" if fit.ok else "bad",
                    note="" if fit.ok else fit.verdict)
    return Cell(fit.verdict, tone="good" if fit.ok else "bad")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%" if value >= 1 else f"{value:.2g}%"


def _targets_table(report: ProfileReport) -> Table:
    columns = (Column("target", wrap=False), Column("kind", terminal=False),
               Column("runtime", wrap=False),
               Column("latency (est.)", numeric=True, short="latency"),
               Column("source", terminal=False),
               Column("roofline floor", numeric=True, terminal=False),
               Column("% of peak", numeric=True, terminal=False), Column("verdict"),
               # Terminals are narrow; the verdict says whether flash fits.
               Column("flash headroom", numeric=True, terminal=False),
               Column("RAM headroom", numeric=True, short="RAM left"))
    rows = [(fit.target, fit.kind, fit.runtime.id if fit.runtime else "—",
             fmt_ms(fit.latency_ms), fit.latency_source,
             "—" if fit.floor_ms is None else fmt_ms(fit.floor_ms), _percent(fit.floor_pct),
             verdict_cell(fit), fmt_bytes(fit.flash_headroom_bytes),
             fmt_bytes(fit.ram_headroom_bytes))
            for fit in report.targets]
    return Table(columns, rows, title="Targets")


def _why_not(report: ProfileReport) -> list:
    """The failed checks with their reasons and shortfalls, the host's measurement, and
    each target's notes (Vela's configuration, why something was not measured)."""
    failed = [(fit.target, v.check, v.detail) for fit in report.targets
              for v in fit.verdicts if v.ok is False]
    blocks: list = []
    if failed:
        blocks.append(Table((Column("target", wrap=False), Column("check"), Column("reason")),
                            failed, title="Why not"))
    for fit in report.targets:
        if fit.measured is not None:
            m = fit.measured
            blocks.append(Note(
                f"{fit.target}: measured {fmt_ms(m.typical_ms)} ({m.typical} of {m.runs} runs "
                f"after {m.warmup} warm-up, {m.threads} thread(s), {m.version}) beside the "
                f"{fmt_ms(fit.latency_ms)} estimate: "
                f"{estimate_error_text(m.estimate_error(fit.latency_ms))}."))
        blocks += [Note(f"{fit.target}: {note}") for note in fit.notes]
    return blocks


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
    if len(values) <= MAX_OPS_PLOTTED:
        return list(range(len(values)))
    return sorted(sorted(range(len(values)), key=lambda i: -values[i])[:MAX_OPS_PLOTTED])


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


def needs(report: ProfileReport, fit: TargetFit) -> tuple[int, int]:
    """The flash and RAM bytes ``fit`` was checked with: Vela's compiled model and SRAM on
    an Ethos-U target, else the model file and the arena."""
    if fit.latency_source == VELA and fit.vela is not None:
        return fit.vela.compiled_bytes, max(fit.vela.sram_bytes, 1)
    return report.totals.flash_bytes, report.totals.ram_bytes


def limits_figure(reports: Sequence[ProfileReport], names: Sequence[str]) -> Figure:
    """Flash and RAM of each model against each target's limits (a limit is the need
    plus the headroom left)."""
    from edgedistill.reports import plots

    def draw() -> str:
        fits = reports[0].targets
        flash = [(n, [needs(r, f)[0] for f in r.targets]) for n, r in zip(names, reports,
                                                                          strict=True)]
        ram = [(n, [needs(r, f)[1] for f in r.targets]) for n, r in zip(names, reports,
                                                                        strict=True)]
        first = reports[0]
        flash_limits = [needs(first, f)[0] + f.flash_headroom_bytes for f in fits]
        ram_limits = [needs(first, f)[1] + f.ram_headroom_bytes for f in fits]
        return plots.against_limits([f.target for f in fits],
                                    [("flash (bytes)", flash, flash_limits),
                                     ("RAM (bytes)", ram, ram_limits)])
    subject = names[0] if len(names) == 1 else "each model"
    return Figure(f"Flash and RAM of {subject} against each target's limits", draw)


def _latency_figure(report: ProfileReport, name: str) -> Figure:
    from edgedistill.reports import plots

    fits = report.targets

    def draw() -> str:
        return plots.latency_floor([f.target for f in fits], [f.latency_ms for f in fits],
                                   [f.floor_ms for f in fits],
                                   [f.measured.typical_ms if f.measured else None for f in fits])
    return Figure(f"Estimated latency of {name} per target, with its roofline floor", draw)


def model_blocks(report: ProfileReport, name: str, with_targets: bool) -> list:
    """A model's heading, summary, targets (or, ``with_targets`` False, only the reasons
    of its failed checks), operators and figures."""
    blocks: list = [Heading(f"Profile of {name}"), _summary(report)]
    if with_targets and report.targets:
        blocks += [_targets_table(report), *_why_not(report), Note(ESTIMATE_NOTE),
                   _latency_figure(report, name), limits_figure([report], [name])]
    else:
        # A comparison's grid gives each verdict; the reasons stay with their model.
        blocks += _why_not(report)
    return [*blocks, _ops_table(report), *_op_figures(report, name)]


def profile_report(report: ProfileReport) -> Report:
    """The report of one profile: a summary, a per-target table (runtime, latency, roofline,
    verdict, headroom) with the reasons of every failed check, a per-op table, and in HTML
    the latency per target and per operator and the flash and RAM against each target's
    limits.

    Example:
        >>> r = profile_report(profile_model("kws_ref_model.tflite", targets.list_targets()))
        >>> r.render("md").splitlines()[0]  # doctest: +SKIP
        '# Profile of kws_ref_model.tflite'
    """
    name = model_name(report)
    return Report("profile", f"Profile of {name}", tuple(model_blocks(report, name, True)),
                  report.to_dict())
