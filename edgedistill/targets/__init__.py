"""Hardware targets: phones, single-board computers, microcontrollers and this machine.

A target is one YAML file (fields in :mod:`edgedistill.targets.schema`,
``extends`` and abstract ``_base.yaml`` files in
:mod:`edgedistill.targets.loader`). Built-in targets ship in the package
``edgedistill.targets.builtin`` (the repository's top-level ``targets/``
folder). Users add their own in the directories listed in
``EDGEDISTILL_TARGETS_PATH`` (separated by ``os.pathsep``), or pass a path to
a ``.yaml`` file wherever a target name is accepted; either may extend a
built-in target or base by name.

Precedence: a user file overrides a built-in target of the same name, and an
earlier directory in ``EDGEDISTILL_TARGETS_PATH`` overrides a later one, as
with ``PATH``. This lets a user recalibrate a built-in board without
renaming it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.targets._check import NotMeasurableHere
from edgedistill.targets.loader import (
    ENV_VAR,
    builtin_files,
    is_abstract,
    load_target_file,
    user_dirs,
)
from edgedistill.targets.record import (
    CoreCluster,
    FlashSetup,
    LatencyModel,
    Memory,
    Npu,
    Runtime,
    RuntimeOption,
    Target,
)

__all__ = ["ALL", "CoreCluster", "FlashSetup", "LatencyModel", "Memory", "Npu", "Runtime",
           "RuntimeOption", "Target", "get", "list_targets", "load_target_file", "select",
           "target_files"]

ALL = "all"


def target_files() -> dict[str, Path]:
    """Maps each visible target name to the file that defines it, after precedence.

    Abstract bases (``_*.yaml``) are not targets and are left out.

    Example:
        >>> sorted(target_files())[:2]  # doctest: +SKIP
        ['alif-ensemble-e7-hp', 'esp32-s3-devkitc-1']
    """
    found: dict[str, Path] = {}
    for directory in user_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    for path in builtin_files():
        found.setdefault(path.stem, path)
    return {name: path for name, path in sorted(found.items()) if not is_abstract(path)}


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
        return load_target_file(Path(text))
    files = target_files()
    if text not in files:
        known = ", ".join(files) or "(none)"
        raise EdgeDistillError(
            f"unknown target {text!r}; known targets: {known} "
            f"(or pass a .yaml path, or add a directory to {ENV_VAR})"
        )
    return load_target_file(files[text])


def _skip_with_a_warning(name: str, reason: str) -> None:
    warnings.warn(f"target {name} left out: {reason}", stacklevel=3)


def list_targets(on_skip: Callable[[str, str], None] = _skip_with_a_warning
                 ) -> tuple[Target, ...]:
    """All visible targets (built-in and user) usable on this machine, sorted by name.

    A target whose ``auto`` fields this machine cannot measure (the host
    target without ``/proc``) is left out: ``on_skip(name, reason)`` is
    called for it, which by default warns.

    Raises:
        EdgeDistillError: if any visible file is invalid.

    Example:
        >>> from edgedistill import targets
        >>> "nucleo-l4r5zi" in [t.name for t in targets.list_targets()]
        True
    """
    usable = []
    for name, path in target_files().items():
        try:
            usable.append(load_target_file(path))
        except NotMeasurableHere as exc:
            on_skip(name, str(exc))
    return tuple(usable)


def select(names: Sequence[str], runtime: str | None = None,
           on_skip: Callable[[str, str], None] = _skip_with_a_warning) -> tuple[Target, ...]:
    """The targets a command names: ``all``, names and ``.yaml`` paths, in any mix.

    ``all`` stands for every visible target; a name or file given beside it
    is added, or replaces the target of the same name in place (a user's
    recalibrated copy). With ``runtime``, each target is set to that runtime:
    one named explicitly must have it, while ``all`` keeps only those that do.
    ``all`` also leaves out the targets this machine cannot measure, calling
    ``on_skip`` for each (see :func:`list_targets`); a target named on its own
    is never left out.

    Raises:
        EdgeDistillError: an unknown name, an invalid file, no target with
            ``runtime``, or a named target without it.

    Example:
        >>> from edgedistill import targets
        >>> [t.name for t in targets.select(["nucleo-l4r5zi", "host"])]
        ['nucleo-l4r5zi', 'host']
        >>> {t.runtime.id for t in targets.select(["all"], "microtvm-cmsis-nn-2022")}
        {'microtvm-cmsis-nn-2022'}
    """
    chosen: dict[str, Target] = {}
    named: set[str] = set()
    if ALL in names:
        chosen = {t.name: t for t in list_targets(on_skip)}
    for name in names:
        if name != ALL:
            target = get(name)
            chosen[target.name] = target
            named.add(target.name)
    if runtime is None:
        return tuple(chosen.values())
    kept = tuple(t.with_runtime(runtime) for t in chosen.values()
                 if t.name in named or runtime in t.runtime_ids)
    if not kept:
        known = sorted({i for t in chosen.values() for i in t.runtime_ids})
        raise EdgeDistillError(f"--runtime {runtime}: no chosen target has constants for it; "
                               f"known runtimes: {', '.join(known)}")
    return kept
