"""How long-running stages report progress without printing themselves.

The core calls a :class:`Progress`; the CLI passes one that prints with rich,
the Python API defaults to :class:`SilentProgress`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Progress(Protocol):
    def stage(self, name: str, detail: str = "") -> None:
        """A stage (``"teacher"``, ``"distill"``, ``"convert"``, ...) starts."""

    def epoch(self, stage: str, epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
        """An epoch of ``stage`` ended; ``epoch`` counts from 1."""


class SilentProgress:
    def stage(self, name: str, detail: str = "") -> None:
        pass

    def epoch(self, stage: str, epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
        pass
