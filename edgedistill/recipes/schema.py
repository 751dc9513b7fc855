"""Staged recipes: a YAML file listing the stages of a compression run.

A staged recipe holds settings that every stage shares (any ``distill()``
argument, as in a single-run recipe) and a list of ``stages``. Each stage is
a one-key mapping, its kind and its own settings, which win over the shared
ones; an optional ``name`` labels it::

    description: distill, prune half the weights while distilling, then
      sparsity-preserving QAT, then int8
    teacher: teacher-cnn
    student: student-cnn
    data: fashion-mnist
    epochs: 40
    stages:
      - distill: {}
      - distill: {prune: 0.5, epochs: 20, learning_rate: 0.001}
      - distill: {qat: true, epochs: 10, learning_rate: 0.0005}
        name: pqat
      - convert: {mode: int8}

Kinds (:data:`STAGE_KINDS`):

- ``distill``: a ``distill()`` run. The first starts from the recipe's
  student (and its baseline from ``scratch_student`` when the recipe names
  one); every later one from the previous stage's student, and its scratch
  baseline from the previous stage's scratch student, so the baseline is the
  same recipe without a teacher. A zoo teacher is trained once, by the first
  stage, and reused.
- ``convert``: the latest student and scratch student converted
  (``mode``, ``calibration_per_class``, ``micro``) and checked with LiteRT.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from edgedistill._yaml import read_yaml
from edgedistill.convert.modes import IO_TYPES, MODES
from edgedistill.distill import recipe as settings_lib
from edgedistill.errors import EdgeDistillError

STAGE_KINDS = ("distill", "convert")
# Stages continue from the previous students; data and output belong to the recipe.
_RECIPE_ONLY = ("student", "scratch_student", "data", "out_dir")
_CONVERT_KEYS = {"mode": str, "io_type": str, "calibration_per_class": int,
                 "max_accuracy_drop": float, "micro": bool}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_STAGES = 20


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage: its kind, its label and its own settings (``distill()`` or ``convert()``
    keyword arguments)."""

    kind: str
    name: str
    settings: dict

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "settings": _plain(self.settings)}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A staged recipe: shared settings, then the stages in order."""

    name: str
    description: str
    shared: dict
    stages: tuple[Stage, ...]

    def with_shared(self, overrides: dict) -> Recipe:
        """The recipe with ``overrides`` (e.g. typed command-line options) on its shared
        settings; a stage's own settings still win."""
        return dataclasses.replace(self, shared={**self.shared, **overrides})

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "shared": _plain(self.shared), "stages": [stage.to_dict() for stage in self.stages]}


def _plain(value):
    """``value`` as JSON: objects from the Python API (a Dataset, a model, a Pruning)
    by their own ``to_dict()`` or their name."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return f"{type(value).__name__}:{getattr(value, 'name', '')}"


def is_staged(data) -> bool:
    """Whether a parsed recipe file is staged (has ``stages``) rather than one run."""
    return isinstance(data, dict) and "stages" in data


def parse_recipe(path: Path, data, name: str | None = None) -> Recipe:
    """The :class:`Recipe` a parsed YAML mapping describes, checked.

    Raises:
        EdgeDistillError: naming ``path`` and the key (``stages[2].distill.prune``).
    """
    stages = data.get("stages")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise EdgeDistillError(f"{path}: description: expected text")
    if not isinstance(stages, list) or not stages:
        raise EdgeDistillError(f"{path}: stages: expected a list of stages, such as "
                               "'- distill: {prune: 0.5}' or '- convert: {mode: int8}'")
    if len(stages) > MAX_STAGES:
        raise EdgeDistillError(f"{path}: stages: {len(stages)} stages; at most {MAX_STAGES}")
    shared = settings_lib.check_settings(
        path, {k: v for k, v in data.items() if k not in ("stages", "description")})
    parsed = tuple(_stage(path, index, item) for index, item in enumerate(stages, 1))
    names = [stage.name for stage in parsed]
    for stage in parsed:
        if names.count(stage.name) > 1:
            raise EdgeDistillError(f"{path}: stages: two stages are named {stage.name!r}; "
                                   "give one a different 'name'")
    return Recipe(name=name or path.stem, description=" ".join(description.split()),
                  shared=shared, stages=parsed)


def load_staged_recipe(path: str | Path) -> Recipe:
    """Reads a staged recipe file.

    Example:
        >>> recipe = load_staged_recipe("prune.yaml")
        >>> [stage.name for stage in recipe.stages]
        ['1-distill', '2-prune', '3-pqat', '4-int8']
    """
    path = Path(path)
    data = read_yaml(path, "recipe")
    if not is_staged(data):
        raise EdgeDistillError(f"{path}: not a staged recipe (no 'stages' list)")
    return parse_recipe(path, data)


def _stage(path: Path, index: int, item) -> Stage:
    where = f"{path}: stages[{index}]"
    if not isinstance(item, dict) or not item:
        raise EdgeDistillError(f"{where}: expected a mapping such as 'distill: {{qat: true}}'")
    kinds = [key for key in item if key != "name"]
    if len(kinds) != 1 or kinds[0] not in STAGE_KINDS:
        raise EdgeDistillError(f"{where}: expected one stage kind ({', '.join(STAGE_KINDS)})"
                               f" and an optional name, got {', '.join(map(str, item))!s:.60}")
    kind = kinds[0]
    settings = item[kind] if item[kind] is not None else {}
    if not isinstance(settings, dict):
        raise EdgeDistillError(f"{where}.{kind}: expected a mapping of settings ({{}} for none)")
    settings = _convert_settings(where, settings) if kind == "convert" else \
        _distill_settings(where, settings)
    name = item.get("name", _default_name(kind, settings))
    if not isinstance(name, str) or not _NAME.match(name):
        raise EdgeDistillError(f"{where}.name: expected lower-case letters, digits, '-' or '_'"
                               f" (at most 40), got {name!r:.60}")
    return Stage(kind=kind, name=f"{index}-{name}", settings=settings)


def _distill_settings(where: str, settings: dict) -> dict:
    checked = settings_lib.check_settings(f"{where}.distill", settings)
    for key in _RECIPE_ONLY:
        if key in checked:
            raise EdgeDistillError(
                f"{where}.distill.{key}: set it once, at the top of the recipe (a stage "
                "continues from the previous stage's student)")
    return checked


def _convert_settings(where: str, settings: dict) -> dict:
    checked = {}
    for raw_key, value in settings.items():
        key = str(raw_key).replace("-", "_")
        kind = _CONVERT_KEYS.get(key)
        if kind is None:
            raise EdgeDistillError(f"{where}.convert: unknown key {raw_key!r:.40}; known: "
                                   f"{', '.join(_CONVERT_KEYS)}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool)
                                                            or value < 1)):
            raise EdgeDistillError(f"{where}.convert.{key}: expected "
                                   f"{'a whole number ≥ 1' if kind is int else kind.__name__},"
                                   f" got {value!r:.60}")
        if key == "mode" and value not in MODES:
            raise EdgeDistillError(f"{where}.convert.mode: {value!r:.40} unknown; use one of "
                                   f"{', '.join(MODES)}")
        if key == "io_type" and value not in IO_TYPES:
            raise EdgeDistillError(f"{where}.convert.io_type: {value!r:.40} unknown; use one "
                                   f"of {', '.join(IO_TYPES)}")
        if key == "max_accuracy_drop" and not 0 <= value <= 1:
            raise EdgeDistillError(f"{where}.convert.max_accuracy_drop: a fraction from 0 to "
                                   f"1 (0.01 is one point), got {value!r:.40}")
        checked[key] = value
    return checked


def _default_name(kind: str, settings: dict) -> str:
    if kind == "convert":
        return settings.get("mode", "int8")
    for key, name in (("prune_channels", "channels"), ("prune", "prune"),
                      ("cluster", "cluster"), ("qat", "qat")):
        if settings.get(key):
            return name
    return "distill"
