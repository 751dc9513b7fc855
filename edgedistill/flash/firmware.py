"""Firmware projects for microcontrollers: the Micro bundle with a main per build system.

Each board's target file names its build system and board id (``flash:
{method: firmware, build_system: zephyr, board: nucleo_l4r5zi}``). The project
holds the bundle's model sources, the example application (which times every
``Invoke()`` and prints ``edgedistill: invoke_us=N``), the entry point the
build system calls, the board's clock in ``edgedistill_timer.h``, and the
build files; :data:`BUILD_SYSTEMS` holds one :class:`BuildSystem` per kind:

- ``zephyr``: a west application using Zephyr's tflite-micro module
  (``CONFIG_TENSORFLOW_LITE_MICRO``, with its CMSIS-NN kernels: every Zephyr
  board here is an Arm Cortex-M, and the targets' latency is CMSIS-NN's), built with
  ``west build -b BOARD`` and flashed with ``west flash``;
- ``esp-idf``: an ESP-IDF project with Espressif's ``esp-tflite-micro``
  component, built and flashed with ``idf.py`` (which runs esptool);
- ``arduino``: a sketch for ``arduino-cli`` with the Chirale_TensorFLowLite
  library (tflite-micro for Arduino's Arm boards), compiled and uploaded with
  the board's FQBN.

Example:
    >>> sorted(BUILD_SYSTEMS)
    ['arduino', 'esp-idf', 'zephyr']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgedistill.errors import EdgeDistillError

SOURCES = ("model_data.cc", "model_data.h", "op_resolver.h", "model_settings.h")
TIMER = "edgedistill_timer.h"


@dataclass(frozen=True)
class ProjectSources:
    """What every project is made of: the bundle's model sources and the application."""

    model_name: str
    files: dict[str, str]
    app: str


@dataclass(frozen=True)
class BuildSystem:
    """How one kind of firmware project is laid out, built and flashed.

    Attributes:
        name: the ``flash.build_system`` value.
        tool: the program that builds and flashes it.
        layout: the project's files (path -> text) for a board.
        build: the commands that build it in a project directory, for a board.
        upload: the commands that flash it, for a board and serial port (or None).
    """

    name: str
    tool: str
    layout: Callable[[ProjectSources, str], dict[str, str]]
    build: Callable[[Path, str], list[tuple[str, ...]]]
    upload: Callable[[Path, str, str | None], list[tuple[str, ...]]]


def _timer(include: str, ticks: str, per_second: str, why: str) -> str:
    return (f"// The clock the application times Invoke() with (written by edgedistill):\n"
            f"// {why}\n#ifndef EDGEDISTILL_TIMER_H_\n#define EDGEDISTILL_TIMER_H_\n\n"
            f"#include <cstdint>\n\n{include}\n\n"
            f"inline uint32_t EdgeDistillTicks() {{ return static_cast<uint32_t>({ticks}); }}\n\n"
            f"inline uint32_t EdgeDistillTicksPerSecond() {{ return {per_second}; }}\n\n"
            "#endif  // EDGEDISTILL_TIMER_H_\n")


def _header(sources: ProjectSources, how: str) -> str:
    return (f"// Firmware for {sources.model_name} (written by edgedistill). {how}\n"
            "// It prints `edgedistill: invoke_us=N arena_used=M` after every inference; "
            "`edgedistill flash` reads those lines from the serial port.\n")


# --- Zephyr --------------------------------------------------------------------------------

_ZEPHYR_CMAKE = """\
# Firmware for {model} (written by edgedistill): a Zephyr application.
# Build: west build -b BOARD this-folder; flash: west flash. It needs Zephyr's
# tflite-micro module: west config manifest.project-filter -- +tflite-micro,
# then west update.
cmake_minimum_required(VERSION 3.20.0)
find_package(Zephyr REQUIRED HINTS $ENV{{ZEPHYR_BASE}})
project(edgedistill_model)
target_sources(app PRIVATE src/main.cc src/model_data.cc)
"""

# Zephyr's tflite-micro documentation: CPP, a full libc and the module; CMSIS-NN
# kernels on Arm cores; a stack for the interpreter's setup.
_ZEPHYR_CONF = """\
CONFIG_CPP=y
CONFIG_STD_CPP17=y
CONFIG_REQUIRES_FULL_LIBC=y
CONFIG_TENSORFLOW_LITE_MICRO=y
CONFIG_TENSORFLOW_LITE_MICRO_CMSIS_NN_KERNELS=y
CONFIG_MAIN_STACK_SIZE=8192
"""


def _zephyr_layout(sources: ProjectSources, board: str) -> dict[str, str]:
    main = (_header(sources, f"Zephyr, board {board}.") + sources.app +
            "\nint main(void) {\n  setup();\n  while (true) {\n    loop();\n  }\n  return 0;\n}\n")
    return {
        "CMakeLists.txt": _ZEPHYR_CMAKE.format(model=sources.model_name),
        "prj.conf": _ZEPHYR_CONF,
        "src/main.cc": main,
        f"src/{TIMER}": _timer("#include <zephyr/kernel.h>", "k_cycle_get_32()",
                               "sys_clock_hw_cycles_per_sec()",
                               "Zephyr's hardware cycle counter."),
        **{f"src/{name}": sources.files[name] for name in SOURCES},
    }


def _zephyr_build(project: Path, board: str) -> list[tuple[str, ...]]:
    return [("west", "build", "-b", board, "-d", str(project / "build"), str(project))]


def _zephyr_upload(project: Path, board: str, port: str | None) -> list[tuple[str, ...]]:
    return [("west", "flash", "-d", str(project / "build"))]


# --- ESP-IDF -------------------------------------------------------------------------------

_IDF_CMAKE = """\
# Firmware for {model} (written by edgedistill): an ESP-IDF project.
# Build: idf.py set-target TARGET build; flash: idf.py -p PORT flash.
cmake_minimum_required(VERSION 3.16)
include($ENV{{IDF_PATH}}/tools/cmake/project.cmake)
project(edgedistill_model)
"""


def _idf_layout(sources: ProjectSources, board: str) -> dict[str, str]:
    main = (_header(sources, f"ESP-IDF, target {board}.") + sources.app +
            '\nextern "C" void app_main(void) {\n  setup();\n  while (true) {\n    loop();\n'
            "    vTaskDelay(1);  // lets the idle task feed the watchdog\n  }\n}\n")
    main = main.replace('#include "edgedistill_timer.h"',
                        '#include "edgedistill_timer.h"\n#include "freertos/FreeRTOS.h"\n'
                        '#include "freertos/task.h"', 1)
    return {
        "CMakeLists.txt": _IDF_CMAKE.format(model=sources.model_name),
        "main/CMakeLists.txt": 'idf_component_register(SRCS "main.cc" "model_data.cc"\n'
                               '                       INCLUDE_DIRS ".")\n',
        # Espressif's tflite-micro port, with ESP-NN's optimized kernels.
        "main/idf_component.yml": "dependencies:\n  espressif/esp-tflite-micro: \"*\"\n",
        "sdkconfig.defaults": "CONFIG_ESP_MAIN_TASK_STACK_SIZE=16384\n",
        "main/main.cc": main,
        f"main/{TIMER}": _timer('#include "esp_timer.h"', "esp_timer_get_time()", "1000000u",
                               "esp_timer, in microseconds."),
        **{f"main/{name}": sources.files[name] for name in SOURCES},
    }


def _idf_build(project: Path, board: str) -> list[tuple[str, ...]]:
    return [("idf.py", "-C", str(project), "set-target", board),
            ("idf.py", "-C", str(project), "build")]


def _idf_upload(project: Path, board: str, port: str | None) -> list[tuple[str, ...]]:
    return [("idf.py", "-C", str(project), *(["-p", port] if port else []), "flash")]


# --- Arduino -------------------------------------------------------------------------------

SKETCH = "edgedistill_model"
# Its Library Manager name is spelt with "FLow"; its header is not.
ARDUINO_LIBRARY, ARDUINO_HEADER = "Chirale_TensorFLowLite", "Chirale_TensorFlowLite.h"


def _arduino_layout(sources: ProjectSources, board: str) -> dict[str, str]:
    sketch = (_header(sources, f"Arduino, board {board}.") +
              f"#include <{ARDUINO_HEADER}>\n\n" + sources.app)
    copies = {name: sources.files[name] for name in SOURCES}
    # The Arduino builders compile only .c, .cpp and .S files of a sketch folder.
    copies["model_data.cpp"] = copies.pop("model_data.cc")
    return {
        f"{SKETCH}/{SKETCH}.ino": sketch,
        f"{SKETCH}/{TIMER}": _timer("#include <Arduino.h>", "micros()", "1000000u",
                                    "Arduino's micros()."),
        **{f"{SKETCH}/{name}": text for name, text in copies.items()},
    }


def _arduino_build(project: Path, board: str) -> list[tuple[str, ...]]:
    return [("arduino-cli", "lib", "install", ARDUINO_LIBRARY),
            ("arduino-cli", "compile", "--fqbn", board, str(project / SKETCH))]


def _arduino_upload(project: Path, board: str, port: str | None) -> list[tuple[str, ...]]:
    return [("arduino-cli", "upload", *(["-p", port] if port else []), "--fqbn", board,
             str(project / SKETCH))]


BUILD_SYSTEMS: dict[str, BuildSystem] = {
    "zephyr": BuildSystem("zephyr", "west", _zephyr_layout, _zephyr_build, _zephyr_upload),
    "esp-idf": BuildSystem("esp-idf", "idf.py", _idf_layout, _idf_build, _idf_upload),
    "arduino": BuildSystem("arduino", "arduino-cli", _arduino_layout, _arduino_build,
                           _arduino_upload),
}


def get(name: str) -> BuildSystem:
    """The build system called ``name``.

    Raises:
        EdgeDistillError: no such build system.
    """
    if name not in BUILD_SYSTEMS:
        raise EdgeDistillError(f"build system {name!r}: one of {', '.join(BUILD_SYSTEMS)}")
    return BUILD_SYSTEMS[name]


def project_files(build_system: str, board: str, sources: ProjectSources) -> dict[str, str]:
    """Every file of the project, path -> text, with a README saying how to build it.

    Example:
        >>> files = project_files("zephyr", "nucleo_l4r5zi", sources)  # doctest: +SKIP
        >>> sorted(files)[:2]  # doctest: +SKIP
        ['CMakeLists.txt', 'README.md']
    """
    system = get(build_system)
    files = system.layout(sources, board)
    here = Path(".")
    steps = [" ".join(c) for c in system.build(here, board) + system.upload(here, board, None)]
    files["README.md"] = (
        f"# Firmware for {sources.model_name}\n\nWritten by edgedistill for {build_system}, "
        f"board `{board}`. Every inference prints `edgedistill: invoke_us=N` on the serial "
        "console; `edgedistill flash` builds, flashes and reads it. By hand, from this "
        "folder:\n\n```sh\n" + "\n".join(steps) + "\n```\n")
    return files
