"""Blocks to one self-contained HTML page.

Everything the page shows is inside it: the CSS is inline and every figure is
an SVG in a ``data:`` URI, so it opens offline, from an e-mail or a CI
artifact, and never touches the network. It has no script.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from edgedistill.reports.document import Block, Cell, Facts, Figure, Heading, Note, Table

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0; background: #f6f7f9; color: #1d2330; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 .6em; }
h2 { font-size: 1.3em; margin: 1.6em 0 .5em; border-bottom: 1px solid #d8dce3; }
h3, h4, h5, h6 { font-size: 1.08em; margin: 1.3em 0 .4em; }
table { border-collapse: collapse; margin: .4em 0 1em; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e6eb; text-align: left;
         vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.n, th.n { text-align: right; white-space: nowrap; }
td.w { white-space: nowrap; }
table.facts th { background: none; text-align: left; white-space: nowrap; }
.good { color: #17803d; } .bad { color: #c0262d; font-weight: 600; } .strong { font-weight: 700; }
.note { color: #677084; font-size: .85em; }
.caption { color: #4a5263; font-style: italic; }
figure { margin: 1em 0 1.6em; }
figure img { width: 100%; max-width: 960px; height: auto; border: 1px solid #e3e6eb; }
figcaption { color: #4a5263; font-size: .9em; }
"""


def _cell(tag: str, c: Cell, numeric: bool, whole: bool = False) -> str:
    classes = " ".join(x for x in ("n" if numeric else "", "w" if whole else "", c.tone) if x)
    attr = f' class="{classes}"' if classes else ""
    note = f'<div class="note">{escape(c.note)}</div>' if c.note else ""
    text = escape(c.text).replace("\n", "<br>")
    return f"<{tag}{attr}>{text}{note}</{tag}>"


def _table(table: Table, level: int) -> list[str]:
    out = [f"<h{level}>{escape(table.title)}</h{level}>"] if table.title else []
    out.append("<table><thead><tr>" + "".join(
        f'<th{" class=n" if c.numeric else ""}>{escape(c.name)}</th>' for c in table.columns)
        + "</tr></thead><tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(_cell("td", c, col.numeric, not col.wrap)
                                    for c, col in zip(row, table.columns, strict=True)) + "</tr>")
    out.append("</tbody></table>")
    if table.caption:
        out.append(f'<p class="caption">{escape(table.caption)}</p>')
    return out


def _figure(figure: Figure) -> str:
    svg = figure.draw()
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    title = escape(figure.title)
    return (f'<figure><img alt="{title}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{title}</figcaption></figure>")


def to_html(title: str, blocks: Sequence[Block]) -> str:
    """A complete page: inline CSS, tables, and figures drawn now as inline SVG.

    Example:
        >>> page = to_html("Profile", [Heading("Profile")])
        >>> page.startswith("<!DOCTYPE html>") and "<script" not in page
        True
    """
    body: list[str] = []
    level = 1
    for block in blocks:
        if isinstance(block, Heading):
            level = min(block.level, 6)
            body.append(f"<h{level}>{escape(block.text)}</h{level}>")
        elif isinstance(block, Facts):
            body.append('<table class="facts"><tbody>' + "".join(
                f"<tr><th>{escape(k)}</th>{_cell('td', v, False)}</tr>" for k, v in block.rows)
                + "</tbody></table>")
        elif isinstance(block, Table):
            body.extend(_table(block, min(level + 1, 6)))
        elif isinstance(block, Note):
            body.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Figure):
            body.append(_figure(block))
        else:
            raise TypeError(f"not a report block: {block!r}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
