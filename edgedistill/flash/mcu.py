"""Microcontrollers: write the firmware project, build and flash it, read its timings.

1. A Micro bundle of the model is written (its arena measured with the real
   TFLM interpreter) and turned into a project for the target's build
   system (:mod:`.firmware`) in the project directory.
2. The build system's tool builds and flashes it, when installed; without
   ``build``, the board is taken to run it already (flashed by hand or from an
   IDE), and a project of the same model already in the directory is kept.
3. The serial port is read (:mod:`.serial_port`) for the inference times.

A dry run writes nothing and prints the commands.
"""

from __future__ import annotations

from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.flash import firmware
from edgedistill.flash.commands import Command, Runner

# Builds download toolchains and components the first time: minutes, not seconds.
BUILD_TIMEOUT_S = 1800.0


def find_port() -> str:
    """The serial port of the one USB board attached.

    Raises:
        EdgeDistillError: none, or several, attached (then --port names one).
    """
    try:
        from serial.tools import list_ports
    except ImportError:
        raise EdgeDistillError("pyserial is not installed: pip install pyserial") from None
    usb = [p for p in list_ports.comports() if p.vid is not None]
    if len(usb) != 1:
        found = ", ".join(f"{p.device} ({p.description})" for p in usb) or "none"
        raise EdgeDistillError(f"give --port: {len(usb)} USB serial ports found ({found})")
    return usb[0].device


def write_project(model: Path, build_system: str, board: str, project: Path,
                  force: bool) -> None:
    """Writes the firmware project of ``model`` into ``project``.

    Raises:
        EdgeDistillError: the model cannot run on TFLM, or ``project`` holds
            something and ``force`` is not given.
    """
    from edgedistill._fileio import check_output_dir, output_dir, temporary_dir
    from edgedistill.micro import write_micro_bundle
    from edgedistill.micro.firmware import app_text
    from edgedistill.tflite_file import read_tflite

    check_output_dir(project, force)
    with temporary_dir("bundle") as tmp:
        bundle = write_micro_bundle(model, tmp / "bundle")
        files = {name: (tmp / "bundle" / name).read_text(encoding="utf-8")
                 for name in (*firmware.SOURCES, "manifest.json")}
    sources = firmware.ProjectSources(model.name, files,
                                      app_text(read_tflite(model), bundle.array, None))
    texts = firmware.project_files(build_system, board, sources)
    texts["manifest.json"] = files["manifest.json"]
    with output_dir(project, force) as tmp:
        for name, text in texts.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text, encoding="utf-8")


def _holds_project_of(project: Path, model: Path) -> bool:
    """True when ``project`` already holds a firmware project of this very model."""
    import json

    from edgedistill.tflite_file import read_tflite

    try:
        manifest = json.loads((project / "manifest.json").read_text(encoding="utf-8"))
        return manifest["model"]["sha256"] == read_tflite(model).sha256
    except (OSError, ValueError, KeyError, TypeError):
        return False


def flash_firmware(model: Path, runner: Runner, build_system: str, board: str, baud: int,
                   project: Path, port: str | None, runs: int, warmup: int, timeout_s: float,
                   build: bool = True, force: bool = False) -> dict:
    """The whole microcontroller round; returns the serial figures (empty on a dry run).

    Raises:
        EdgeDistillError: the project cannot be written, a tool is missing or
            fails (the message names the project, to build by hand), or the
            serial port gives no timings.
    """
    system = firmware.get(build_system)
    if runner.dry_run:
        if runner.echo:
            runner.echo(f"# write the {build_system} firmware project for {board} into {project}")
    elif build or not _holds_project_of(project, model):
        write_project(model, build_system, board, project, force)
    if port is None and not runner.dry_run:
        port = find_port()
    steps = []
    if build:
        steps += [(argv, "build the firmware") for argv in system.build(project, board)]
        steps += [(argv, "flash the board") for argv in system.upload(project, board, port)]
    for argv, what in steps:
        try:
            runner.run(Command(argv, what, timeout_s=BUILD_TIMEOUT_S), board)
        except EdgeDistillError as exc:
            raise EdgeDistillError(f"{exc}; the project is in {project}: build and flash it "
                                   "by hand (its README.md says how), then run flash again "
                                   "with --no-build") from None
    if runner.dry_run:
        if runner.echo:
            runner.echo(f"# read the inference times from {port or 'the board'}'s serial "
                        f"port at {baud} baud")
        return {}
    from edgedistill.flash.serial_port import read_invoke_times

    figures = read_invoke_times(port, baud, runs, warmup, timeout_s)
    return {**figures, "runtime": "tflite-micro", "version": f"firmware ({build_system})",
            "threads": 1, "project_dir": str(project), "port": port}
