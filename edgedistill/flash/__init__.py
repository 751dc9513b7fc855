"""Put a model on a device and measure it there, beside the profile's estimate.

:func:`flash` follows the target file's ``flash:`` section (``method``,
``device``, ...): ``ssh`` for Linux boards (:mod:`.ssh`), ``adb`` for phones
(:mod:`.adb`; the methods are in :data:`METHODS`). It profiles the model
on the target first and refuses one that will not fit in its flash or RAM
(``force`` overrides), then copies, checks, times and cleans up, and returns a
:class:`FlashResult` whose ``profile`` has the measured latency merged into
the target's fit.

Example:
    >>> from edgedistill.flash import flash
    >>> result = flash("kws.tflite", "raspberry-pi-4", device="pi@pi4.local")  # doctest: +SKIP
    >>> result.measured.median_ms, result.profile.targets[0].latency_ms  # doctest: +SKIP
    (3.1, 2.4)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.flash.commands import Command, Runner
from edgedistill.profile import ProfileReport, profile_model
from edgedistill.profile.fit import TargetFit
from edgedistill.profile.measure import Measurement
from edgedistill.profile.verdict import FLASH, RAM
from edgedistill.targets import Target

__all__ = ["METHODS", "FlashResult", "Job", "flash"]


@dataclass(frozen=True)
class FlashResult:
    """What :func:`flash` did on one device and what it measured.

    Attributes:
        target: the target's name.
        method: how the device was reached (``ssh``).
        device: its address.
        dry_run: True when the commands were only printed.
        commands: every command run (or printed), in order.
        measured: the device's latency figures; None on a dry run.
        peak_rss_bytes: the device process's peak resident memory, if known.
        model_rss_bytes: the part of it that came with the model and interpreter.
        kept_dir: where the files stayed on the device (``keep``), else None.
        profile: the profile of the model on the target, its fit carrying
            ``measured``.
    """

    target: str
    method: str
    device: str
    dry_run: bool
    commands: tuple[Command, ...]
    measured: Measurement | None
    peak_rss_bytes: int | None
    model_rss_bytes: int | None
    kept_dir: str | None
    profile: ProfileReport

    @property
    def fit(self) -> TargetFit:
        """The target's fit in :attr:`profile`."""
        return self.profile.targets[0]

    @property
    def estimate_error(self) -> float | None:
        """estimate / measured - 1 (the measured median, else mean); None before a measurement."""
        if self.measured is None:
            return None
        return self.fit.latency_ms / self.measured.typical_ms - 1.0

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"target": self.target, "method": self.method, "device": self.device,
                "dry_run": self.dry_run, "commands": [c.to_dict() for c in self.commands],
                "measured": self.measured.to_dict() if self.measured else None,
                "peak_rss_bytes": self.peak_rss_bytes, "model_rss_bytes": self.model_rss_bytes,
                "estimate_ms": self.fit.latency_ms, "estimate_error": self.estimate_error,
                "kept_dir": self.kept_dir, "profile": self.profile.to_dict()}


def flash(model: str | os.PathLike, target: str | os.PathLike | Target,
          device: str | None = None, *, runs: int = 50, warmup: int = 10,
          threads: int | None = None, keep: bool = False, force: bool = False,
          dry_run: bool = False, ssh_config: str | os.PathLike | None = None,
          python: str | None = None, benchmark_model: str | None = None,
          timeout_s: float = 300.0, echo: Callable[[str], None] | None = None) -> FlashResult:
    """Copies ``model`` to a device of ``target``, times it there and returns the figures.

    Args:
        model: the .tflite file.
        target: a target name, a target file, or a loaded :class:`Target`.
        device: the device's address (an ssh destination, an adb serial);
            default the target file's ``flash.device``.
        runs: timed invokes on the device.
        warmup: untimed invokes first.
        threads: the runtime's thread count; default the target's
            ``latency.threads``, the count its estimate is for.
        keep: leave the files on the device.
        force: flash a model the profile says will not fit.
        dry_run: print every command (to ``echo``) without running any.
        ssh_config: ssh: a configuration file to use instead of ``~/.ssh/config``.
        python: ssh: the device's Python; default the target's ``flash.python``.
        benchmark_model: adb: TFLite's benchmark tool, a local binary to push
            or a path on the phone; default the target's ``flash.benchmark_model``,
            else searched for on the phone.
        timeout_s: the time limit of each step on the device.
        echo: where commands are printed (dry run, or as they run).

    Raises:
        EdgeDistillError: the model cannot be read, the target cannot be
            flashed, the model does not fit (without ``force``), or the device
            refused, failed or did not answer; the message names which.
    """
    if runs < 1 or warmup < 0 or (threads is not None and threads < 1) or timeout_s <= 0:
        raise EdgeDistillError(f"flash: runs={runs}, warmup={warmup}, threads={threads}, "
                               f"timeout={timeout_s}; give runs, threads and timeout > 0, "
                               "warmup >= 0")
    if not isinstance(target, Target):
        from edgedistill import targets

        target = targets.get(target)
    setup = target.flash
    if setup is None:
        raise EdgeDistillError(f"{target.path}: target {target.name} has no flash: section, so "
                               "edgedistill cannot put a model on it; add one (method: ssh, "
                               "device: ADDRESS) to a copy of the file")
    address = device or setup.device
    if not address and setup.method == "ssh":
        raise EdgeDistillError(f"{target.path}: no flash.device for target {target.name}; "
                               "give --device ADDRESS")
    model = Path(model)
    profile = profile_model(model, [target], measure=False)
    (fit,) = profile.targets
    _refuse_if_it_does_not_fit(fit, model, force)
    runner = Runner(dry_run=dry_run, echo=echo)
    job = Job(model=model, sha256=profile.model.sha256, address=address, runner=runner,
              runs=runs, warmup=warmup, threads=threads or target.latency.threads, keep=keep,
              timeout_s=timeout_s, ssh_config=ssh_config, python=python or setup.python,
              benchmark_model=benchmark_model or setup.benchmark_model)
    figures = METHODS[setup.method](job)
    measured = None if dry_run else _measurement(figures, address or "the adb device")
    if measured is not None:
        profile = replace(profile, targets=(replace(fit, measured=measured),))
    return FlashResult(
        target=target.name, method=setup.method, device=address or "the adb device",
        dry_run=dry_run, commands=tuple(runner.ran), measured=measured,
        peak_rss_bytes=figures.get("peak_rss_bytes"),
        model_rss_bytes=figures.get("model_rss_bytes"), kept_dir=figures.get("work_dir"),
        profile=profile)


@dataclass(frozen=True)
class Job:
    """What a flash method is asked to do; each method reads the fields it needs."""

    model: Path
    sha256: str
    address: str | None
    runner: Runner
    runs: int
    warmup: int
    threads: int
    keep: bool
    timeout_s: float
    ssh_config: str | os.PathLike | None
    python: str
    benchmark_model: str | None


def _over_ssh(job: Job) -> dict:
    from edgedistill.flash.ssh import SshSession, flash_over_ssh

    # A silent device is given up on within the step's time limit, 10 s at most.
    session = SshSession(job.address, job.runner, ssh_config=job.ssh_config,
                         connect_timeout_s=max(1, min(10, math.ceil(job.timeout_s))),
                         timeout_s=job.timeout_s)
    return flash_over_ssh(session, job.model, job.sha256, job.python, job.runs, job.warmup,
                          job.threads, job.keep)


def _over_adb(job: Job) -> dict:
    from edgedistill.flash.adb import AdbSession, flash_over_adb

    session = AdbSession(job.address, job.runner, timeout_s=job.timeout_s)
    return flash_over_adb(session, job.model, job.sha256, job.benchmark_model, job.runs,
                          job.warmup, job.threads, job.keep)


# flash.method -> what does it. Each returns the device's figures (see FlashResult).
METHODS: dict[str, Callable[[Job], dict]] = {"ssh": _over_ssh, "adb": _over_adb}


def _refuse_if_it_does_not_fit(fit: TargetFit, model: Path, force: bool) -> None:
    short = [v for v in fit.verdicts if v.check in (FLASH, RAM) and v.ok is False]
    if short and not force:
        reasons = "; ".join(f"{v.check}: {v.detail}" for v in short)
        raise EdgeDistillError(f"{model}: will not fit on {fit.target} ({reasons}); shrink "
                               "the model, or give --force to flash it anyway")


def _measurement(figures: dict, device: str) -> Measurement:
    try:
        return Measurement(
            runtime=f"{figures['runtime']} on {device}",
            version=f"{figures['runtime']} {figures['version']}",
            threads=int(figures["threads"]), warmup=int(figures["warmup"]),
            runs=int(figures["runs"]), median_ms=_ms(figures.get("median_ms")),
            min_ms=float(figures["min_ms"]), p90_ms=_ms(figures.get("p90_ms")),
            mean_ms=_ms(figures.get("mean_ms")), p95_ms=_ms(figures.get("p95_ms")))
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgeDistillError(f"{device}: the device's figures are incomplete ({exc}); is the "
                               "runner on the device edgedistill's own?") from None


def _ms(value) -> float | None:
    return None if value is None else float(value)
