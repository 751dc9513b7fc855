"""Facts about the machine edgedistill runs on, for target fields written ``value: auto``.

Each measurer returns the value and a short account of how it was read; that
account becomes the start of the field's source. Linux exposes everything
here through ``/proc`` and ``/sys``; where a fact is missing the measurer
raises :class:`~edgedistill.targets._check.Unmeasurable` and the loader turns
it into a one-line error naming the field.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgedistill.targets._check import Unmeasurable

CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")
CPUFREQ = Path("/sys/devices/system/cpu")

# /proc/cpuinfo "flags" (x86) and "Features" (Arm) words -> the schema's ISA_FEATURES.
_ISA_WORDS = {
    "fpu": "fpu", "fp": "fpu", "asimd": "neon", "neon": "neon", "asimddp": "dotprod",
    "i8mm": "i8mm", "asimdhp": "fp16", "bf16": "bf16", "sve": "sve", "sve2": "sve2",
    "sse4_2": "sse4.2", "avx": "avx", "avx2": "avx2", "fma": "fma", "avx512f": "avx512",
    "avx512_vnni": "avx512-vnni", "avx_vnni": "avx-vnni", "amx_int8": "amx",
}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise Unmeasurable(f"cannot read {path}: {exc.strerror or exc}") from None


def _cpuinfo_values(key: str) -> list[str]:
    values = []
    for line in _read(CPUINFO).splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key:
            values.append(value.strip())
    return values


def _processor() -> tuple[str, str]:
    names = _cpuinfo_values("model name")
    if names and names[0]:
        return names[0], f"'model name' in {CPUINFO}"
    # Arm kernels often print no model name; the part number identifies the core.
    parts = _cpuinfo_values("cpu part")
    if parts:
        return f"{platform.machine()} CPU (part {parts[0]})", f"'CPU part' in {CPUINFO}"
    raise Unmeasurable(f"{CPUINFO} names no 'model name' or 'CPU part'")


def _clock_hz() -> tuple[int, str]:
    khz = []
    for path in CPUFREQ.glob("cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        try:
            khz.append(int(path.read_text().strip()))
        except (OSError, ValueError):
            continue
    if khz:
        return max(khz) * 1000, f"the highest cpufreq cpuinfo_max_freq under {CPUFREQ}"
    # Virtual machines often have no cpufreq; the kernel's current clock is the next best.
    mhz = []
    for value in _cpuinfo_values("cpu mhz"):
        try:
            mhz.append(float(value))
        except ValueError:
            continue
    if mhz and max(mhz) > 0:
        return round(max(mhz) * 1e6), f"the highest 'cpu MHz' in {CPUINFO} (current, not maximum)"
    raise Unmeasurable(f"no cpufreq under {CPUFREQ} and no 'cpu MHz' in {CPUINFO}")


def _core_count() -> tuple[int, str]:
    count = os.cpu_count()
    if not count:
        raise Unmeasurable("os.cpu_count() is unknown")
    return count, "os.cpu_count(), logical CPUs"


def _threads() -> tuple[int, str]:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), "CPUs this process may run on (sched_getaffinity)"
    return _core_count()


def _isa() -> tuple[list[str], str]:
    words = set()
    for key in ("flags", "features"):
        for line in _cpuinfo_values(key):
            words.update(line.split())
    if not words:
        raise Unmeasurable(f"{CPUINFO} lists no 'flags' or 'Features'")
    found = sorted({_ISA_WORDS[w] for w in words if w in _ISA_WORDS})
    return found, f"'flags'/'Features' in {CPUINFO}"


def _meminfo_bytes(key: str) -> int:
    for line in _read(MEMINFO).splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name == key and fields and fields[0].isdigit():
            return int(fields[0]) * 1024
    raise Unmeasurable(f"{MEMINFO} has no {key}")


def _dram_bytes() -> tuple[int, str]:
    return _meminfo_bytes("MemTotal"), f"MemTotal in {MEMINFO}"


def _reserved_ram_bytes() -> tuple[int, str]:
    used = _meminfo_bytes("MemTotal") - _meminfo_bytes("MemAvailable")
    return max(used, 0), f"MemTotal - MemAvailable in {MEMINFO}, what is in use now"


def _disk() -> tuple[int, int]:
    """Total and free bytes of the file system holding the home directory."""
    try:
        usage = shutil.disk_usage(Path.home())
    except (OSError, RuntimeError) as exc:
        raise Unmeasurable(f"cannot read the home directory's file system: {exc}") from None
    return usage.total, usage.free


def _flash_bytes() -> tuple[int, str]:
    return _disk()[0], "size of the file system holding the home directory"


def _reserved_flash_bytes() -> tuple[int, str]:
    total, free = _disk()
    return total - free, "space in use on the file system holding the home directory"


def _latency(field: str) -> Callable[..., tuple[float, str]]:
    """The measurer of a ``latency`` constant: LiteRT on probe models, on as many threads as
    the file's ``latency.threads`` (checked before the constants), at the file's clock,
    floored by the peak of the file's ISA."""
    def measure_it(known: Mapping[str, Any]) -> tuple[float, str]:
        # Imported here: the probes need LiteRT, which only these fields' loading uses.
        from edgedistill.errors import EdgeDistillError
        from edgedistill.profile.probe import host_constant

        try:
            return host_constant(field, known.get("clock_hz") or _clock_hz()[0],
                                 known.get("latency.threads") or _threads()[0],
                                 tuple(known.get("isa") or _isa()[0]))
        except (EdgeDistillError, ImportError) as exc:
            raise Unmeasurable(str(exc)) from None
    return measure_it


_LATENCY_FIELDS = tuple(f"latency.{field}" for field in (
    "cycles_per_mac.conv", "cycles_per_mac.depthwise", "cycles_per_mac.fully_connected",
    "cycles_per_element", "cycles_per_op", "cycles_per_byte", "cycles_per_invoke",
    "cycles_per_row", "cycles_per_row_tap", "depthwise_channel_tile", "float_slowdown"))

MEASURES: dict[str, Callable[..., tuple[Any, str]]] = {
    "processor": _processor,
    "cores[].core": _processor,
    "cores[].count": _core_count,
    "isa": _isa,
    "clock_hz": _clock_hz,
    "memory.dram_bytes": _dram_bytes,
    "memory.flash_bytes": _flash_bytes,
    "memory.reserved_flash_bytes": _reserved_flash_bytes,
    "memory.reserved_ram_bytes": _reserved_ram_bytes,
    "latency.threads": _threads,
    **{field: _latency(field.removeprefix("latency.")) for field in _LATENCY_FIELDS},
}


def measure(field_pattern: str, known: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """This machine's value for a field (``cores[].count`` form) and how it was read.

    Args:
        field_pattern: the field, list indices written ``[]``.
        known: the fields checked before it, by path; the latency constants
            are measured at the file's ``clock_hz`` and ``latency.threads``.

    Raises:
        Unmeasurable: this machine does not expose it.

    Example:
        >>> value, how = measure("latency.threads")
        >>> value >= 1
        True
    """
    measurer = MEASURES[field_pattern]
    if field_pattern in _LATENCY_FIELDS:
        return measurer(known or {})
    return measurer()
