"""Reading a target file and the bases it ``extends``.

``extends: <name>`` or ``extends: <path>.yaml`` makes a file inherit every
field of a base and override some. Sections (``memory``, ``runtime``,
``npu``, ``latency``, ``latency.cycles_per_mac``) merge key by key; any other
value, lists included, and a ``{value, source}`` pair as a whole, is replaced;
``runtimes`` merge id by id, each entry like a section.
``name`` is never inherited. A base may itself extend another; a cycle or a
missing base is an error naming the file and ``extends``.

A path is relative to the extending file. A name is looked up next to the
extending file first, then in the directories of ``EDGEDISTILL_TARGETS_PATH``,
then among the built-in targets. A file may extend its own name: the lookup
then starts after the file's own directory, so a user file can recalibrate
the built-in target it shadows by changing only a few fields.

Abstract bases are files whose name starts with ``_`` (``_cortex-m4f.yaml``):
they may leave out required fields, are never listed as targets, and can
only be extended.

Example:
    A user file recalibrating one constant of a built-in board::

        name: nucleo-l4r5zi
        extends: nucleo-l4r5zi
        latency:
          cycles_per_op: {value: 800, source: "measured on my board"}
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgedistill._yaml import builtin_yaml_files, read_yaml
from edgedistill.errors import EdgeDistillError
from edgedistill.targets._check import Keyed, Section, join
from edgedistill.targets.record import Target
from edgedistill.targets.schema import SCHEMA, parse_target

ENV_VAR = "EDGEDISTILL_TARGETS_PATH"
WHAT = "target file"


def user_dirs() -> list[Path]:
    """The directories of ``EDGEDISTILL_TARGETS_PATH``, earliest first.

    Raises:
        EdgeDistillError: one of them is not a directory.
    """
    dirs = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    for directory in dirs:
        if not directory.is_dir():
            raise EdgeDistillError(
                f"{ENV_VAR}: {directory}: not a directory; list directories holding "
                "target .yaml files"
            )
    return dirs


def builtin_files() -> list[Path]:
    """The shipped ``*.yaml`` files, abstract bases included."""
    return builtin_yaml_files("edgedistill.targets.builtin", "targets")


def search_dirs() -> list[Path]:
    """Where names are looked up, in precedence order: user directories, then the built-ins."""
    return user_dirs() + sorted({p.parent for p in builtin_files()})


def is_abstract(path: Path) -> bool:
    """Abstract bases are the files whose name starts with ``_``."""
    return path.name.startswith("_")


def _read_yaml(path: str | Path) -> Any:
    try:
        return read_yaml(path, WHAT)
    except RecursionError:
        # PyYAML parses nested brackets recursively; a target file is a few levels deep.
        raise EdgeDistillError(f"{path}: nested too deeply for a {WHAT}") from None


@functools.lru_cache(maxsize=512)
def _read_cached(path: str, mtime_ns: int, size: int) -> Any:
    return _read_yaml(path)


def _read(path: Path) -> Any:
    # The parsed objects are shared between loads; _merge never mutates them.
    try:
        stat = path.stat()
    except OSError:
        return _read_yaml(path)
    return _read_cached(str(path), stat.st_mtime_ns, stat.st_size)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _lookup_dirs(name: str, child: Path) -> list[Path]:
    order = search_dirs()
    own = next((i for i, d in enumerate(order) if _same(d, child.parent)), None)
    if name == child.stem:
        return order[own + 1:] if own is not None else order
    return [child.parent] + [d for i, d in enumerate(order) if i != own]


def _resolve(ref: Any, child: Path) -> Path:
    if not isinstance(ref, str) or not ref.strip() or "\n" in ref:
        raise EdgeDistillError(f"{child}: extends: expected the name of a target or base, or a "
                               f".yaml path relative to this file, got {ref!r:.60}")
    if ref.endswith((".yaml", ".yml")) or "/" in ref or os.sep in ref:
        path = child.parent / ref
        if not path.is_file():
            raise EdgeDistillError(f"{child}: extends: no such file {path}")
        return path
    dirs = _lookup_dirs(ref, child)
    for directory in dirs:
        if (directory / f"{ref}.yaml").is_file():
            return directory / f"{ref}.yaml"
    looked = ", ".join(str(d) for d in dirs) or "(nowhere)"
    raise EdgeDistillError(f"{child}: extends: no target or base named {ref!r} (looked in "
                           f"{looked}); name a target, a _base, or give a .yaml path")


def _mark(value: Any, here: str, file: str, origins: dict[str, str]) -> None:
    """Records ``file`` as the origin of ``here`` and of everything nested in ``value``."""
    origins[here] = file
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _mark(sub, join(here, key), file, origins)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _mark(sub, f"{here}[{i}]", file, origins)


def _merge(base: Mapping, child: Mapping, fields: Mapping[str, Any], prefix: str, file: str,
           origins: dict[str, str]) -> dict:
    out = dict(base)
    for key, value in child.items():
        here = join(prefix, key)
        spec = fields.get(key) if isinstance(key, str) else None
        if isinstance(spec, Section | Keyed) and isinstance(value, Mapping) and \
                isinstance(out.get(key), Mapping):
            sub = spec.fields if isinstance(spec, Section) else \
                {k: Section(spec.fields) for k in value if isinstance(k, str)}
            out[key] = _merge(out[key], value, sub, here, file, origins)
        else:
            for stale in [k for k in origins if k.startswith((here + ".", here + "["))]:
                del origins[stale]
            _mark(value, here, file, origins)
            out[key] = value
    return out


def resolve(path: str | Path) -> tuple[Any, dict[str, str], tuple[str, ...]]:
    """The file's data with its bases merged in, the file that set each field, and the bases.

    Raises:
        EdgeDistillError: an unreadable file, a missing base or a cycle.

    Example:
        >>> data, origins, bases = resolve("targets/nano-33-ble-sense.yaml")  # doctest: +SKIP
        >>> origins["latency.cycles_per_mac.conv"]  # doctest: +SKIP
        'targets/_cortex-m4f.yaml'
    """
    path = Path(path)
    layers = [(path, _read(path))]
    while isinstance(layers[-1][1], Mapping) and "extends" in layers[-1][1]:
        child, data = layers[-1]
        base = _resolve(data["extends"], child)
        chain = [p for p, _ in layers]
        if any(_same(base, p) for p in chain):
            names = " -> ".join(str(p) for p in [*chain, base])
            raise EdgeDistillError(f"{child}: extends: cycle: {names}")
        base_data = _read(base)
        if not isinstance(base_data, Mapping):
            raise EdgeDistillError(f"{base}: expected a mapping of target fields, "
                                   f"got {base_data!r:.60}")
        layers.append((base, base_data))
    if len(layers) == 1:
        return layers[0][1], {}, ()
    merged: dict = {}
    origins: dict[str, str] = {}
    for file, data in reversed(layers):
        own = {k: v for k, v in data.items()
               if k != "extends" and (k != "name" or file is path)}
        merged = _merge(merged, own, SCHEMA, "", str(file), origins)
    return merged, origins, tuple(str(p) for p, _ in layers[1:])


def load_target_file(path: str | Path) -> Target:
    """Reads and validates one target YAML file, with the bases it extends.

    Args:
        path: a ``.yaml`` file following the schema of ``targets/*.yaml``.

    Raises:
        EdgeDistillError: missing or unreadable file, invalid YAML, a missing
            base or an ``extends`` cycle, an abstract base, or a schema
            violation (the message names file and field).

    Example:
        >>> from edgedistill.targets import load_target_file
        >>> load_target_file("targets/nucleo-l4r5zi.yaml").ram_bytes  # doctest: +SKIP
        655360
    """
    path = Path(path)
    if is_abstract(path):
        raise EdgeDistillError(f"{path}: an abstract base (its name starts with _) is not a "
                               "target; write a target file that extends it")
    data, origins, bases = resolve(path)
    return parse_target(data, path, origins, bases)
