"""Phones over adb: push the model, time it with TFLite's ``benchmark_model``, parse its log.

``benchmark_model`` is TFLite's own native benchmark tool (prebuilt for
android_aarch64 by the TensorFlow nightlies, or built with bazel). It is taken
from ``--benchmark-model``: a local binary, which is pushed beside the model,
or a path on the phone; without one, the phone is searched
(:data:`DEVICE_PATHS`, then ``PATH``). It runs with the target's thread count
and XNNPACK, and its log is parsed by :func:`parse_benchmark_log`.

On the phone, a ``mktemp -d`` directory under ``/data/local/tmp`` holds the
files; the model's sha256 is checked there with toybox's ``sha256sum``; the
directory is removed afterwards unless ``keep``.

Example:
    >>> adb_argv("R58M12ABC", ["shell", "ls"])
    ('adb', '-s', 'R58M12ABC', 'shell', 'ls')
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.flash.commands import Command, Runner, checked_work_dir, cleaned_up, remote_join

DEVICE_PATHS = ("/data/local/tmp/benchmark_model",)
MODEL_NAME = "model.tflite"
BENCHMARK_NAME = "benchmark_model"
DRY_RUN_DIR = "/data/local/tmp/edgedistill.XXXXXXXX"
_WORK_DIR = re.compile(r"/data/local/tmp/edgedistill\.[A-Za-z0-9]+")
_SHA256 = re.compile(r"\b([0-9a-f]{64})\b")
# One Stat line of the benchmark tool: count=50 first=.. curr=.. min=.. max=.. avg=.. std=..
# [p5=.. median=.. p95=..], all in microseconds.
_STAT = re.compile(r"count=(\d+)((?:[ \t]+[a-z0-9]+=[-+.0-9e]+)+)")
_MEMORY = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory footprint) "
                     r"\(MB\): "
                     r"init=([-+.0-9e]+) overall=([-+.0-9e]+)")
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: ([-+.0-9e]+)")
_MIB = 1024 * 1024


def adb_argv(serial: str | None, args: list[str]) -> tuple[str, ...]:
    """``adb`` for one device (``-s SERIAL``; the only one attached when None)."""
    return ("adb", *(["-s", serial] if serial else []), *args)


def check_serial(serial: str) -> str:
    """An adb serial (``R58M12ABC``, ``emulator-5554``, ``192.168.1.7:5555``).

    Example:
        >>> check_serial("emulator-5554")
        'emulator-5554'
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:\[\]-]{0,127}", serial):
        raise EdgeDistillError(f"--device {serial!r}: not an adb serial; 'adb devices' lists "
                               "them")
    return serial


def diagnose_adb(stderr: str) -> str | None:
    """The reason an adb command failed, from its stderr, with what to do."""
    text = stderr.lower()
    if "no devices/emulators found" in text or "device not found" in text or \
            "not found" in text and "device" in text:
        return "no such device attached: check 'adb devices' and the USB cable"
    if "unauthorized" in text:
        return "the phone has not authorized this computer: accept the USB debugging prompt"
    if "more than one device" in text:
        return "several devices are attached: name one with --device SERIAL"
    if "offline" in text:
        return "the device is offline: reconnect it or restart adb (adb kill-server)"
    return None


def parse_benchmark_log(text: str) -> dict:
    """The figures of one ``benchmark_model`` run, from its log (stdout and stderr).

    The last ``count=...`` line is the timed run (the one before it is the
    warm-up); its values are microseconds. ``median`` and ``p95`` appear in
    builds since 2023 and are None otherwise.

    Raises:
        EdgeDistillError: the log has no timed run (the tool failed; its last
            line is quoted).

    Example:
        >>> log = ("count=9 first=87 curr=51 min=51 max=87 avg=58.4 std=11\\n"
        ...        "count=50 first=52 curr=49 min=49 max=68 avg=51.5 std=4 "
        ...        "p5=49 median=50 p95=60\\n")
        >>> figures = parse_benchmark_log(log)
        >>> figures["runs"], figures["median_ms"], figures["warmup"]
        (50, 0.05, 9)
    """
    stats = [(int(m[1]), dict(pair.split("=") for pair in m[2].split()))
             for m in _STAT.finditer(text)]
    if not stats:
        last = [line.strip() for line in text.splitlines() if line.strip()][-1:] or ["(nothing)"]
        raise EdgeDistillError(f"benchmark_model printed no timings; its last line: "
                               f"{last[0][:200]}")
    runs, timed = stats[-1]
    warmup = stats[-2][0] if len(stats) > 1 else 0
    try:
        ms = {key: float(value) / 1000.0 for key, value in timed.items()}
    except ValueError as exc:
        raise EdgeDistillError(f"benchmark_model printed an unreadable timing: {exc}") from None
    if bad := [key for key, value in ms.items() if not 0 <= value < math.inf]:
        raise EdgeDistillError(f"benchmark_model printed an impossible timing: {bad[0]}="
                               f"{timed[bad[0]][:30]}")
    if "min" not in ms or "avg" not in ms:
        # A run whose every time was equal prints "count=N curr=T(all same)".
        ms.setdefault("min", ms.get("curr", 0.0))
        ms.setdefault("avg", ms.get("curr", 0.0))
    figures = {"runs": runs, "warmup": warmup, "median_ms": ms.get("median"),
               "mean_ms": ms["avg"], "min_ms": ms["min"], "p90_ms": None,
               "p95_ms": ms.get("p95"), "peak_rss_bytes": None, "model_rss_bytes": None}
    if memory := _MEMORY.search(text):
        figures["model_rss_bytes"] = max(round(float(memory[2]) * _MIB), 0)
    if peak := _PEAK.search(text):
        figures["peak_rss_bytes"] = max(round(float(peak[1]) * _MIB), 0)
    return figures


class AdbSession:
    """One phone reached over adb.

    Args:
        serial: its adb serial; None for the only device attached.
        runner: runs (or prints) the commands.
        timeout_s: each step's time limit.
    """

    def __init__(self, serial: str | None, runner: Runner, timeout_s: float = 300.0) -> None:
        self.serial = check_serial(serial) if serial else None
        self.runner = runner
        self.timeout_s = timeout_s
        self.work_dir: str | None = None

    @property
    def name(self) -> str:
        """How errors name the device."""
        return self.serial or "the adb device"

    def adb(self, args: list[str], what: str) -> str:
        """Runs ``adb [-s SERIAL] ARGS``; returns its stdout."""
        return self.runner.run(Command(adb_argv(self.serial, args), what,
                                       timeout_s=self.timeout_s), self.name, diagnose_adb)

    def shell(self, argv: list[str], what: str, accept: tuple[int, ...] = (0,)) -> str:
        """Runs ``argv`` in the phone's shell (quoted for it), stderr merged into stdout."""
        command = Command(adb_argv(self.serial, ["shell", remote_join(argv) + " 2>&1"]), what,
                          timeout_s=self.timeout_s)
        return self.runner.run(command, self.name, diagnose_adb, accept)

    def make_work_dir(self) -> str:
        """Makes a private directory under /data/local/tmp and returns its path."""
        out = self.shell(["mktemp", "-d", DRY_RUN_DIR], "make a work directory on the phone")
        self.work_dir = DRY_RUN_DIR if self.runner.dry_run else checked_work_dir(
            out, _WORK_DIR, self.name, "a directory under /data/local/tmp")
        return self.work_dir

    def push(self, local: Path, name: str) -> str:
        """``adb push`` of ``local`` into the work directory as ``name``."""
        remote = f"{self.work_dir}/{name}"
        self.adb(["push", str(local), remote], f"push {name} to the phone")
        return remote

    def check_sha256(self, remote: str, sha256: str) -> None:
        """Fails unless the file on the phone has ``sha256``."""
        out = self.shell(["sha256sum", remote], "check the model's sha256 on the phone")
        if self.runner.dry_run:
            return
        found = _SHA256.search(out)
        if found is None:
            raise EdgeDistillError(f"{self.name}: sha256sum printed {out.strip()[:120]!r}")
        if found[1] != sha256:
            raise EdgeDistillError(f"{self.name}: the model on the phone has sha256 {found[1]}, "
                                   f"not {sha256}: the copy was damaged or changed")

    def find_benchmark_model(self, given: str | None) -> str:
        """The benchmark tool's path on the phone: pushed from a local file, the path
        given, or the first of :data:`DEVICE_PATHS` and ``PATH`` that is executable."""
        if given and Path(given).is_file():
            remote = self.push(Path(given), BENCHMARK_NAME)
            self.shell(["chmod", "755", remote], "make benchmark_model executable")
            return remote
        candidates = [given] if given else list(DEVICE_PATHS)
        script = ('for p in "$@" "$(command -v benchmark_model)"; do '
                  '[ -n "$p" ] && [ -x "$p" ] && { echo "$p"; exit 0; }; done; exit 0')
        out = self.shell(["sh", "-c", script, "sh", *candidates],
                         "find benchmark_model on the phone")
        if self.runner.dry_run:
            return candidates[0]
        found = out.strip().splitlines()
        if not found:
            where = given or ", ".join(DEVICE_PATHS) + " or PATH"
            raise EdgeDistillError(
                f"{self.name}: no executable benchmark_model at {where}; give "
                "--benchmark-model with TFLite's android_aarch64 benchmark_model binary")
        return found[-1].strip()

    def benchmark(self, tool: str, model: str, threads: int, runs: int, warmup: int) -> dict:
        """Runs ``benchmark_model`` on the pushed model; returns its parsed figures."""
        out = self.shell([tool, f"--graph={model}", f"--num_threads={threads}",
                          "--use_xnnpack=true", f"--num_runs={runs}", f"--warmup_runs={warmup}",
                          "--report_peak_memory_footprint=true"],
                         f"time the model with {Path(tool).name} on the phone",
                         accept=tuple(range(256)))  # its log says what went wrong
        if self.runner.dry_run:
            return {}
        try:
            return parse_benchmark_log(out)
        except EdgeDistillError as exc:
            raise EdgeDistillError(f"{self.name}: {exc}") from None

    def cleanup(self) -> None:
        """Removes the work directory, if one was made."""
        if self.work_dir is not None:
            self.shell(["rm", "-rf", self.work_dir], "remove the work directory")
            self.work_dir = None


def flash_over_adb(session: AdbSession, model: Path, sha256: str, benchmark_model: str | None,
                   runs: int, warmup: int, threads: int, keep: bool = False) -> dict:
    """The whole adb round: work directory, push, checksum, benchmark_model, cleanup.

    Returns:
        The parsed figures with the tool's name and threads (empty on a dry run),
        and ``work_dir`` when kept.
    """
    session.make_work_dir()
    with cleaned_up(session, keep):
        remote = session.push(model, MODEL_NAME)
        session.check_sha256(remote, sha256)
        tool = session.find_benchmark_model(benchmark_model)
        figures = session.benchmark(tool, remote, threads, runs, warmup)
        kept = {"work_dir": session.work_dir} if keep else {}
    if figures:
        figures = {**figures, "runtime": "benchmark_model", "version": "TFLite benchmark_model",
                   "threads": threads}
    return {**figures, **kept}
