"""Hardware targets: phones, single-board computers and microcontrollers.

A target is one YAML file (schema in :mod:`edgedistill.targets.schema`).
Built-in targets ship in the package ``edgedistill.targets.builtin`` (the
repository's top-level ``targets/`` folder). Users add their own in the
directories listed in ``EDGEDISTILL_TARGETS_PATH`` (separated by
``os.pathsep``), or pass a path to a ``.yaml`` file wherever a target name is
accepted.

Precedence: a user file overrides a built-in target of the same name, and an
earlier directory in ``EDGEDISTILL_TARGETS_PATH`` overrides a later one, as
with ``PATH``. This lets a user recalibrate a built-in board without
renaming it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from edgedistill._yaml import builtin_yaml_files
from edgedistill.errors import EdgeDistillError
from edgedistill.targets.schema import LatencyModel, Target, load_target_file

__all__ = ["LatencyModel", "Target", "get", "list_targets", "load_target_file", "target_files"]

ENV_VAR = "EDGEDISTILL_TARGETS_PATH"


def _user_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    for directory in dirs:
        if not directory.is_dir():
            raise EdgeDistillError(
                f"{ENV_VAR}: {directory}: not a directory; list directories holding "
                "target .yaml files"
            )
    return dirs


def target_files() -> dict[str, Path]:
    """Maps each visible target name to the file that defines it, after precedence.

    Example:
        >>> sorted(target_files())[:2]  # doctest: +SKIP
        ['esp32-s3-devkitc-1', 'nano-33-ble-sense']
    """
    found: dict[str, Path] = {}
    for directory in _user_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    for path in builtin_yaml_files("edgedistill.targets.builtin", "targets"):
        found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


@functools.cache
def _load_cached(path: str, mtime_ns: int) -> Target:
    return load_target_file(path)


def _load(path: Path) -> Target:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return load_target_file(path)
    return _load_cached(str(path), mtime)


def get(name_or_path: str | os.PathLike) -> Target:
    """Returns a target by name, or loads it from a ``.yaml`` path.

    Args:
        name_or_path: a target name (``"nucleo-l4r5zi"``) or a path to a
            target file (anything ending in ``.yaml``/``.yml`` or containing a
            path separator).

    Raises:
        EdgeDistillError: unknown name (the message lists the known ones) or
            an invalid file.

    Example:
        >>> from edgedistill import targets
        >>> targets.get("raspberry-pi-4").kind
        'sbc'
    """
    text = os.fspath(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        return _load(Path(text))
    files = target_files()
    if text not in files:
        known = ", ".join(files) or "(none)"
        raise EdgeDistillError(
            f"unknown target {text!r}; known targets: {known} "
            f"(or pass a .yaml path, or add a directory to {ENV_VAR})"
        )
    return _load(files[text])


def list_targets() -> tuple[Target, ...]:
    """All visible targets (built-in and user), sorted by name.

    Raises:
        EdgeDistillError: if any visible file is invalid.

    Example:
        >>> from edgedistill import targets
        >>> "nucleo-l4r5zi" in [t.name for t in targets.list_targets()]
        True
    """
    return tuple(_load(path) for path in target_files().values())
