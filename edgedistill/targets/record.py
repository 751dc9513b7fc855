"""The frozen records a validated target file becomes (schema in :mod:`.schema`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from edgedistill.errors import EdgeDistillError


def _frozen(self, **fields) -> None:
    for name, value in fields.items():
        object.__setattr__(self, name, value)


def _entry_key(top: str) -> str | None:
    """``runtime.version`` -> ``version``, ``latency.x`` -> itself: the key in a runtimes entry."""
    if top.startswith("runtime."):
        return top[len("runtime."):]
    return top if top == "latency" or top.startswith("latency.") else None


def _swap_sources(sources: Mapping[str, str], current: str, chosen: str) -> dict[str, str]:
    """``sources`` with runtime ``chosen``'s entries moved up and ``current``'s into runtimes."""
    mine = f"runtimes.{chosen}."
    out: dict[str, str] = {}
    for key, text in sources.items():
        if key.startswith(mine):
            entry = key[len(mine):]
            out[entry if entry.startswith("latency") else f"runtime.{entry}"] = text
        elif (entry := _entry_key(key)) is not None:
            out[f"runtimes.{current}.{entry}"] = text
        else:
            out[key] = text
    return out


@dataclass(frozen=True)
class LatencyModel:
    """Per-target constants of the analytic latency model (see ``profile.latency``).

    Example:
        >>> m = LatencyModel({"conv": 1.0, "depthwise": 2.0, "fully_connected": 1.5},
        ...                  cycles_per_element=3.0, cycles_per_op=900.0,
        ...                  float_slowdown=4.0, threads=1)
        >>> m.cycles_per_mac["depthwise"], m.cycles_per_byte, m.cycles_per_invoke
        (2.0, 0.0, 0.0)
    """

    cycles_per_mac: Mapping[str, float]
    cycles_per_element: float
    cycles_per_op: float
    float_slowdown: float
    threads: int
    cycles_per_byte: float = 0.0
    cycles_per_invoke: float = 0.0
    cycles_per_row: float = 0.0
    cycles_per_row_tap: float = 0.0
    depthwise_channel_tile: int = 1

    def __post_init__(self) -> None:
        _frozen(self, cycles_per_mac=MappingProxyType(dict(self.cycles_per_mac)))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"cycles_per_mac": dict(self.cycles_per_mac),
                "cycles_per_element": self.cycles_per_element,
                "cycles_per_op": self.cycles_per_op,
                "float_slowdown": self.float_slowdown, "threads": self.threads,
                "cycles_per_byte": self.cycles_per_byte,
                "cycles_per_invoke": self.cycles_per_invoke,
                "cycles_per_row": self.cycles_per_row,
                "cycles_per_row_tap": self.cycles_per_row_tap,
                "depthwise_channel_tile": self.depthwise_channel_tile}


@dataclass(frozen=True)
class CoreCluster:
    """``count`` cores of one type, at ``clock_hz`` when the file gives it.

    Example:
        >>> CoreCluster("Cortex-A76", 4, 2_400_000_000).to_dict()["count"]
        4
    """

    core: str
    count: int
    clock_hz: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"core": self.core, "count": self.count, "clock_hz": self.clock_hz}


@dataclass(frozen=True)
class Memory:
    """Capacities in bytes; the tensor arena lives in SRAM when there is some, else in DRAM.

    Example:
        >>> Memory(flash_bytes=2**21, reserved_flash_bytes=0, reserved_ram_bytes=0,
        ...        sram_bytes=2**19, dram_bytes=2**23).ram_bytes
        524288
    """

    flash_bytes: int
    reserved_flash_bytes: int
    reserved_ram_bytes: int
    sram_bytes: int | None = None
    dram_bytes: int | None = None

    @property
    def ram_bytes(self) -> int:
        """The memory the tensor arena is planned in."""
        return self.sram_bytes if self.sram_bytes is not None else self.dram_bytes

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"sram_bytes": self.sram_bytes, "dram_bytes": self.dram_bytes,
                "flash_bytes": self.flash_bytes,
                "reserved_flash_bytes": self.reserved_flash_bytes,
                "reserved_ram_bytes": self.reserved_ram_bytes}


@dataclass(frozen=True)
class Runtime:
    """The inference runtime a target's latency constants describe.

    ``id`` names the set of constants (``tflm-cmsis-nn-2020``); it defaults to
    ``name-kernels``.

    Example:
        >>> str(Runtime("tflm", "cmsis-nn", "2.3.1"))
        'tflm-cmsis-nn: tflm + cmsis-nn (2.3.1)'
    """

    name: str
    kernels: str
    version: str | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            _frozen(self, id=f"{self.name}-{self.kernels}")

    def __str__(self) -> str:
        return f"{self.id}: {self.name} + {self.kernels}" + (
            f" ({self.version})" if self.version else "")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"id": self.id, "name": self.name, "kernels": self.kernels,
                "version": self.version}


@dataclass(frozen=True)
class RuntimeOption:
    """Another runtime a target can be estimated for, with its own latency constants.

    Example:
        >>> from edgedistill import targets
        >>> option = targets.get("nucleo-l4r5zi").runtimes["microtvm-cmsis-nn-2022"]
        >>> option.runtime.name, option.latency.cycles_per_mac["conv"] < 6
        ('microtvm', True)
    """

    runtime: Runtime
    latency: LatencyModel

    def to_dict(self) -> dict:
        """JSON-ready form, the runtime's fields beside its ``latency``."""
        return {**self.runtime.to_dict(), "latency": self.latency.to_dict()}


@dataclass(frozen=True)
class Npu:
    """A neural accelerator beside the cores (e.g. Arm Ethos-U55 with 256 MACs per cycle).

    ``accelerator_config``, ``system_config`` and ``memory_mode`` are Vela's
    ``--accelerator-config``, ``--system-config`` and ``--memory-mode``.
    """

    name: str
    macs_per_cycle: int
    accelerator_config: str | None = None
    system_config: str | None = None
    memory_mode: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return dict(vars(self))


@dataclass(frozen=True)
class FlashSetup:
    """How ``edgedistill flash`` reaches the device: ``method`` (``ssh``, ``adb``,
    ``firmware``), the default ``device`` address (None: the user gives one), over ssh
    the device's ``python``, over adb the path of TFLite's ``benchmark_model`` (None:
    searched for), and for firmware the ``build_system``, its ``board`` id and the
    serial console's ``baud``.

    Example:
        >>> FlashSetup("ssh", None, "python3").to_dict()
        {'method': 'ssh', 'device': None, 'python': 'python3'}
    """

    method: str
    device: str | None
    python: str | None = None
    benchmark_model: str | None = None
    build_system: str | None = None
    board: str | None = None
    baud: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready form: the method, the device, and the fields of that method."""
        return {k: v for k, v in vars(self).items() if v is not None or k == "device"}


@dataclass(frozen=True)
class Target:
    """One hardware target: a board or device with its runtime and latency model.

    ``sources`` maps each dotted field path (``"clock_hz"``,
    ``"memory.flash_bytes"``, ``"cores[0].count"``,
    ``"latency.cycles_per_mac.conv"``) to the text saying where its value came
    from. ``extends`` lists the files it inherits from, nearest first.

    Example:
        >>> from edgedistill import targets
        >>> t = targets.get("nucleo-l4r5zi")
        >>> t.clock_hz, t.kind, t.ram_bytes
        (120000000, 'mcu', 655360)
    """

    name: str
    title: str
    kind: str
    processor: str
    cores: tuple[CoreCluster, ...]
    isa: tuple[str, ...]
    clock_hz: int
    memory: Memory
    runtime: Runtime
    npu: Npu | None
    latency: LatencyModel
    sources: Mapping[str, str]
    path: str
    extends: tuple[str, ...] = ()
    runtimes: Mapping[str, RuntimeOption] = field(default_factory=dict)
    flash: FlashSetup | None = None

    def __post_init__(self) -> None:
        _frozen(self, sources=MappingProxyType(dict(self.sources)),
                runtimes=MappingProxyType(dict(self.runtimes)))

    @property
    def runtime_ids(self) -> tuple[str, ...]:
        """The runtime the estimate is for, then the others the file gives constants for."""
        return (self.runtime.id, *(i for i in self.runtimes if i != self.runtime.id))

    def with_runtime(self, runtime_id: str) -> Target:
        """This target estimated for another of its runtimes.

        The chosen runtime's constants and their sources move to ``runtime``
        and ``latency``; the current ones take its place in ``runtimes``.

        Raises:
            EdgeDistillError: the file gives no constants for ``runtime_id``.

        Example:
            >>> from edgedistill import targets
            >>> t = targets.get("nucleo-l4r5zi").with_runtime("microtvm-cmsis-nn-2022")
            >>> t.runtime.id, "tflm-cmsis-nn-2020" in t.runtime_ids
            ('microtvm-cmsis-nn-2022', True)
        """
        if runtime_id == self.runtime.id:
            return self
        if runtime_id not in self.runtimes:
            raise EdgeDistillError(
                f"{self.path}: no latency constants for runtime {runtime_id!r}; this target "
                f"has: {', '.join(self.runtime_ids)} (add an entry under runtimes:)")
        chosen = self.runtimes[runtime_id]
        others = {i: o for i, o in self.runtimes.items() if i != runtime_id}
        others[self.runtime.id] = RuntimeOption(self.runtime, self.latency)
        return replace(self, runtime=chosen.runtime, latency=chosen.latency, runtimes=others,
                       sources=_swap_sources(self.sources, self.runtime.id, runtime_id))

    @property
    def flash_bytes(self) -> int:
        """Where the model is stored."""
        return self.memory.flash_bytes

    @property
    def ram_bytes(self) -> int:
        """The memory the tensor arena is planned in (SRAM if any, else DRAM)."""
        return self.memory.ram_bytes

    @property
    def reserved_flash_bytes(self) -> int:
        """Flash taken by the runtime, OS and application."""
        return self.memory.reserved_flash_bytes

    @property
    def reserved_ram_bytes(self) -> int:
        """RAM taken by the runtime, OS and application."""
        return self.memory.reserved_ram_bytes

    @property
    def model_flash_bytes(self) -> int:
        """Flash left for the model once the runtime and application are in."""
        return self.flash_bytes - self.reserved_flash_bytes

    @property
    def model_ram_bytes(self) -> int:
        """RAM left for the tensor arena once the runtime and application are in."""
        return self.ram_bytes - self.reserved_ram_bytes

    @property
    def core_count(self) -> int | None:
        """All cores listed in ``cores``; None when the file lists none."""
        return sum(c.count for c in self.cores) if self.cores else None

    def to_dict(self) -> dict:
        """JSON-ready form, sources included; keys follow the YAML file's layout."""
        return {"name": self.name, "title": self.title, "kind": self.kind,
                "processor": self.processor, "cores": [c.to_dict() for c in self.cores],
                "isa": list(self.isa), "clock_hz": self.clock_hz,
                "memory": self.memory.to_dict(), "runtime": self.runtime.to_dict(),
                "npu": self.npu.to_dict() if self.npu else None,
                "latency": self.latency.to_dict(),
                "runtimes": {i: o.to_dict() for i, o in self.runtimes.items()},
                "flash": self.flash.to_dict() if self.flash else None,
                "extends": list(self.extends),
                "sources": dict(self.sources), "path": self.path}
