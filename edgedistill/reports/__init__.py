"""One home for reports: every result the commands print, in every format.

A :class:`Report` is built from a result by one of the builders below, and
renders as a terminal table (rich), JSON, Markdown or a self-contained HTML
page. The JSON of a report is its result's own ``to_dict()``; its schema is
``schema.json`` beside this file (:func:`json_schema`), one definition per
``Report.kind``.

Builders (each imports only what it needs, so reporting on a profile never
imports TensorFlow):

- :func:`edgedistill.reports.profile.profile_report`,
  :func:`edgedistill.reports.comparison.comparison_report`
- :mod:`edgedistill.reports.training`: ``distill_report``, ``recipe_report``,
  ``recipes_report``
- :mod:`edgedistill.reports.deploy`: ``conversion_report``,
  ``quantization_report``, ``micro_report``, ``convert_command_report``
- :func:`edgedistill.reports.pipeline.pipeline_report`
- :mod:`edgedistill.reports.targets`: ``targets_report``, ``target_report``

Example:
    >>> from edgedistill import targets
    >>> from edgedistill.profile import profile_model
    >>> from edgedistill.reports.profile import profile_report
    >>> profile = profile_model("kws.tflite", targets.list_targets())  # doctest: +SKIP
    >>> report = profile_report(profile)  # doctest: +SKIP
    >>> Path("kws.html").write_text(report.render("html"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePath
from typing import Any

from edgedistill._fileio import json_text
from edgedistill.errors import EdgeDistillError
from edgedistill.reports.document import Block, Heading, demoted

FORMATS = ("table", "json", "md", "html")
# What ``--report FILE`` writes, by the file's suffix.
SUFFIXES = {".txt": "table", ".json": "json", ".md": "md", ".html": "html", ".htm": "html"}


@dataclass(frozen=True)
class Report:
    """A result described once and rendered in any of :data:`FORMATS`.

    Attributes:
        kind: the result's kind, also the ``$defs`` entry of ``schema.json``
            its JSON follows (``profile``, ``profile-comparison``, ...).
        title: the page title.
        blocks: what the table, Markdown and HTML renderings show.
        data: the JSON value: the result's ``to_dict()``.

    Example:
        >>> report = Report("note", "Hello", (Heading("Hello"),), {"greeting": "hello"})
        >>> report.render("md")
        '# Hello\\n'
    """

    kind: str
    title: str
    blocks: tuple[Block, ...]
    data: Any

    def to_dict(self) -> Any:
        """The JSON value (an object, or a list for a list of results)."""
        return self.data

    def renderables(self) -> list:
        """Rich renderables for a terminal (colours, wrapping to its width)."""
        from edgedistill.reports.render import to_rich

        return to_rich(self.blocks)

    def render(self, fmt: str) -> str:
        """The report as text in ``fmt``: ``table`` (plain text), ``json``, ``md`` or ``html``.

        Raises:
            ValueError: ``fmt`` is not one of :data:`FORMATS`.
        """
        if fmt == "json":
            return json_text(self.data)
        if fmt == "md":
            from edgedistill.reports.render import to_markdown

            return to_markdown(self.blocks)
        if fmt == "html":
            from edgedistill.reports.html import to_html

            return to_html(self.title, self.blocks)
        if fmt == "table":
            from edgedistill.reports.render import to_text

            return to_text(self.blocks)
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")


def combine(kind: str, title: str, parts: Mapping[str, Report | None],
            data: Any = None) -> Report:
    """One report of several: a title, then each part one level down.

    Args:
        kind: the combined report's kind.
        title: its title (a level-1 heading).
        parts: the parts by name, in order; None parts are left out of the
            blocks and are ``null`` in the JSON.
        data: the JSON value; by default ``{name: part.data}``.

    Example:
        >>> a = Report("a", "A", (Heading("A"),), {"x": 1})
        >>> combine("ab", "Both", {"a": a, "b": None}).data
        {'a': {'x': 1}, 'b': None}
    """
    blocks: list[Block] = [Heading(title)]
    for part in parts.values():
        if part is not None:
            blocks.extend(demoted(part.blocks))
    if data is None:
        data = {name: None if part is None else part.data for name, part in parts.items()}
    return Report(kind, title, tuple(blocks), data)


def format_of(path: str | os.PathLike) -> str:
    """The format ``--report PATH`` writes, from its suffix.

    Raises:
        EdgeDistillError: an unknown suffix.

    Example:
        >>> format_of("kws.html")
        'html'
    """
    suffix = PurePath(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise EdgeDistillError(f"--report {path}: the suffix says the format; use one of "
                               f"{', '.join(SUFFIXES)}")
    return SUFFIXES[suffix]


@cache
def json_schema() -> dict:
    """``schema.json``: a JSON Schema (2020-12) with one ``$defs`` entry per report kind.

    Example:
        >>> sorted(json_schema()["$defs"])[:2]
        ['conversion', 'convert']
    """
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)
