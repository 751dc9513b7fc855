"""Distill recipes: a YAML file holding the settings of a run.

A recipe's keys are :func:`~edgedistill.distill.run.distill`'s arguments
(dashes or underscores; ``out`` for ``out_dir``), so one file describes what
``edgedistill distill --recipe run.yaml`` and ``distill(**load_recipe(...))``
both run. Losses, augmentations and the adversary are spec strings
(``"feature_distillation:teacher_layer_name=block2,student_layer_name=block2"``)
or mappings with a ``name`` and their settings.

Example recipe::

    teacher: teacher-cnn
    student: student-cnn
    data: fashion-mnist
    out: runs/fmnist
    losses:
      - logits_distillation:temperature=4
      - name: feature_distillation
        teacher_layer_name: block2
        student_layer_name: block2
    loss_weights: [1.0, 0.5]
    augment: [shift, mixup]
    epochs: 30

Example:
    >>> result = distill(**load_recipe("run.yaml"))
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from edgedistill import specs
from edgedistill._yaml import read_yaml
from edgedistill.errors import EdgeDistillError

_TEXT = ("student", "data", "out_dir", "mode", "schedule", "cache_dir", "scratch_student")
_INTEGERS = ("epochs", "batch_size", "patience", "teacher_epochs", "generations",
             "synthetic_samples", "tune", "tune_epochs", "seed")
_NUMBERS = ("temperature", "alpha", "learning_rate", "teacher_learning_rate", "prune_channels")
_FLAGS = ("qat", "scratch_baseline", "cache_teacher")
_NUMBER_LISTS = ("loss_weights", "teacher_weights")
_SPEC_LISTS = ("losses", "augment", "teacher_augment")
KEYS = ("teacher", "assistants", "adversary", "prune", "cluster", *_TEXT, *_INTEGERS,
        *_NUMBERS, *_FLAGS, *_NUMBER_LISTS, *_SPEC_LISTS)
_ALIASES = {"out": "out_dir", "baseline": "scratch_baseline", "loss": "losses",
            "assistant": "assistants"}


def load_recipe(path: str | os.PathLike) -> dict:
    """The ``distill()`` keyword arguments a recipe file holds, checked.

    Raises:
        EdgeDistillError: unreadable file, invalid YAML, an unknown key or a
            value of the wrong kind (the message names the file and key).
    """
    path = Path(path)
    return recipe_settings(path, read_yaml(path, "recipe"))


def recipe_settings(path: Path, data) -> dict:
    """The ``distill()`` keyword arguments of a parsed single-run recipe, checked."""
    if not isinstance(data, dict):
        raise EdgeDistillError(f"{path}: a recipe is a mapping of distill settings "
                               "(key: value lines)")
    if "stages" in data:
        raise EdgeDistillError(f"{path}: a staged recipe; run it with "
                               "edgedistill.recipes.run_recipe or 'edgedistill distill --recipe'")
    return check_settings(path, data)


def check_settings(where: str | os.PathLike, data: dict) -> dict:
    """``data``'s keys as ``distill()`` arguments, each value checked; errors start ``where``."""
    settings = {}
    for raw_key, value in data.items():
        key = _ALIASES.get(str(raw_key).replace("-", "_"), str(raw_key).replace("-", "_"))
        if key not in KEYS:
            raise EdgeDistillError(f"{where}: unknown key {raw_key!r:.40}; known: "
                                   f"{', '.join(sorted(KEYS))}")
        if key in settings:
            raise EdgeDistillError(f"{where}: {key} is given twice")
        settings[key] = _checked(where, key, value)
    return settings


def _checked(where, key: str, value):
    def fail(expected: str):
        raise EdgeDistillError(f"{where}: {key}: expected {expected}, got {value!r:.60}")

    if value is None and key not in ("teacher", *_TEXT[:3]):
        return None
    if key == "teacher":
        if value is None or _is_text(value):
            return value
        if isinstance(value, list) and value and all(_is_text(v) for v in value):
            return value
        fail("a teacher (file or zoo name) or a list of them")
    if key in _TEXT:
        return value if _is_text(value) else fail("text")
    if key in _INTEGERS:
        return value if _is_int(value) else fail("a whole number")
    if key in _NUMBERS:
        return float(value) if _is_number(value) else fail("a number")
    if key in _FLAGS:
        return value if isinstance(value, bool) else fail("true or false")
    if key in _NUMBER_LISTS:
        if isinstance(value, list) and all(_is_number(v) for v in value):
            return [float(v) for v in value]
        fail("a list of numbers")
    if key == "assistants":
        if isinstance(value, list) and all(_is_text(v) for v in value):
            return value
        fail("a list of zoo names or model files")
    if key == "adversary":
        return _spec(value, fail, name_key="method")
    if key in ("prune", "cluster"):  # checked by distill(), like the command line's
        if _is_number(value) or _is_text(value) or (
                isinstance(value, dict) and all(_is_text(k) for k in value)):
            return value
        fail("a number or a mapping of settings")
    if not isinstance(value, list):
        fail("a list")
    return [_spec(item, fail) for item in value]


def _spec(value, fail, name_key: str = "name"):
    """A spec string or a ``{name: ..., setting: value}`` mapping, as ``get`` reads it."""
    if _is_text(value):
        return value
    if isinstance(value, dict) and _is_text(value.get(name_key)) and all(
            isinstance(k, str) and (_is_text(v) or _is_number(v) or isinstance(v, bool)
                                    or v is None) for k, v in value.items()):
        if name_key == "method":
            return dict(value)
        settings = {k: v for k, v in value.items() if k != name_key}
        return {"class_name": specs.parse(value[name_key], "recipe")["class_name"],
                "config": settings}
    return fail(f"a spec string or a mapping with '{name_key}' and plain settings")


def _is_text(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 4096 and "\0" not in value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
