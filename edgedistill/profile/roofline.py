"""The roofline floor: the fastest a model could run if every MAC unit were busy every cycle.

``floor_ms = MACs / (peak MACs per cycle per core x threads) / clock``. The
peak is the int8 multiply-accumulate rate of the widest instruction the
target's ISA has, read off the target file's ``npu``, ``isa`` and ``cores``
(first rule that matches, table below, each with its source). Float32 MACs
are floored at the same int8 rate, so a float model's floor is looser (lower)
than its hardware's float peak would give; the floor stays a floor.

An estimate at 100% of its floor would be a perfect kernel with no memory
stalls. Above 100% means the target ran faster than its listed clock allows
(a turbo clock the kernel does not report, on the host).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgedistill.targets import Target


@dataclass(frozen=True)
class Peak:
    """A target's peak int8 MACs per cycle, over the cores (or NPU) that run inference.

    Example:
        >>> Peak(2.0, "dsp: SMLAD ...").to_dict()["macs_per_cycle"]
        2.0
    """

    macs_per_cycle: float
    source: str

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"macs_per_cycle": self.macs_per_cycle, "source": self.source}


# (ISA feature or core-name fragment, int8 MACs per cycle per core, source). First match wins.
_RULES: tuple[tuple[str, float, str], ...] = (
    ("amx", 1024.0, "Intel AMX: TDPBSSD multiplies 16x64 by 64x16 int8 tiles, 16384 MACs in "
                    "16 cycles (Intel Architecture Instruction Set Extensions reference)"),
    ("avx512-vnni", 64.0, "AVX-512 VNNI: VPDPBUSD does 64 int8 MACs per 512-bit instruction; "
                          "one per cycle assumed (Zen 4 splits it in two 256-bit halves; Intel "
                          "cores with two 512-bit FMA ports reach twice this)"),
    ("avx-vnni", 64.0, "AVX-VNNI: VPDPBUSD on 256-bit registers, 32 int8 MACs, two ports"),
    ("avx2", 64.0, "AVX2: VPMADDUBSW does 32 int8 products summed in pairs per 256-bit "
                   "instruction, two vector ALU ports (Intel optimization manual)"),
    ("i8mm", 64.0, "Armv8.6 int8 matrix multiply: SMMLA does 32 int8 MACs per 128-bit "
                   "instruction; two per cycle assumed (two 128-bit SIMD pipes, as on "
                   "Cortex-A715)"),
    ("dotprod", 32.0, "Armv8.2 dot product: SDOT does 16 int8 MACs per 128-bit instruction, "
                      "two SIMD pipes (Cortex-A76 Software Optimization Guide)"),
    ("Cortex-A53", 4.0, "Cortex-A53 has no dot product: int8 is widened and multiplied by "
                        "SMLAL (8 int16 MACs per 128-bit instruction) on a 64-bit NEON "
                        "datapath, half an instruction per cycle (Cortex-A53 TRM)"),
    ("neon", 8.0, "NEON without dot product: SMLAL, 8 int16 MACs per 128-bit instruction, one "
                  "multiply pipe (Cortex-A72 Software Optimization Guide)"),
    ("helium", 8.0, "Helium (MVE) on Cortex-M55: 128-bit vectors in two beats of 64 bits, so "
                    "8 int8 MACs per cycle (Arm Cortex-M55 TRM, beat-wise execution)"),
    ("simd", 16.0, "ESP32-S3 PIE: EE.VMULAS.S8 multiplies 16 int8 pairs per 128-bit "
                   "instruction; one per cycle assumed (ESP32-S3 Technical Reference Manual)"),
    ("dsp", 2.0, "Armv7E-M DSP extension: SMLAD does two 16-bit MACs in one cycle "
                 "(Cortex-M4 TRM instruction timings); CMSIS-NN widens int8 to int16 for it"),
    ("Cortex-M0", 0.5, "Cortex-M0+: no SIMD; a MAC is a single-cycle MULS plus an ADD on a "
                       "single-issue pipeline (RP2040 datasheet: single-cycle multiplier)"),
)


# The ISA words of the rules, the core-name rules left out.
PEAK_WORDS = tuple(word for word, _, _ in _RULES if not word.startswith("Cortex"))


def peak_macs_per_cycle(target: Target) -> Peak | None:
    """The target's peak, from its NPU when Vela compiles for it, else its ISA and cores.

    Returns None when no rule matches (an ISA this table does not know).

    Example:
        >>> from edgedistill import targets
        >>> peak_macs_per_cycle(targets.get("nucleo-l4r5zi")).macs_per_cycle
        2.0
    """
    if target.npu is not None and target.runtime.name == "vela":
        return Peak(float(target.npu.macs_per_cycle),
                    f"npu.macs_per_cycle of {target.npu.name}: "
                    f"{target.sources.get('npu.macs_per_cycle', '')}")
    threads = target.latency.threads
    found = peak_per_core(target.isa, [c.core for c in target.cores])
    if found is None:
        return None
    per_core, source = found
    many = f" x {threads} threads" if threads > 1 else ""
    return Peak(per_core * threads,
                f"derived: {per_core:g} int8 MACs per cycle per core{many}; {source}")


def peak_per_core(isa: Sequence[str], cores: Sequence[str] = ()) -> tuple[float, str] | None:
    """Peak int8 MACs per cycle of one core with these ISA features (or core names), and why.

    Example:
        >>> peak_per_core(["fpu", "dsp"])[0]
        2.0
    """
    names = " ".join(cores)
    for word, per_core, source in _RULES:
        if word in isa or (word.startswith("Cortex") and word in names):
            return per_core, source
    return None


def floor_ms(macs: int, target: Target, peak: Peak | None) -> float | None:
    """The roofline floor of ``macs`` on ``target``; None without a peak.

    Example:
        >>> from edgedistill import targets
        >>> t = targets.get("nucleo-l4r5zi")
        >>> floor_ms(2_400_000, t, peak_macs_per_cycle(t))
        10.0
    """
    if peak is None:
        return None
    return macs / peak.macs_per_cycle / target.clock_hz * 1000.0
