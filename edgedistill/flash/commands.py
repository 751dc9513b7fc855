"""Commands run on behalf of ``flash``: argument lists, never shell strings, with timeouts.

Every external program ``flash`` uses (ssh, adb, a build or flash tool) is run
through :class:`Runner`, which prints each command before it runs when asked
(``--verbose``), prints it instead of running it (``--dry-run``), stops it
after its timeout and turns a failure into a one-line
:class:`~edgedistill.errors.EdgeDistillError`. Commands are argument lists:
a file name with spaces or shell metacharacters stays one argument. Text for a
remote shell is quoted with :func:`remote_join`.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgedistill.errors import EdgeDistillError


def remote_join(argv: Sequence[str]) -> str:
    """One POSIX shell command line running ``argv`` as it is, for ``ssh`` or ``adb shell``.

    Example:
        >>> remote_join(["cat", "a b;$(reboot)"])
        "cat 'a b;$(reboot)'"
    """
    return shlex.join(str(a) for a in argv)


@dataclass(frozen=True)
class Command:
    """One program run: its arguments, what it is for, and the local file fed to its stdin.

    Example:
        >>> Command(("ssh", "pi", "cat > /tmp/m"), "copy", stdin=Path("my model.tflite")).shell()
        "ssh pi 'cat > /tmp/m' < 'my model.tflite'"
    """

    argv: tuple[str, ...]
    what: str
    stdin: Path | None = None
    timeout_s: float = 60.0

    def shell(self) -> str:
        """How a user would type it in a shell."""
        text = shlex.join(self.argv)
        return f"{text} < {shlex.quote(str(self.stdin))}" if self.stdin else text

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"argv": list(self.argv), "what": self.what,
                "stdin": str(self.stdin) if self.stdin else None, "timeout_s": self.timeout_s}


# Given a failed command's stderr, a one-line reason or None; one per kind of tool.
Diagnose = Callable[[str], str | None]


class Runner:
    """Runs :class:`Command` objects, or only prints them (``dry_run``).

    Args:
        dry_run: print each command to ``echo`` instead of running it.
        echo: where commands are printed (``--dry-run`` and ``--verbose``);
            None prints nothing.
    """

    def __init__(self, dry_run: bool = False, echo: Callable[[str], None] | None = None):
        self.dry_run = dry_run
        self.echo = echo
        self.ran: list[Command] = []

    def run(self, command: Command, device: str, diagnose: Diagnose | None = None,
            accept: tuple[int, ...] = (0,)) -> str:
        """Runs ``command`` and returns its stdout ('' on a dry run).

        Args:
            command: what to run.
            device: the device it talks to, named in errors.
            diagnose: turns the program's stderr into a reason when it fails.
            accept: exit statuses whose stdout the caller reads itself.

        Raises:
            EdgeDistillError: the program is not installed, did not finish within
                its timeout, or failed; the message names ``device`` and the step.
        """
        self.ran.append(command)
        if self.echo:
            self.echo(f"# {command.what}\n{command.shell()}" if self.dry_run else command.shell())
        if self.dry_run:
            return ""
        stdin = open(command.stdin, "rb") if command.stdin is not None else subprocess.DEVNULL
        try:
            done = subprocess.run(command.argv, stdin=stdin, capture_output=True,
                                  timeout=command.timeout_s, check=False)
        except FileNotFoundError:
            raise EdgeDistillError(f"{command.argv[0]}: not installed or not on PATH; it is "
                                   f"needed to {command.what}") from None
        except subprocess.TimeoutExpired:
            raise EdgeDistillError(f"{device}: no answer within {command.timeout_s:g} s "
                                   f"while trying to {command.what}; is it on and reachable?"
                                   ) from None
        finally:
            if command.stdin is not None:
                stdin.close()
        if done.returncode not in accept:
            err = done.stderr.decode("utf-8", "replace")
            reason = (diagnose(err) if diagnose else None) or _last_line(err) or \
                f"{command.argv[0]} exited with status {done.returncode}"
            raise EdgeDistillError(f"{device}: could not {command.what}: {reason}")
        return done.stdout.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def checked_work_dir(printed: str, pattern: re.Pattern, device: str, hint: str) -> str:
    """The directory ``mktemp -d`` printed on a device, refused unless it matches ``pattern``.

    Example:
        >>> checked_work_dir("/tmp/edgedistill.ab12\\n", re.compile(r"/tmp/\\S+"), "pi", "")
        '/tmp/edgedistill.ab12'
    """
    path = printed.strip()
    if not pattern.fullmatch(path):
        raise EdgeDistillError(f"{device}: mktemp -d printed {path[:80]!r}, not {hint}")
    return path


class Session(Protocol):
    """A device session with a work directory to remove."""

    def cleanup(self) -> None:
        """Removes the work directory, if one was made."""


@contextlib.contextmanager
def cleaned_up(session: Session, keep: bool) -> Iterator[None]:
    """Removes the session's work directory after the block unless ``keep``; after a
    failure too, quietly, so the first error is the one reported."""
    try:
        yield
    except EdgeDistillError:
        if not keep:
            with contextlib.suppress(EdgeDistillError):  # the device may be gone
                session.cleanup()
        raise
    if not keep:
        session.cleanup()
