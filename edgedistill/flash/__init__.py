"""Put a model on a device and measure it there, beside the profile's estimate.

:func:`flash` follows the target file's ``flash:`` section (``method``,
``device``, ...): ``ssh`` for Linux boards (:mod:`.ssh`), ``adb`` for phones
(:mod:`.adb`), ``firmware`` for microcontrollers (:mod:`.mcu`: a firmware
project built and flashed with the board's tools, timings read from its serial
port); the methods are in :data:`METHODS`. It profiles the model
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
from edgedistill.targets import FlashSetup, Target

__all__ = ["METHODS", "FlashResult", "Job", "flash"]


@dataclass(frozen=True)
class FlashResult:
    """What :func:`flash` did on one device and what it measured.

    Attributes:
        target: the target's name.
        method: how the device was reached (``ssh``, ``adb``, ``firmware``).
        device: its address.
        dry_run: True when the commands were only printed.
        commands: every command run (or printed), in order.
        measured: the device's latency figures; None on a dry run.
        peak_rss_bytes: the device process's peak resident memory, if known.
        model_rss_bytes: the part of it that came with the model and interpreter.
        kept_dir: where the files stayed on the device (``keep``), else None.
        profile: the profile of the model on the target, its fit carrying
            ``measured``.
        arena_used_bytes: the tensor arena the firmware reports using on a
            microcontroller, else None.
        project_dir: the firmware project written for a microcontroller, else None.
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
    arena_used_bytes: int | None = None
    project_dir: str | None = None

    @property
    def fit(self) -> TargetFit:
        """The target's fit in :attr:`profile`."""
        return self.profile.targets[0]

    @property
    def estimate_error(self) -> float | None:
        """estimate / measured - 1 (the measured median, else mean); None before a measurement."""
        if self.measured is None:
            return None
        return self.measured.estimate_error(self.fit.latency_ms)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"target": self.target, "method": self.method, "device": self.device,
                "dry_run": self.dry_run, "commands": [c.to_dict() for c in self.commands],
                "measured": self.measured.to_dict() if self.measured else None,
                "peak_rss_bytes": self.peak_rss_bytes, "model_rss_bytes": self.model_rss_bytes,
                "estimate_ms": self.fit.latency_ms, "estimate_error": self.estimate_error,
                "kept_dir": self.kept_dir, "arena_used_bytes": self.arena_used_bytes,
                "project_dir": self.project_dir, "profile": self.profile.to_dict()}


def flash(model: str | os.PathLike, target: str | os.PathLike | Target,
          device: str | None = None, *, runs: int = 50, warmup: int = 10,
          threads: int | None = None, keep: bool = False, force: bool = False,
          dry_run: bool = False, ssh_config: str | os.PathLike | None = None,
          python: str | None = None, benchmark_model: str | None = None,
          project_dir: str | os.PathLike | None = None, port: str | None = None,
          build: bool = True, timeout_s: float = 300.0,
          echo: Callable[[str], None] | None = None) -> FlashResult:
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
        force: flash a model the profile says will not fit; replace ``project_dir``.
        dry_run: print every command (to ``echo``) without running any.
        ssh_config: ssh: a configuration file to use instead of ``~/.ssh/config``.
        python: ssh: the device's Python; default the target's ``flash.python``.
        benchmark_model: adb: TFLite's benchmark tool, a local binary to push
            or a path on the phone; default the target's ``flash.benchmark_model``,
            else searched for on the phone.
        project_dir: firmware: where the project is written; default
            ``edgedistill-firmware-<target>`` in the working directory. With
            ``force`` an existing one is replaced.
        port: firmware: the board's serial port; default the one USB serial
            port attached.
        build: firmware: build and flash the project; False reads the serial
            port of a board already running it.
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
              timeout_s=timeout_s, ssh_config=ssh_config,
              python=python or setup.python or "python3",
              benchmark_model=benchmark_model or setup.benchmark_model, setup=setup,
              project_dir=Path(project_dir or f"edgedistill-firmware-{target.name}"),
              port=port, build=build, force=force)
    figures = METHODS[setup.method](job)
    name = _device_name(job, figures.get("port"))
    measured = None if dry_run else _measurement(figures, name)
    if measured is not None:
        profile = replace(profile, targets=(replace(fit, measured=measured),))
    return FlashResult(
        target=target.name, method=setup.method, device=name, dry_run=dry_run,
        commands=tuple(runner.ran), measured=measured,
        peak_rss_bytes=figures.get("peak_rss_bytes"),
        model_rss_bytes=figures.get("model_rss_bytes"), kept_dir=figures.get("work_dir"),
        profile=profile, arena_used_bytes=figures.get("arena_used_bytes"),
        project_dir=str(job.project_dir) if setup.method == "firmware" else None)


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
    setup: FlashSetup
    project_dir: Path
    port: str | None
    build: bool
    force: bool


def _device_name(job: Job, port: str | None) -> str:
    if job.setup.method == "firmware":
        return f"{job.setup.board} at {port or job.port or 'its serial port'}"
    return job.address or "the adb device"


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


def _as_firmware(job: Job) -> dict:
    from edgedistill.flash.mcu import flash_firmware

    return flash_firmware(job.model, job.runner, job.setup.build_system, job.setup.board,
                          job.setup.baud, job.project_dir, job.port, job.runs, job.warmup,
                          job.timeout_s, build=job.build, force=job.force)


# flash.method -> what does it. Each returns the device's figures (see FlashResult).
METHODS: dict[str, Callable[[Job], dict]] = {"ssh": _over_ssh, "adb": _over_adb,
                                             "firmware": _as_firmware}


def _refuse_if_it_does_not_fit(fit: TargetFit, model: Path, force: bool) -> None:
    short = [v for v in fit.verdicts if v.check in (FLASH, RAM) and v.ok is False]
    if short and not force:
        reasons = "; ".join(f"{v.check}: {v.detail}" for v in short)
        raise EdgeDistillError(f"{model}: will not fit on {fit.target} ({reasons}); shrink "
                               "the model, or give --force to flash it anyway")


def _measurement(figures: dict, device: str) -> Measurement:
    """The device's figures as a Measurement, refused unless every one is possible."""
    try:
        measured = Measurement(
            runtime=f"{figures['runtime']} on {device}",
            version=f"{figures['runtime']} {figures['version']}",
            threads=int(figures["threads"]), warmup=int(figures["warmup"]),
            runs=int(figures["runs"]), median_ms=_ms(figures.get("median_ms")),
            min_ms=float(figures["min_ms"]), p90_ms=_ms(figures.get("p90_ms")),
            mean_ms=_ms(figures.get("mean_ms")), p95_ms=_ms(figures.get("p95_ms")))
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgeDistillError(f"{device}: the device's figures are incomplete ({exc}); is the "
                               "runner on the device edgedistill's own?") from None
    times = [v for v in (measured.median_ms, measured.min_ms, measured.p90_ms, measured.mean_ms,
                         measured.p95_ms) if v is not None]
    if measured.runs < 1 or measured.warmup < 0 or measured.threads < 1 or \
            not all(math.isfinite(v) and v >= 0 for v in times):
        raise EdgeDistillError(
            f"{device}: the device reported impossible figures (runs {measured.runs}, warm-up "
            f"{measured.warmup}, threads {measured.threads}, times {times} ms); is the runner "
            "on the device edgedistill's own?")
    return measured


def _ms(value) -> float | None:
    return None if value is None else float(value)
