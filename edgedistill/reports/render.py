"""Blocks to a terminal (rich) and to Markdown."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from edgedistill.reports.document import Block, Cell, Facts, Figure, Heading, Note, Table

# Plain-text reports (``--report FILE.txt``) are laid out for this width.
TEXT_WIDTH = 120

# Longer words (a dotted field path) fold, so the columns beside them keep some room.
_LONGEST_WORD = 24

_STYLES = {"good": "green", "bad": "bold red", "strong": "bold", "": ""}


def _text(c: Cell) -> Text:
    text = Text(c.text, style=_STYLES[c.tone])
    if c.note:
        text.append(f"\n{c.note}", style="dim")
    return text


def _rich_table(table: Table) -> RichTable:
    shown = [i for i, column in enumerate(table.columns) if column.terminal]
    out = RichTable(title=table.title or None, caption=table.caption or None,
                    title_justify="left", caption_justify="left", title_style="bold",
                    box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i in shown:
        column = table.columns[i]
        header = column.short or column.name
        # A narrow terminal may wrap a text column between words, never inside one; a
        # numeric column keeps its values whole and folds a long header (a file name).
        if column.numeric:
            shortest = max((len(row[i].text) for row in table.rows), default=1)
        else:
            shortest = min(_LONGEST_WORD, max([len(header), *(len(w) for row in table.rows
                                                              for w in row[i].text.split())]))
        out.add_column(header, justify="right" if column.numeric else "left",
                       no_wrap=not column.wrap and not column.numeric, overflow="fold",
                       min_width=shortest)
    for row in table.rows:
        out.add_row(*(_text(row[i]) for i in shown))
    return out


def _rich_facts(facts: Facts) -> RichTable:
    grid = RichTable.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in facts.rows:
        grid.add_row(key, _text(value))
    return grid


def to_rich(blocks: Sequence[Block]) -> list:
    """Rich renderables for a terminal, in order; figures are left out.

    Example:
        >>> from rich.console import Console
        >>> for renderable in to_rich(report.blocks):  # doctest: +SKIP
        ...     Console().print(renderable)
    """
    out: list = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(Text(block.text, style="bold underline" if block.level == 1 else "bold"))
        elif isinstance(block, Facts):
            out.append(_rich_facts(block))
        elif isinstance(block, Table):
            out.append(_rich_table(block))
        elif isinstance(block, Note):
            out.append(Text(block.text))
        elif not isinstance(block, Figure):
            raise TypeError(f"not a report block: {block!r}")
    return out


def to_text(blocks: Sequence[Block], width: int = TEXT_WIDTH) -> str:
    """The terminal rendering as plain text, without colours.

    Example:
        >>> print(to_text(report.blocks))  # doctest: +SKIP
    """
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False,
                      force_terminal=False, emoji=False)
    for renderable in to_rich(blocks):
        console.print(renderable)
    return buffer.getvalue()


def _md_cell(c: Cell) -> str:
    text = c.text + (f"<br>{c.note}" if c.note else "")
    text = text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")
    return f"**{text}**" if c.tone == "strong" and text else text


def _md_rows(header: Sequence[str], rows: Sequence[Sequence[Cell]], numeric: Sequence[bool]
             ) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"
    rule = ["---:" if right else "---" for right in numeric]
    return [line([h.replace("|", "\\|") for h in header]), line(rule),
            *(line([_md_cell(c) for c in row]) for row in rows)]


def to_markdown(blocks: Sequence[Block]) -> str:
    """Markdown: headings, pipe tables (a table's title one level below the last
    heading), paragraphs; figures are left out.

    Example:
        >>> to_markdown([Heading("Profile of kws"), Note("An estimate.")])
        '# Profile of kws\\n\\nAn estimate.\\n'
    """
    parts: list[str] = []
    level = 1
    for block in blocks:
        if isinstance(block, Heading):
            level = block.level
            parts.append(f"{'#' * level} {block.text}")
        elif isinstance(block, Facts):
            parts.append("\n".join(_md_rows(["", "value"], [(Cell(k), v) for k, v in block.rows],
                                            [False, False])))
        elif isinstance(block, Table):
            if block.title:
                parts.append(f"{'#' * min(level + 1, 6)} {block.title}")
            parts.append("\n".join(_md_rows([c.name for c in block.columns], block.rows,
                                            [c.numeric for c in block.columns])))
            if block.caption:
                parts.append(f"_{block.caption}_")
        elif isinstance(block, Note):
            parts.append(block.text)
        elif not isinstance(block, Figure):
            raise TypeError(f"not a report block: {block!r}")
    return "\n\n".join(parts) + "\n"
