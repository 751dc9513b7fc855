"""Reading a YAML file a user hands over: every failure is one clean line."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgedistill.errors import EdgeDistillError

# Recipes and target files are a few kilobytes; a bigger file is not one of them.
MAX_BYTES = 1 << 20
# Values with aliases expanded: anchors may share a base, never build a bomb
# (a 506-byte "billion laughs" file expands to 10^9 values).
MAX_VALUES = 10_000


def _expanded_size(node, sizes: dict) -> int:
    """Values in ``node`` once every alias is expanded, counted without expanding."""
    key = id(node)
    if key not in sizes:
        sizes[key] = MAX_VALUES + 1  # a cycle counts as too large
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else ()
        total = 1
        for child in children:
            total += _expanded_size(child, sizes)
            if total > MAX_VALUES:
                break
        sizes[key] = total
    return sizes[key]


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
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, {}) > MAX_VALUES:
                raise EdgeDistillError(
                    f"{path}: its aliases expand to more than {MAX_VALUES:,} values; a {what} "
                    "needs far fewer: write the values out or share fewer anchors")
            return None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EdgeDistillError(f"{path}: invalid YAML{where}: {problem}") from None


def builtin_yaml_files(package: str, checkout_folder: str) -> list[Path]:
    """The ``*.yaml`` files shipped as ``package`` (``edgedistill.targets.builtin``),
    wherever it was installed; in a source checkout that is not installed, those of
    the repository's top-level ``checkout_folder``, which pyproject maps to it."""
    import importlib.resources

    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parent.parent / checkout_folder
    # Through the Traversable API, so a namespace-package install
    # (MultiplexedPath) works as well as a regular one.
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml"))
