"""Reading a YAML file a user hands over: every failure is one clean line."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgedistill.errors import EdgeDistillError

# Recipes and target files are a few kilobytes; a bigger file is not one of them.
MAX_BYTES = 1 << 20


def read_yaml(path: str | Path, what: str):
    """The object ``yaml.safe_load`` makes of ``path``; ``what`` names the file kind in errors."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise EdgeDistillError(f"{path}: {path.stat().st_size} bytes is too large for a "
                                   f"{what} (at most {MAX_BYTES})")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgeDistillError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeDistillError(f"{path}: cannot read {what}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EdgeDistillError(f"{path}: invalid YAML{where}: {problem}") from None
