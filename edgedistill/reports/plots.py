"""Plots for the HTML page, as SVG text.

matplotlib is imported when a plot is drawn, never before, and only its
object-oriented API is used: a :class:`matplotlib.figure.Figure` printed by
the SVG backend, so no pyplot state, GUI backend or display is involved.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

GOOD, BAD, LIMIT = "#3b8f5a", "#c0392b", "#1d2330"
# Colours of the models in a comparison (matplotlib's tab10, colour-blind safer first).
SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf", "#d62728")
_ROW_INCHES = 0.24
_WIDTH_INCHES = 9.0


def _figure(rows: int, panels: int = 1):
    from matplotlib.figure import Figure

    height = max(2.2, 0.9 + _ROW_INCHES * rows)
    fig = Figure(figsize=(_WIDTH_INCHES, height), layout="constrained")
    return fig, fig.subplots(1, panels, sharey=True, squeeze=False)[0]


def _group_rows(labels: int, series: int) -> float:
    """Rows' worth of height for ``labels`` groups of ``series`` bars each."""
    return labels * (0.7 + 0.3 * max(1, series))


def _svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    # Text stays text (small, sharp, selectable), and no date makes the output reproducible.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _rows(ax, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the first row on top, as in the tables
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="#dde1e7", linewidth=0.6)
    ax.set_axisbelow(True)


def bars(labels: Sequence[str], values: Sequence[float], xlabel: str) -> str:
    """One horizontal bar per label (per op, say), top to bottom.

    Example:
        >>> svg = bars(["#0 CONV_2D", "#1 SOFTMAX"], [12.5, 0.1], "ms on nucleo-l4r5zi")
        >>> svg.lstrip().startswith("<?xml")
        True
    """
    fig, (ax,) = _figure(len(labels))
    ax.barh(range(len(values)), values, color=SERIES[0], height=0.7)
    _rows(ax, labels)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def latency_floor(labels: Sequence[str], latency: Sequence[float],
                  floor: Sequence[float | None], measured: Sequence[float | None]) -> str:
    """One bar per label (target) for the estimate, a tick at its floor and a diamond at
    its measurement, where there are ones, on a log axis.

    Example:
        >>> svg = latency_floor(["nucleo", "host"], [195.0, 0.07], [11.0, 0.008], [None, 0.05])
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, (ax,) = _figure(len(labels))
    ax.barh(range(len(latency)), latency, color=SERIES[0], height=0.7)
    rows = [i for i, f in enumerate(floor) if f is not None]
    ax.vlines([floor[i] for i in rows], [i - 0.4 for i in rows], [i + 0.4 for i in rows],
              color=LIMIT, linewidth=2)
    ran = [i for i, m in enumerate(measured) if m is not None]
    ax.plot([measured[i] for i in ran], ran, "D", color=SERIES[1], markersize=7)
    _rows(ax, labels)
    ax.set_xscale("log")
    ax.set_xlabel("ms per inference")
    ax.legend(handles=[Patch(color=SERIES[0], label="estimate"),
                       Line2D([], [], color=LIMIT, linewidth=2, label="roofline floor"),
                       Line2D([], [], marker="D", linestyle="", color=SERIES[1],
                              label="measured")], loc="lower right", fontsize="small")
    return _svg(fig)


def grouped_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
                 xlabel: str, log: bool = False) -> str:
    """One group of bars per label (per target), one bar per series (per model).

    Example:
        >>> svg = grouped_bars(["nucleo", "pi-4"], [("kws", [180, 2]), ("vww", [600, 9])], "ms",
        ...                    log=True)
    """
    fig, (ax,) = _figure(_group_rows(len(labels), len(series)))
    height = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series):
        offsets = [i - 0.4 + height * (k + 0.5) for i in range(len(labels))]
        ax.barh(offsets, values, height=height, label=name, color=SERIES[k % len(SERIES)])
    _rows(ax, labels)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    if len(series) > 1:
        ax.legend(loc="lower right", fontsize="small")
    return _svg(fig)


def against_limits(labels: Sequence[str],
                   panels: Sequence[tuple[str, Sequence[tuple[str, Sequence[float]]],
                                          Sequence[float]]]) -> str:
    """Needs against capacities: per panel (flash, RAM), per label (target) a bar per
    series (model), green when it fits under the label's limit line and red when not.

    Args:
        labels: one row per target.
        panels: (axis label, [(series name, need per row)], limit per row).
            The x axis is logarithmic: capacities span kilobytes to gigabytes.

    Example:
        >>> svg = against_limits(["nucleo"], [("flash (bytes)", [("kws", [53936])], [1966080])])
    """
    fig, axes = _figure(_group_rows(len(labels), len(panels[0][1])), len(panels))
    for ax, (xlabel, series, limits) in zip(axes, panels, strict=True):
        height = 0.8 / max(1, len(series))
        for k, (_, needs) in enumerate(series):
            offsets = [i - 0.4 + height * (k + 0.5) for i in range(len(labels))]
            colours = [GOOD if need <= limit else BAD
                       for need, limit in zip(needs, limits, strict=True)]
            edge = SERIES[k % len(SERIES)] if len(series) > 1 else None
            ax.barh(offsets, [max(n, 1) for n in needs], height=height, color=colours,
                    edgecolor=edge, linewidth=1.2 if edge else 0)
        for i, limit in enumerate(limits):
            ax.vlines(limit, i - 0.45, i + 0.45, color=LIMIT, linewidth=2)
        _rows(ax, labels)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
    axes[0].legend(handles=_limit_legend([name for name, _ in panels[0][1]]),
                   loc="lower right", fontsize="small")
    return _svg(fig)


def _limit_legend(names: Sequence[str]) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=LIMIT, linewidth=2, label="limit"),
               Patch(color=GOOD, label="fits"), Patch(color=BAD, label="too big")]
    if len(names) > 1:
        handles += [Patch(facecolor="white", edgecolor=SERIES[k % len(SERIES)], linewidth=1.2,
                          label=name) for k, name in enumerate(names)]
    return handles


def heatmap(rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]],
            label: str) -> str:
    """A rows x columns grid of values (each op's share of each target's latency, say).

    Example:
        >>> svg = heatmap(["#0 CONV_2D"], ["nucleo", "pi-4"], [[90.0, 80.0]], "% of latency")
    """
    fig, (ax,) = _figure(len(rows))
    image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right")
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    return _svg(fig)
