"""What a report is made of: headings, facts, tables, notes and figures.

A builder (:mod:`.profile`, :mod:`.stages`, :mod:`.targets`) describes a
result once, in these blocks, and every format is rendered from them, so the
terminal table, the Markdown and the HTML page cannot drift apart. Figures
are drawn only for HTML, and only when it is rendered, so the other formats
never import matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

TONES = ("", "good", "bad", "strong")


@dataclass(frozen=True)
class Cell:
    """One table or fact value.

    Args:
        text: what is shown.
        tone: ``good`` (green), ``bad`` (red), ``strong`` (bold) or ``""``.
        note: a second, quieter line under the text, e.g. the source of a value.

    Example:
        >>> Cell("too big: RAM", tone="bad").tone
        'bad'
    """

    text: str
    tone: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.tone not in TONES:
            raise ValueError(f"tone {self.tone!r}: one of {TONES}")


def cell(value: Cell | str) -> Cell:
    """``value`` as a :class:`Cell` (a string becomes a plain one).

    Example:
        >>> cell("3 ms")
        Cell(text='3 ms', tone='', note='')
    """
    return value if isinstance(value, Cell) else Cell(str(value))


@dataclass(frozen=True)
class Column:
    """A table column.

    Args:
        name: the header.
        numeric: right-aligned, never wrapped.
        short: a shorter header for the terminal, where width is scarce.
        terminal: False leaves the column out of the terminal table (it
            repeats what another column says).
        wrap: False keeps the column on one line (names people type).

    Example:
        >>> Column("flash headroom", numeric=True, short="flash left").short
        'flash left'
    """

    name: str
    numeric: bool = False
    short: str | None = None
    terminal: bool = True
    wrap: bool = True


@dataclass(frozen=True)
class Table:
    """Rows under a header; the title is a sub-heading in Markdown and HTML.

    Example:
        >>> t = Table((Column("model"), Column("MACs", numeric=True)), [("kws", "2.66 MMAC")])
        >>> t.rows[0][1].text
        '2.66 MMAC'
    """

    columns: tuple[Column, ...]
    rows: Sequence[Sequence[Cell | str]]
    title: str = ""
    caption: str = ""

    def __post_init__(self) -> None:
        rows = tuple(tuple(cell(c) for c in row) for row in self.rows)
        for row in rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: a row of {len(row)} cells under "
                                 f"{len(self.columns)} columns")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", rows)


@dataclass(frozen=True)
class Facts:
    """Name-value pairs, such as a model's size and MACs.

    Example:
        >>> Facts([("MACs", "2.66 MMAC")]).rows[0][1].text
        '2.66 MMAC'
    """

    rows: Sequence[tuple[str, Cell | str]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple((str(k), cell(v)) for k, v in self.rows))


@dataclass(frozen=True)
class Heading:
    """A section heading; level 1 is the report's title.

    Example:
        >>> Heading("Targets", 2).level
        2
    """

    text: str
    level: int = 1


@dataclass(frozen=True)
class Note:
    """A paragraph of explanation.

    Example:
        >>> Note("Latency is an estimate.").text
        'Latency is an estimate.'
    """

    text: str


@dataclass(frozen=True)
class Figure:
    """A plot, drawn (as SVG text) only when an HTML page is rendered.

    Example:
        >>> Figure("latency", lambda: "<svg/>").draw()
        '<svg/>'
    """

    title: str
    draw: Callable[[], str] = field(repr=False)


Block = Heading | Facts | Table | Note | Figure


def demoted(blocks: Sequence[Block], by: int = 1) -> tuple[Block, ...]:
    """``blocks`` with every heading ``by`` levels deeper, to nest them in a larger report.

    Example:
        >>> demoted([Heading("Profile")])[0].level
        2
    """
    return tuple(Heading(b.text, b.level + by) if isinstance(b, Heading) else b for b in blocks)
