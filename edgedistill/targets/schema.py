"""The hardware-target record and the schema of its YAML file.

Every number carries the place it came from; strings and lists may::

    clock_hz: {value: 120000000, source: "ST DS12023: 120 MHz max"}

Fields (required unless marked optional; defaults in brackets):

- ``name``: equal to the file's stem; never inherited.
- ``title``, ``processor``: display strings.
- ``kind``: one of ``mcu``, ``sbc``, ``phone``, ``host``.
- ``cores`` (optional) [none listed]: clusters ``[{core, count, clock_hz?}]``.
- ``isa`` (optional) [none]: features from :data:`ISA_FEATURES`.
- ``clock_hz``: the clock of the cores that run inference; the latency model
  divides by it.
- ``memory``: ``flash_bytes`` (where the model is stored: on-chip or board
  flash, a phone's UFS, a Pi's microSD), ``reserved_flash_bytes`` and
  ``reserved_ram_bytes`` (taken by the OS, runtime and application), and at
  least one of ``sram_bytes`` / ``dram_bytes``, each optional. The tensor
  arena goes in SRAM when the target has it, else in DRAM.
- ``runtime``: ``name`` (:data:`RUNTIMES`), ``kernels`` (optional,
  :data:`KERNELS`) [``reference`` for tflm, ``xnnpack`` for litert, ``ethos-u``
  for vela], ``version`` (optional) [unknown].
- ``npu`` (optional): ``{name, macs_per_cycle}`` of a neural accelerator.
- ``latency``: per-operator-kind efficiency for ``profile.latency``:
  ``cycles_per_mac.{conv, depthwise, fully_connected}``,
  ``cycles_per_element``, ``cycles_per_op``, ``float_slowdown``, and optional
  ``cycles_per_byte`` [0], ``cycles_per_invoke`` [0], ``cycles_per_row`` [0],
  ``cycles_per_row_tap`` [0], ``depthwise_channel_tile`` [1] and ``threads`` [1].
- ``runtimes`` (optional) [none]: other runtimes' constants, by runtime id:
  ``{name, kernels?, version?, latency?}``, ``latency`` giving only what
  differs from the target's (:meth:`Target.with_runtime`).
- ``flash`` (optional) [cannot be flashed]: how ``edgedistill flash`` puts a
  model on the device: ``method`` (:data:`FLASH_METHODS`), ``device``
  (optional) [none: ``--device`` is needed over ssh, the only device attached
  over adb], the default address, for ``ssh`` ``python`` (optional)
  [``python3``], the device's Python, for ``adb`` ``benchmark_model``
  (optional) [searched for on the phone], TFLite's benchmark tool, and for
  ``firmware`` ``build_system`` (:data:`BUILD_SYSTEMS`), ``board`` (the build
  system's board id: a Zephyr board, an ESP-IDF target, an Arduino FQBN) and
  ``baud`` (optional) [115200], the serial console's speed.

New fields are added as optional ones with a default, so files written today
keep loading.

``value: auto`` (``processor``, ``cores[].core``, ``cores[].count``, ``isa``,
``clock_hz``, ``memory`` byte counts but ``sram_bytes``, every ``latency``
field) is measured on the machine loading the file
(:mod:`edgedistill.targets._host`; the latency constants with LiteRT on probe
models, :mod:`edgedistill.profile.probe`); the recorded source then starts
with ``measured at load:`` and says how.

``extends`` and abstract bases are the loader's business
(:mod:`edgedistill.targets.loader`). Validation is strict: a missing,
unknown, mistyped or non-positive field, or a number without a source, is an
:class:`~edgedistill.errors.EdgeDistillError` whose one-line message names the
file and the dotted field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgedistill.targets import _host
from edgedistill.targets._check import Checker, Items, Keyed, Num, Section, Text, Words
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

__all__ = ["SCHEMA", "parse_target"]

KINDS = ("mcu", "sbc", "phone", "host")
MAC_KINDS = ("conv", "depthwise", "fully_connected")
ISA_FEATURES = ("fpu", "dsp", "helium", "simd", "neon", "dotprod", "i8mm", "fp16", "bf16", "sve",
                "sve2", "sse4.2", "avx", "avx2", "fma", "avx512", "avx512-vnni", "avx-vnni", "amx")
RUNTIMES = ("tflm", "litert", "vela", "microtvm", "onnc")
KERNELS = ("reference", "cmsis-nn", "esp-nn", "xnnpack", "ruy", "ethos-u")
DEFAULT_KERNELS = {"tflm": "reference", "litert": "xnnpack", "vela": "ethos-u",
                   "microtvm": "cmsis-nn", "onnc": "cmsis-nn"}
FLASH_METHODS = ("ssh", "adb", "firmware")
# The build systems of firmware projects (edgedistill.flash.firmware.BUILD_SYSTEMS).
BUILD_SYSTEMS = ("zephyr", "esp-idf", "arduino")
VELA_ACCELERATORS = tuple(f"ethos-u{n}" for n in (
    "55-32", "55-64", "55-128", "55-256", "65-256", "65-512", "85-128", "85-256", "85-512",
    "85-1024", "85-2048"))

_INT = Num(integer=True)
_BYTES = Num(integer=True, required=False, auto=True)
_RESERVED = Num(integer=True, positive=False, auto=True)

_RUNTIME = {"name": Text(choices=RUNTIMES), "kernels": Text(choices=KERNELS, required=False),
            "version": Text(required=False), "id": Text(required=False)}
# threads first: the constants written auto are measured on that many threads.
_LATENCY = {
    "threads": Num(integer=True, required=False, default=1, auto=True,
                   default_source="default: one thread"),
    "cycles_per_mac": Section({kind: Num(auto=True) for kind in MAC_KINDS}),
    "cycles_per_element": Num(positive=False, auto=True),
    "cycles_per_op": Num(positive=False, auto=True),
    "cycles_per_byte": Num(positive=False, required=False, default=0.0, auto=True,
                           default_source="default: memory traffic not costed"),
    "cycles_per_invoke": Num(positive=False, required=False, default=0.0, auto=True,
                             default_source="default: per-invoke overhead not costed"),
    "cycles_per_row": Num(positive=False, required=False, default=0.0, auto=True,
                          default_source="default: output positions not costed apart"),
    "cycles_per_row_tap": Num(positive=False, required=False, default=0.0, auto=True,
                              default_source="default: kernel taps not costed apart"),
    "depthwise_channel_tile": Num(integer=True, required=False, default=1, auto=True,
                                  default_source="default: channels counted as they are"),
    "float_slowdown": Num(auto=True),
}


def _optional(spec: Any) -> Any:
    """``spec`` that may be left out of a runtimes entry, which then keeps the target's value."""
    if isinstance(spec, Section):
        return Section({k: _optional(v) for k, v in spec.fields.items()}, required=False)
    return replace(spec, required=False, default=None, auto=False)


SCHEMA: dict[str, Any] = {
    "name": Text(),
    "title": Text(),
    "kind": Text(choices=KINDS),
    "processor": Text(auto=True),
    "cores": Items({"core": Text(auto=True), "count": Num(integer=True, auto=True),
                    "clock_hz": Num(integer=True, required=False)}),
    "isa": Words(ISA_FEATURES, auto=True),
    "clock_hz": Num(integer=True, auto=True),
    "memory": Section({
        "sram_bytes": Num(integer=True, required=False),
        "dram_bytes": _BYTES,
        "flash_bytes": Num(integer=True, auto=True),
        "reserved_flash_bytes": _RESERVED,
        "reserved_ram_bytes": _RESERVED,
    }),
    "runtime": Section(_RUNTIME),
    "runtimes": Keyed({**_RUNTIME, "latency": Section(
        {k: _optional(v) for k, v in _LATENCY.items()}, required=False)}),
    "npu": Section({"name": Text(), "macs_per_cycle": _INT,
                    "accelerator_config": Text(choices=VELA_ACCELERATORS, required=False),
                    "system_config": Text(required=False),
                    "memory_mode": Text(required=False)}, required=False),
    "latency": Section(_LATENCY),
    "flash": Section({"method": Text(choices=FLASH_METHODS), "device": Text(required=False),
                      "python": Text(required=False), "benchmark_model": Text(required=False),
                      "build_system": Text(choices=BUILD_SYSTEMS, required=False),
                      "board": Text(required=False),
                      "baud": Num(integer=True, required=False, default=115200,
                                  default_source="default: 115200 baud, the usual console")},
                     required=False),
}


def _check_capacities(checker: Checker, v: dict) -> None:
    mem = v["memory"]
    ram = mem["sram_bytes"] if mem["sram_bytes"] is not None else mem["dram_bytes"]
    if ram is None:
        raise checker.fail("memory", "give sram_bytes or dram_bytes: the memory the tensor "
                                     "arena is planned in")
    for field, capacity in (("reserved_flash_bytes", mem["flash_bytes"]),
                            ("reserved_ram_bytes", ram)):
        if mem[field] > capacity:
            raise checker.fail(f"memory.{field}", f"{mem[field]} is more than the {capacity} "
                                                  "bytes there are")
    cores = sum(c["count"] for c in v["cores"])
    if cores and v["latency"]["threads"] > cores:
        raise checker.fail("latency.threads", f"{v['latency']['threads']} threads on the "
                                              f"{cores} cores listed in cores")


def parse_target(data: Any, path: str | Path, origins: Mapping[str, str] | None = None,
                 extends: tuple[str, ...] = ()) -> Target:
    """Validates a target mapping (bases already merged in) and builds its :class:`Target`.

    Args:
        data: the object ``yaml.safe_load`` returned for the file, merged with
            its bases.
        path: the file it came from; its stem must equal ``name``.
        origins: the file that wrote each field path, for error messages;
            fields not in it are blamed on ``path``.
        extends: the base files merged in, nearest first.

    Raises:
        EdgeDistillError: naming the file and field at fault.

    Example:
        >>> parse_target({"name": "x"}, "x.yaml")
        Traceback (most recent call last):
        ...
        edgedistill.errors.EdgeDistillError: x.yaml: title: missing field
    """
    path = str(path)
    checker = Checker(path, origins, _host.measure)
    v = checker.section(data, SCHEMA, "")
    stem = Path(path).stem
    if v["name"] != stem:
        raise checker.fail("name", f"is {v['name']!r:.60} but must equal the file stem "
                                   f"{stem!r:.60}")
    _check_capacities(checker, v)
    runtime, latency = _runtime(v["runtime"]), LatencyModel(**v["latency"])
    options = {}
    for rid, entry in v["runtimes"].items():
        option = RuntimeOption(_runtime({**entry, "id": rid}),
                               _overlay(latency, entry["latency"] or {}))
        if option.runtime.id == runtime.id:
            raise checker.fail(f"runtimes.{rid}", "is the id of runtime: itself; give the "
                                                  "other runtimes here")
        for field in (f for f in option.latency.to_dict() if f != "cycles_per_mac"):
            _inherit(checker.sources, rid, field)
        for kind in MAC_KINDS:
            _inherit(checker.sources, rid, f"cycles_per_mac.{kind}")
        options[rid] = option
    return Target(
        name=v["name"], title=v["title"], kind=v["kind"], processor=v["processor"],
        cores=tuple(CoreCluster(**c) for c in v["cores"]), isa=v["isa"], clock_hz=v["clock_hz"],
        memory=Memory(**v["memory"]), runtime=runtime,
        npu=Npu(**v["npu"]) if v["npu"] else None,
        flash=_flash_setup(checker, v["flash"]) if v["flash"] else None,
        latency=latency, sources=checker.sources, path=path,
        extends=tuple(extends), runtimes=options)


def _flash_setup(checker: Checker, v: Mapping[str, Any]) -> FlashSetup:
    if v["method"] == "firmware":
        for field in ("build_system", "board"):
            if v[field] is None:
                raise checker.fail(f"flash.{field}", "missing field: method firmware needs "
                                                     "build_system and board")
    ssh, firmware = v["method"] == "ssh", v["method"] == "firmware"
    return FlashSetup(v["method"], v["device"], (v["python"] or "python3") if ssh else None,
                      v["benchmark_model"], v["build_system"], v["board"],
                      v["baud"] if firmware else None)


def _runtime(v: Mapping[str, Any]) -> Runtime:
    return Runtime(v["name"], v["kernels"] or DEFAULT_KERNELS[v["name"]], v["version"],
                   v["id"] or "")


def _overlay(base: LatencyModel, given: Mapping[str, Any]) -> LatencyModel:
    """``base`` with the values a runtimes entry gives; what it leaves out stays."""
    fields = {k: v for k, v in given.items() if v is not None and k != "cycles_per_mac"}
    per_mac = {k: v for k, v in (given.get("cycles_per_mac") or {}).items() if v is not None}
    return replace(base, cycles_per_mac={**base.cycles_per_mac, **per_mac}, **fields)


def _inherit(sources: dict[str, str], rid: str, field: str) -> None:
    """A value a runtimes entry leaves out keeps the target's value and its source."""
    here = f"runtimes.{rid}.latency.{field}"
    if here not in sources:
        sources[here] = sources[f"latency.{field}"]
