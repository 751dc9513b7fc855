"""flash for microcontrollers: firmware projects per build system, their commands, and the
serial timings read back, with a pseudo-terminal standing in for the board's port.

No board, west, idf.py or arduino-cli is here: the projects are checked file by
file, their model sources are compiled with arm-none-eabi-g++ for the Arm
boards, and the serial reader gets from a pty what the firmware prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner
from conftest import mlperf_model
from hypothesis import given, settings
from hypothesis import strategies as st
from report_checks import check_every_format

from edgedistill import targets
from edgedistill.cli import main
from edgedistill.errors import EdgeDistillError
from edgedistill.flash import flash
from edgedistill.flash.firmware import BUILD_SYSTEMS
from edgedistill.flash.mcu import write_project
from edgedistill.flash.serial_port import parse_line, read_invoke_times
from edgedistill.reports.flash import flash_report
from edgedistill.targets.schema import BUILD_SYSTEMS as SCHEMA_BUILD_SYSTEMS

MODEL = mlperf_model("kws_ref_model.tflite")
ARM_GXX = shutil.which("arm-none-eabi-g++")


class Board:
    """A pseudo-terminal whose far end prints what the example firmware prints: its
    start-up lines once, then its loop's lines over and over, until closed."""

    def __init__(self, start: list[bytes], loop: list[bytes], delay_s: float = 0.005) -> None:
        self.master, slave = os.openpty()
        self.port = os.ttyname(slave)
        self._slave = slave
        self.start, self.loop, self.delay_s = start, loop, delay_s
        self.closed = False
        self.thread = threading.Thread(target=self._speak, daemon=True)
        self.thread.start()

    def _speak(self) -> None:
        lines = iter(self.start)
        while not self.closed:
            line = next(lines, None)
            if line is None:
                if not self.loop:
                    return
                lines = iter(self.loop)
                continue
            try:
                os.write(self.master, line)
            except OSError:
                return
            time.sleep(self.delay_s)

    def close(self) -> None:
        self.closed = True
        self.thread.join(timeout=5)
        for fd in (self.master, self._slave):
            os.close(fd)

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


BOOT = [b"\x00garbage from the reset\r\n", b"Arena: 21872 of 26704 bytes used.\r\n"]


def firmware_loop(times_us: list[int]) -> list[bytes]:
    return [f"edgedistill: invoke_us={t} arena_used=21872\r\nTop class: 3, score 812/1000\r\n"
            .encode() for t in times_us]


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """One project per build system, from the targets that use it."""
    root = tmp_path_factory.mktemp("projects")
    made = {}
    for name in ("nucleo-l4r5zi", "esp32-s3-devkitc-1", "nano-33-ble-sense"):
        setup = targets.get(name).flash
        write_project(MODEL, setup.build_system, setup.board, root / name, force=False)
        made[setup.build_system] = root / name
    return made


def test_the_schema_knows_every_build_system():
    assert set(SCHEMA_BUILD_SYSTEMS) == set(BUILD_SYSTEMS)
    for target in targets.list_targets():
        if target.flash and target.flash.method == "firmware":
            assert target.flash.build_system in BUILD_SYSTEMS and target.flash.board


def test_a_zephyr_project(projects):
    p = projects["zephyr"]
    assert "find_package(Zephyr" in (p / "CMakeLists.txt").read_text()
    conf = (p / "prj.conf").read_text()
    assert "CONFIG_TENSORFLOW_LITE_MICRO=y" in conf
    assert "CONFIG_TENSORFLOW_LITE_MICRO_CMSIS_NN_KERNELS=y" in conf
    main_cc = (p / "src/main.cc").read_text()
    assert "int main(void)" in main_cc and "edgedistill: invoke_us=%d arena_used=%d" in main_cc
    assert "k_cycle_get_32()" in (p / "src/edgedistill_timer.h").read_text()
    assert "west build -b nucleo_l4r5zi -d build ." in (p / "README.md").read_text()
    manifest = json.loads((p / "manifest.json").read_text())
    assert manifest["arena"]["recommended_bytes"] > 0


def test_an_esp_idf_project(projects):
    p = projects["esp-idf"]
    assert "project.cmake" in (p / "CMakeLists.txt").read_text()
    assert "espressif/esp-tflite-micro" in (p / "main/idf_component.yml").read_text()
    main_cc = (p / "main/main.cc").read_text()
    assert 'extern "C" void app_main(void)' in main_cc and "freertos/task.h" in main_cc
    assert "esp_timer_get_time()" in (p / "main/edgedistill_timer.h").read_text()


def test_an_arduino_project(projects):
    sketch = projects["arduino"] / "edgedistill_model"
    ino = (sketch / "edgedistill_model.ino").read_text()
    assert "#include <Chirale_TensorFlowLite.h>" in ino and "void loop()" in ino
    assert "int main" not in ino and "micros()" in (sketch / "edgedistill_timer.h").read_text()
    assert (sketch / "model_data.cpp").exists() and not (sketch / "model_data.cc").exists()


@pytest.mark.skipif(ARM_GXX is None, reason="needs gcc-arm-none-eabi")
@pytest.mark.parametrize("system, source, cpu", [
    ("zephyr", "src/model_data.cc", "cortex-m4"),
    ("arduino", "edgedistill_model/model_data.cpp", "cortex-m4")])
def test_the_model_sources_compile_for_the_board(projects, system, source, cpu, tmp_path):
    obj = tmp_path / "model_data.o"
    subprocess.run([ARM_GXX, f"-mcpu={cpu}", "-mthumb", "-std=c++17", "-Os", "-c",
                    str(projects[system] / source), "-o", str(obj)], check=True)
    size = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    assert str(MODEL.stat().st_size) in size or MODEL.stat().st_size <= \
        sum(int(line.split()[1]) for line in size.splitlines()[2:] if line.split()[1:2]
            and line.split()[1].isdigit())


def test_dry_run_prints_the_build_flash_and_read_steps_and_writes_nothing(tmp_path):
    printed = []
    project = tmp_path / "fw"
    result = flash(MODEL, "nucleo-l4r5zi", dry_run=True, project_dir=project,
                   port="/dev/ttyACM0", echo=printed.append)
    assert [c.argv[:2] for c in result.commands] == [("west", "build"), ("west", "flash")]
    assert result.commands[0].argv[2:4] == ("-b", "nucleo_l4r5zi")
    assert not project.exists() and result.measured is None
    text = "\n".join(printed)
    assert "write the zephyr firmware project" in text and "115200 baud" in text
    esp = flash(MODEL, "esp32-s3-devkitc-1", dry_run=True, project_dir=project, port="COM3")
    assert esp.commands[-1].argv[-3:] == ("-p", "COM3", "flash")


def test_a_missing_build_tool_names_it_and_leaves_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    project = tmp_path / "fw"
    with pytest.raises(EdgeDistillError, match=r"west: not installed or not on PATH.*the "
                                               r"project is in .*fw: build and flash it"):
        flash(MODEL, "nucleo-l4r5zi", project_dir=project, port="/dev/null")
    assert (project / "src" / "main.cc").exists()
    with pytest.raises(EdgeDistillError, match="fw: output directory exists and is not "
                                               "empty; pass --force"):
        flash(MODEL, "nucleo-l4r5zi", project_dir=project, port="/dev/null")
    # Built and flashed by hand, then read: the project of this model is kept as it is.
    (project / "src" / "main.cc").write_text("// edited by hand\n")
    with pytest.raises(EdgeDistillError, match="/dev/null: cannot open the serial port|"
                                               "inference times within"):
        flash(MODEL, "nucleo-l4r5zi", project_dir=project, port="/dev/null", build=False,
              timeout_s=1)
    assert (project / "src" / "main.cc").read_text() == "// edited by hand\n"


def test_the_serial_times_come_back_as_a_measurement(tmp_path):
    with Board(BOOT, firmware_loop([1800 + 10 * i for i in range(10)])) as board:
        result = flash(MODEL, "nucleo-l4r5zi", project_dir=tmp_path / "fw", port=board.port,
                       build=False, runs=30, warmup=2)
    m = result.measured
    assert m.runs == 30 and m.warmup == 2 and m.min_ms == 1.8 and 1.84 <= m.median_ms <= 1.85
    assert m.p90_ms == 1.89
    assert m.runtime == f"tflite-micro on nucleo_l4r5zi at {board.port}"
    assert result.arena_used_bytes == 21872 and result.project_dir == str(tmp_path / "fw")
    assert result.fit.measured == m and result.commands == ()
    out = check_every_format(flash_report(result), "flash")
    assert "21.36 KiB" in out["md"] or "21872" in out["json"]


def test_the_firmware_saying_it_failed_is_the_error():
    failed = (b"AllocateTensors() failed with 1024 bytes: this board's kernels need more; "
              b"raise kTensorArenaSize in model_settings.h.\r\n")
    with Board([], [failed]) as board, pytest.raises(
            EdgeDistillError, match=r"the firmware says: AllocateTensors\(\) failed with 1024"):
        read_invoke_times(board.port, 115200, 3, 0, 5)


def test_a_silent_board_times_out_and_a_missing_port_is_named():
    start = time.monotonic()
    with Board([], [b"Top class: 3, score 812/1000\r\n"]) as board, pytest.raises(
            EdgeDistillError, match=r"0 of 4 inference times within 1 s; is the firmware"):
        read_invoke_times(board.port, 115200, 3, 1, 1)
    assert time.monotonic() - start < 5
    with pytest.raises(EdgeDistillError, match="/dev/nope: cannot open the serial port"):
        read_invoke_times("/dev/nope", 115200, 3, 1, 1)


@pytest.mark.parametrize("line, said", [
    (b"edgedistill: invoke_us=42\r\n", ("invoke", (42, None))),
    (b"edgedistill: invoke_us=42 arena_used=7\r\n", ("invoke", (42, 7))),
    (b"edgedistill: invoke_us=99999999999999\r\n", None),
    (b"edgedistill: invoke_us=-5\r\n", None),
    (b"Arena: 5 of 9 bytes used.\n", None),
    (b"\xff\xfeInvoke() failed.\n", ("failure", "\ufffd\ufffdInvoke() failed.")),
    (b"", None), (b"\x00" * 5000, None)])
def test_serial_lines(line, said):
    assert parse_line(line) == said


def test_cli_reads_a_board_already_running_the_firmware(tmp_path):
    with Board(BOOT, firmware_loop([2000])) as board:
        result = CliRunner().invoke(main, [
            "flash", str(MODEL), "--target", "nucleo-l4r5zi", "--out", str(tmp_path / "fw"),
            "--port", board.port, "--no-build", "--runs", "4", "--warmup", "2",
            "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["measured"]["median_ms"] == 2.0 and data["arena_used_bytes"] == 21872


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_serial_line_is_read_or_ignored(line):
    said = parse_line(line)
    assert said is None or said[0] == "failure" or (
        said[0] == "invoke" and 0 <= said[1][0] < 10**10)
