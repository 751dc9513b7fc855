"""The hardware-target record and the validation of its YAML form.

Every number in a target file carries the place it came from::

    clock_hz: {value: 120000000, source: "ST DS12023: 120 MHz max"}

Strings may be plain or take the same ``{value, source}`` form. Validation
is strict: a missing, unknown, mistyped or non-positive field, or a number
without a source, is an :class:`~edgedistill.errors.EdgeDistillError` whose
one-line message names the file and the dotted field path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgedistill._yaml import read_yaml
from edgedistill.errors import EdgeDistillError

KINDS = ("mcu", "sbc", "phone")
MAC_KINDS = ("conv", "depthwise", "fully_connected")


@dataclass(frozen=True)
class LatencyModel:
    """Per-target constants of the analytic latency model (see ``profile.latency``).

    Example:
        >>> m = LatencyModel({"conv": 1.0, "depthwise": 2.0, "fully_connected": 1.5},
        ...                  cycles_per_element=3.0, cycles_per_op=900.0,
        ...                  float_slowdown=4.0, threads=1)
        >>> m.cycles_per_mac["depthwise"]
        2.0
    """

    cycles_per_mac: Mapping[str, float]
    cycles_per_element: float
    cycles_per_op: float
    float_slowdown: float
    threads: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "cycles_per_mac", MappingProxyType(dict(self.cycles_per_mac)))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "cycles_per_mac": dict(self.cycles_per_mac),
            "cycles_per_element": self.cycles_per_element,
            "cycles_per_op": self.cycles_per_op,
            "float_slowdown": self.float_slowdown,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class Target:
    """One hardware target: a board or device with its runtime and latency model.

    ``sources`` maps each dotted field path (``"clock_hz"``,
    ``"latency.cycles_per_mac.conv"``) to the text saying where its value
    came from.

    Example:
        >>> from edgedistill import targets
        >>> t = targets.get("nucleo-l4r5zi")
        >>> t.clock_hz, t.kind
        (120000000, 'mcu')
    """

    name: str
    title: str
    kind: str
    processor: str
    runtime: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    reserved_flash_bytes: int
    reserved_ram_bytes: int
    latency: LatencyModel
    sources: Mapping[str, str]
    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def model_flash_bytes(self) -> int:
        """Flash left for the model once the runtime and application are in."""
        return self.flash_bytes - self.reserved_flash_bytes

    @property
    def model_ram_bytes(self) -> int:
        """RAM left for the tensor arena once the runtime and application are in."""
        return self.ram_bytes - self.reserved_ram_bytes

    def to_dict(self) -> dict:
        """JSON-ready form, sources included."""
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "processor": self.processor,
            "runtime": self.runtime,
            "clock_hz": self.clock_hz,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "reserved_flash_bytes": self.reserved_flash_bytes,
            "reserved_ram_bytes": self.reserved_ram_bytes,
            "latency": self.latency.to_dict(),
            "sources": dict(self.sources),
            "path": self.path,
        }


# Field specs: "str", "kind", (number type, must be > 0 rather than >= 0) or a nested dict.
_POSITIVE_INT = ("int", True)
_NON_NEGATIVE_INT = ("int", False)
_POSITIVE_FLOAT = ("float", True)
_NON_NEGATIVE_FLOAT = ("float", False)

_SCHEMA: dict[str, Any] = {
    "name": "str",
    "title": "str",
    "kind": "kind",
    "processor": "str",
    "runtime": "str",
    "clock_hz": _POSITIVE_INT,
    "flash_bytes": _POSITIVE_INT,
    "ram_bytes": _POSITIVE_INT,
    "reserved_flash_bytes": _NON_NEGATIVE_INT,
    "reserved_ram_bytes": _NON_NEGATIVE_INT,
    "latency": {
        "cycles_per_mac": {kind: _POSITIVE_FLOAT for kind in MAC_KINDS},
        "cycles_per_element": _POSITIVE_FLOAT,
        "cycles_per_op": _NON_NEGATIVE_FLOAT,
        "float_slowdown": _POSITIVE_FLOAT,
        "threads": _POSITIVE_INT,
    },
}


class _Checker:
    """Walks the parsed YAML against ``_SCHEMA``, collecting values and sources."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sources: dict[str, str] = {}

    def fail(self, field: str, problem: str) -> EdgeDistillError:
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        return EdgeDistillError(where + problem)

    def mapping(self, data: Any, spec: dict, prefix: str) -> dict:
        if not isinstance(data, Mapping):
            raise self.fail(prefix, f"expected a mapping of {', '.join(spec)}, got {data!r:.60}")
        for key in data:
            if key not in spec:
                field = f"{prefix}.{key}" if prefix else str(key)
                raise self.fail(field, f"unknown field; expected one of: {', '.join(spec)}")
        out = {}
        for key, sub in spec.items():
            field = f"{prefix}.{key}" if prefix else key
            if key not in data:
                raise self.fail(field, "missing field")
            if isinstance(sub, dict):
                out[key] = self.mapping(data[key], sub, field)
            elif sub in ("str", "kind"):
                out[key] = self.string(data[key], field, sub == "kind")
            else:
                out[key] = self.number(data[key], field, sub)
        return out

    def _unwrap(self, raw: Any, field: str, required: bool) -> Any:
        if not isinstance(raw, Mapping):
            if required:
                raise self.fail(
                    field, f'expected {{value: ..., source: "..."}}, got {raw!r:.60} '
                    "without a source"
                )
            return raw
        for key in raw:
            if key not in ("value", "source"):
                raise self.fail(f"{field}.{key}", "unknown field; expected value and source")
        if "value" not in raw:
            raise self.fail(f"{field}.value", "missing field")
        source = raw.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(f"{field}.source", "missing source; say where the value comes from")
        self.sources[field] = source.strip()
        return raw["value"]

    def string(self, raw: Any, field: str, is_kind: bool) -> str:
        value = self._unwrap(raw, field, required=False)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"expected a non-empty string, got {value!r:.60}")
        if is_kind and value not in KINDS:
            raise self.fail(field, f"expected one of {', '.join(KINDS)}, got {value!r:.60}")
        return value

    def number(self, raw: Any, field: str, spec: tuple) -> int | float:
        value = self._unwrap(raw, field, required=True)
        kind, strict = spec
        what = ("a positive " if strict else "a non-negative ") + (
            "integer" if kind == "int" else "number"
        )
        hint = ""
        if isinstance(value, str):
            # PyYAML reads 1.5e9 (no dot or sign in the exponent) as a string.
            hint = " (a string; write numbers unquoted, exponents as 1.5e+9)"
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok and kind == "int":
            ok = float(value).is_integer()
            value = int(value) if ok else value
        if ok:
            ok = value > 0 if strict else value >= 0
        if not ok:
            raise self.fail(field, f"expected {what}, got {value!r:.60}{hint}")
        return int(value) if kind == "int" else float(value)


def parse_target(data: Any, path: str | Path) -> Target:
    """Validates the parsed YAML of one target file and builds its :class:`Target`.

    Args:
        data: the object ``yaml.safe_load`` returned for the file.
        path: the file it came from; its stem must equal ``name``.

    Raises:
        EdgeDistillError: naming the file and field at fault.

    Example:
        >>> parse_target({"name": "x"}, "x.yaml")
        Traceback (most recent call last):
        ...
        edgedistill.errors.EdgeDistillError: x.yaml: title: missing field
    """
    path = str(path)
    checker = _Checker(path)
    values = checker.mapping(data, _SCHEMA, "")
    stem = Path(path).stem
    if values["name"] != stem:
        raise checker.fail("name", f"is {values['name']!r:.60} but must equal the file stem "
                                   f"{stem!r:.60}")
    lat = values["latency"]
    latency = LatencyModel(
        cycles_per_mac=lat["cycles_per_mac"],
        cycles_per_element=lat["cycles_per_element"],
        cycles_per_op=lat["cycles_per_op"],
        float_slowdown=lat["float_slowdown"],
        threads=lat["threads"],
    )
    fields = {k: v for k, v in values.items() if k != "latency"}
    return Target(**fields, latency=latency, sources=checker.sources, path=path)


def load_target_file(path: str | Path) -> Target:
    """Reads and validates one target YAML file.

    Args:
        path: a ``.yaml`` file following the schema of ``targets/*.yaml``.

    Raises:
        EdgeDistillError: missing or unreadable file, invalid YAML, or a
            schema violation (the message names file and field).

    Example:
        >>> from edgedistill.targets import load_target_file
        >>> load_target_file("targets/nucleo-l4r5zi.yaml").ram_bytes  # doctest: +SKIP
        655360
    """
    path = Path(path)
    data = read_yaml(path, "target file")
    return parse_target(data, path)
