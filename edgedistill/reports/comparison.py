"""The report of several profiles side by side (``edgedistill profile A B ...``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from edgedistill.profile import ProfileReport
from edgedistill.reports import Report
from edgedistill.reports.document import Column, Figure, Heading, Note, Table, demoted
from edgedistill.reports.profile import ESTIMATE_NOTE, limits_figure, model_blocks, verdict_cell
from edgedistill.units import fmt_bytes, fmt_macs


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
    """Targets x models: the estimated latency, red with the verdict when a check failed."""
    columns = (Column("target", wrap=False), Column("runtime", wrap=False),
               *(Column(n, numeric=True) for n in names))
    rows = [(fit.target, fit.runtime.id if fit.runtime else "—",
             *(verdict_cell(report.targets[i], latency=True) for report in reports))
            for i, fit in enumerate(reports[0].targets)]
    return Table(columns, rows, title="Estimated latency per target",
                 caption="red: a check failed (the verdict under the latency)")


def comparison_report(reports: Sequence[ProfileReport]) -> Report:
    """Several profiles side by side: the models, a targets x models grid of latency and
    verdict, then each model's summary and operators; in HTML the latency and flash and RAM
    of every model against each target's limits.

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
        blocks += [_grid(reports, names), Note(ESTIMATE_NOTE),
                   Figure("Estimated latency of each model per target", latency),
                   limits_figure(reports, names)]
    for report, name in zip(reports, names, strict=True):
        blocks += demoted(model_blocks(report, name, with_targets=False))
    return Report("profile-comparison", title, tuple(blocks), [r.to_dict() for r in reports])
