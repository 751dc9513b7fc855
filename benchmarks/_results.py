"""What every benchmark writes with its numbers: machine, versions, and RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nNewest first. Each section says how to reproduce it.\n\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def preamble(script: str) -> list[str]:
    """The command, date, machine and versions lines of a RESULTS.md section."""
    command = f"python benchmarks/{script} " + shlex.join(sys.argv[1:])
    return [
        f"- command: `{command.strip()}`",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"- versions: tensorflow {version('tensorflow')}, tf-keras {version('tf-keras')}, "
        f"tfmot {version('tensorflow-model-optimization')}, ai-edge-litert "
        f"{version('ai-edge-litert')}, tflite-micro {version('tflite-micro')}",
    ]


def prepend(section: str) -> None:
    """Puts ``section`` first in RESULTS.md, written through a temporary file."""
    previous = RESULTS.read_text() if RESULTS.exists() else HEADER
    body = previous[len(HEADER):] if previous.startswith(HEADER) else previous
    partial = RESULTS.with_suffix(".md.partial")
    partial.write_text(HEADER + section + "\n" + body)
    partial.replace(RESULTS)
