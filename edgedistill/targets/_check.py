"""The validating walk over a target mapping: one-line errors naming file and field.

The field specs below describe what a value may be; :class:`Checker` walks a
mapping against a dict of them, collects the values and the source of each,
measures the fields written ``auto`` and raises an
:class:`~edgedistill.errors.EdgeDistillError` at the first problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgedistill.errors import EdgeDistillError

AUTO = "auto"
# Byte counts and clocks beyond this are typos, and a float could not hold them.
MAX_INT = 2**63 - 1
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Num:
    """A number that must carry a source; ``default`` (with its source text) when absent."""

    integer: bool = False
    positive: bool = True
    required: bool = True
    default: int | float | None = None
    default_source: str = ""
    auto: bool = False


@dataclass(frozen=True)
class Text:
    """A non-empty string, plain or ``{value, source}``, optionally from ``choices``."""

    choices: tuple[str, ...] = ()
    required: bool = True
    auto: bool = False


@dataclass(frozen=True)
class Words:
    """A list of words from ``choices`` (plain or ``{value: [...], source}``); empty when absent."""

    choices: tuple[str, ...]
    auto: bool = False
    required: bool = False


@dataclass(frozen=True)
class Section:
    """A nested mapping of fields; targets that extend one another merge these key by key."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    required: bool = True


@dataclass(frozen=True)
class Items:
    """A non-empty list of mappings of ``fields``; empty when absent."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    required: bool = False


@dataclass(frozen=True)
class Keyed:
    """Ids the user picks (``[a-z0-9._-]``) mapped to sections of ``fields``; empty when absent.

    Targets that extend one another merge these id by id.
    """

    fields: Mapping[str, Any] = field(default_factory=dict)
    required: bool = False


class Unmeasurable(Exception):
    """This machine does not expose a value written ``auto``; the message says what was tried."""


class NotMeasurableHere(EdgeDistillError):
    """A valid target whose ``auto`` fields this machine cannot measure (no ``/proc``, say).

    ``--target all`` leaves such a target out, with a note, instead of failing.
    """


def join(prefix: str, key: Any) -> str:
    """The dotted path of ``key`` under ``prefix``; odd keys are quoted, keeping one line."""
    text = key if isinstance(key, str) and key and key.isprintable() else repr(key)
    return f"{prefix}.{text}" if prefix else text


def pattern(field_path: str) -> str:
    """``cores[1].count`` -> ``cores[].count``: the form the measurers are keyed by."""
    return re.sub(r"\[\d+\]", "[]", field_path)


class Checker:
    """Validates one target mapping; ``origins`` maps field paths to the file that set them."""

    def __init__(self, path: str, origins: Mapping[str, str] | None,
                 measure: Callable[[str, Mapping[str, Any]], tuple[Any, str]]) -> None:
        self.path = path
        self.origins = origins or {}
        self.measure = measure
        self.sources: dict[str, str] = {}
        # Values checked so far, by field path: a measurement may depend on an earlier field.
        self.known: dict[str, Any] = {}

    def fail(self, field_path: str, problem: str) -> EdgeDistillError:
        """The error for ``field_path``, naming the file (base or target) that wrote it."""
        where, probe = self.path, field_path
        while probe:
            if probe in self.origins:
                where = self.origins[probe]
                break
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe) if re.search(r"[.\[]", probe) else ""
        return EdgeDistillError(f"{where}: {field_path}: {problem}" if field_path
                                else f"{where}: {problem}")

    def section(self, data: Any, fields: Mapping[str, Any], prefix: str) -> dict:
        if not isinstance(data, Mapping):
            raise self.fail(prefix, f"expected a mapping of {', '.join(fields)}, got {data!r:.60}")
        for key in data:
            if key not in fields:
                raise self.fail(join(prefix, key),
                                f"unknown field; expected one of: {', '.join(fields)}")
        out = {}
        for key, spec in fields.items():
            here = join(prefix, key)
            out[key] = self.value(data[key], spec, here) if key in data else self.absent(spec, here)
        return out

    def absent(self, spec: Any, field_path: str) -> Any:
        if spec.required:
            raise self.fail(field_path, "missing field")
        if isinstance(spec, Num) and spec.default is not None:
            self.sources[field_path] = spec.default_source
            return spec.default
        if isinstance(spec, Keyed):
            return {}
        return () if isinstance(spec, Words | Items) else None

    def value(self, raw: Any, spec: Any, field_path: str) -> Any:
        if isinstance(spec, Section):
            return self.section(raw, spec.fields, field_path)
        if isinstance(spec, Items):
            return self.items(raw, spec, field_path)
        if isinstance(spec, Keyed):
            return self.keyed(raw, spec, field_path)
        if isinstance(spec, Num):
            checked = self.number(raw, spec, field_path)
        elif isinstance(spec, Words):
            checked = self.words(raw, spec, field_path)
        else:
            checked = self.text(raw, spec, field_path)
        self.known[field_path] = checked
        return checked

    def _unwrap(self, raw: Any, field_path: str, need_source: bool) -> Any:
        if not isinstance(raw, Mapping):
            if need_source:
                raise self.fail(field_path, f'expected {{value: ..., source: "..."}}, got '
                                            f"{raw!r:.60} without a source")
            return raw
        for key in raw:
            if key not in ("value", "source"):
                raise self.fail(join(field_path, key), "unknown field; expected value and source")
        if "value" not in raw:
            raise self.fail(f"{field_path}.value", "missing field")
        source = raw.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(f"{field_path}.source",
                            "missing source; say where the value comes from")
        self.sources[field_path] = source.strip()
        return raw["value"]

    def _measured(self, value: Any, spec: Any, field_path: str) -> Any:
        """``value`` itself, or the measurement of this machine when it is ``auto``."""
        if value != AUTO:
            return value
        if not spec.auto:
            raise self.fail(field_path, "cannot be 'auto': this field is not measured at load; "
                                        "write its value")
        try:
            measured, how = self.measure(pattern(field_path), self.known)
        except Unmeasurable as exc:
            failure = self.fail(field_path, f"'auto' cannot be measured on this machine ({exc}); "
                                            "write the value in a copy of this file")
            raise NotMeasurableHere(str(failure)) from None
        written = self.sources.get(field_path)
        self.sources[field_path] = f"measured at load: {how}" + (f"; {written}" if written else "")
        return measured

    def text(self, raw: Any, spec: Text, field_path: str) -> str:
        value = self._measured(self._unwrap(raw, field_path, need_source=False), spec, field_path)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field_path, f"expected a non-empty string, got {value!r:.60}")
        if spec.choices and value not in spec.choices:
            raise self.fail(field_path,
                            f"expected one of {', '.join(spec.choices)}, got {value!r:.60}")
        return value

    def words(self, raw: Any, spec: Words, field_path: str) -> tuple[str, ...]:
        value = self._measured(self._unwrap(raw, field_path, need_source=False), spec, field_path)
        if not isinstance(value, list | tuple):
            raise self.fail(field_path, f"expected a list such as [{', '.join(spec.choices[:3])}],"
                                        f" got {value!r:.60}")
        for i, word in enumerate(value):
            if word not in spec.choices:
                raise self.fail(f"{field_path}[{i}]", f"unknown {word!r:.40}; expected one of: "
                                                      f"{', '.join(spec.choices)}")
        return tuple(dict.fromkeys(value))

    def items(self, raw: Any, spec: Items, field_path: str) -> tuple[dict, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail(field_path, f"expected a non-empty list of mappings of "
                                        f"{', '.join(spec.fields)}, got {raw!r:.60}")
        return tuple(self.section(entry, spec.fields, f"{field_path}[{i}]")
                     for i, entry in enumerate(raw))

    def keyed(self, raw: Any, spec: Keyed, field_path: str) -> dict[str, dict]:
        if not isinstance(raw, Mapping) or not raw:
            raise self.fail(field_path, f"expected a mapping of ids to mappings of "
                                        f"{', '.join(spec.fields)}, got {raw!r:.60}")
        out = {}
        for key, entry in raw.items():
            if not isinstance(key, str) or not _ID.fullmatch(key):
                raise self.fail(join(field_path, key), "an id is lower-case letters, digits and "
                                                       "'.', '-', '_', such as tflm-cmsis-nn-2020")
            out[key] = self.section(entry, spec.fields, join(field_path, key))
        return out

    def number(self, raw: Any, spec: Num, field_path: str) -> int | float:
        value = self._measured(self._unwrap(raw, field_path, need_source=True), spec, field_path)
        what = ("a positive " if spec.positive else "a non-negative ") + (
            "integer" if spec.integer else "number")
        hint = ""
        if isinstance(value, str):
            # PyYAML reads 1.5e9 (no dot or sign in the exponent) as a string.
            hint = " (a string; write numbers unquoted, exponents as 1.5e+9)"
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(value, float):
            ok = math.isfinite(value) and (value.is_integer() or not spec.integer)
            value = int(value) if ok and spec.integer else value
        if ok and isinstance(value, int) and abs(value) > MAX_INT:
            ok, hint = False, " (too large)"
        if ok:
            ok = value > 0 if spec.positive else value >= 0
        if not ok:
            raise self.fail(field_path, f"expected {what}, got {value!r:.60}{hint}")
        return int(value) if spec.integer else float(value)
