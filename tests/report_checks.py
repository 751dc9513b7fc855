"""Checks every report must pass in every format, and the HTML page in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import strict_json
from rich.console import Console

from edgedistill.reports import FORMATS, Report, json_schema
from edgedistill.reports.document import Figure, Table

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def assert_matches_schema(kind: str, value) -> None:
    """``value`` validates against ``schema.json``'s definition of ``kind``."""
    jsonschema = pytest.importorskip("jsonschema", reason="pip install -e '.[test]'")
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"],
                                                 "$ref": f"#/$defs/{kind}"})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
              for e in validator.iter_errors(value)]
    assert not errors, f"{kind}: {errors[:5]}"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.seen: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, dict(attrs)))
        if tag not in ("meta", "img", "br", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()


def _check_markdown(report: Report, md: str) -> None:
    assert md.startswith(f"# {report.title}\n"), md[:80]
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i > 0 and not lines[i - 1].startswith("|"):
            width = len(re.findall(r"(?<!\\)\|", line))
            for row in lines[i:]:
                if not row.startswith("|"):
                    break
                assert len(re.findall(r"(?<!\\)\|", row)) == width, row


def _check_html(report: Report, page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    # Nothing is fetched when the page is viewed: no remote or relative resources.
    assert not re.search(r"""(src|href)\s*=\s*(?!["']?data:)""", page, re.IGNORECASE)
    assert "url(" not in page and "@import" not in page
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.open == [], tags.open
    images = [attrs for tag, attrs in tags.seen if tag == "img"]
    figures = [b for b in report.blocks if isinstance(b, Figure)]
    assert len(images) == len(figures)
    assert all(a["src"].startswith("data:image/svg+xml;base64,") for a in images)
    tables = sum(1 for b in report.blocks if isinstance(b, Table))
    assert sum(1 for tag, attrs in tags.seen if tag == "table" and not attrs) == tables


def check_every_format(report: Report, kind: str) -> dict[str, str]:
    """Renders ``report`` in every format, checks each, and returns the texts by format."""
    assert report.kind == kind
    console = Console(record=True, width=100, color_system=None)
    for renderable in report.renderables():
        console.print(renderable)
    terminal = console.export_text()
    out = {fmt: report.render(fmt) for fmt in FORMATS}
    assert report.title in terminal and out["table"].startswith(report.title)
    assert_matches_schema(kind, strict_json(out["json"]))
    _check_markdown(report, out["md"])
    _check_html(report, out["html"])
    return out


def _pixels(png: Path):
    from matplotlib import image

    pixels = image.imread(png)[..., :3]
    return (pixels * 255).round().astype(int).reshape(-1, 3)


def screenshot(page: str, tmp_path: Path, height: int = 900):
    """Opens ``page`` in headless Chromium; returns the screenshot's pixels (N x RGB) and
    what the browser logged. Skips when Debian's chromium is not installed."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    png = tmp_path / "report.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         f"--window-size=1200,{height}", "--enable-logging=stderr", "--v=0", html.as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert png.is_file(), result.stderr[-2000:]
    # The page has no script: any console message (an error, a blocked load) is a fault.
    console = [line for line in result.stderr.splitlines()
               if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    return _pixels(png)


def assert_not_blank(pixels, colours: int = 20) -> None:
    """More than ``colours`` distinct colours and more than 2% of pixels not white."""
    distinct = len({tuple(p) for p in pixels[::7]})
    inked = (pixels.min(axis=1) < 235).mean()
    assert distinct > colours and inked > 0.02, (distinct, inked)
