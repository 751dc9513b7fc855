"""Linux boards over SSH: copy the model and a runner, check the copy, time it, clean up.

The system's OpenSSH client does the talking, so ``~/.ssh/config``, keys and
the agent work as they do for the user, and host keys are checked as the
user's configuration says (edgedistill never turns the check off). ssh runs
with ``BatchMode=yes``: a password prompt or an unknown host key is a clear
error, not a hang. On the device:

1. ``mktemp -d`` makes a private work directory;
2. the runner (:mod:`edgedistill.flash.device_runner`) and the model are
   streamed into it by ``cat``; the model is always called ``model.tflite``
   there, whatever its local name;
3. the runner checks the model's sha256, times it with the device's TFLite
   runtime and prints its figures as JSON;
4. the work directory is removed (unless ``keep``), also after a failure.

Example:
    >>> session = SshSession("pi@raspberrypi.local", Runner(dry_run=True))
    >>> session.base_argv()[:3]
    ('ssh', '-o', 'BatchMode=yes')
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from edgedistill.errors import EdgeDistillError
from edgedistill.flash.commands import Command, Runner, checked_work_dir, cleaned_up, remote_join

RUNNER_NAME = "device_runner.py"
MODEL_NAME = "model.tflite"
# What mktemp prints; anything else (a login banner on stdout, say) is refused.
_WORK_DIR = re.compile(r"/[A-Za-z0-9._/+-]+")
# Shown in a dry run, where no directory was made.
DRY_RUN_DIR = "/tmp/edgedistill.XXXXXXXX"
_EXIT = {3: "checksum", 4: "no-runtime", 5: "run"}


def check_address(address: str) -> str:
    """An ssh destination (``host``, ``user@host``, ``ssh://user@host:port`` or a
    ``~/.ssh/config`` alias), refused when ssh would read it as something else.

    Example:
        >>> check_address("pi@raspberrypi.local")
        'pi@raspberrypi.local'
        >>> check_address("-oProxyCommand=x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        edgedistill.errors.EdgeDistillError: --device '-oProxyCommand=x': ... cannot start with '-'
    """
    if not address or address.startswith("-"):
        raise EdgeDistillError(f"--device {address!r}: an ssh destination cannot "
                               f"{'be empty' if not address else 'start with ' + repr('-')}")
    if any(not c.isprintable() or c.isspace() for c in address):
        raise EdgeDistillError(f"--device {address!r}: an ssh destination has no spaces or "
                               "control characters")
    return address


def diagnose_ssh(stderr: str) -> str | None:
    """The reason an ssh command failed, from its stderr, with what to do."""
    text = stderr.lower()
    if "remote host identification has changed" in text or "host key for" in text and \
            "has changed" in text:
        return ("its host key is not the one in known_hosts, so ssh refused to connect (it "
                "may be another machine); if the device was reinstalled, remove the old key "
                "with ssh-keygen -R HOST")
    if "host key verification failed" in text:
        return ("its host key is not in known_hosts (ssh does not ask in batch mode); connect "
                "once with plain ssh and check the fingerprint")
    if "permission denied" in text:
        return ("login refused: set up key login (ssh-copy-id) or load the key into the agent; "
                "edgedistill never types passwords")
    if "connection refused" in text:
        return "connection refused: is sshd running on the device, on this port?"
    if "timed out" in text:
        return "connection timed out: is the device on and reachable?"
    if "could not resolve hostname" in text:
        return "unknown host name: check the address or ~/.ssh/config"
    return None


class SshSession:
    """One device reached over ssh.

    Args:
        address: the ssh destination.
        runner: runs (or prints) the commands.
        ssh_config: an ssh configuration file used instead of ``~/.ssh/config`` (``-F``).
        connect_timeout_s: ssh's ``ConnectTimeout``.
        timeout_s: each remote step's time limit (copies and the timed run).
    """

    def __init__(self, address: str, runner: Runner, ssh_config: str | Path | None = None,
                 connect_timeout_s: int = 10, timeout_s: float = 300.0) -> None:
        self.address = check_address(address)
        self.runner = runner
        self.ssh_config = ssh_config
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.work_dir: str | None = None

    def base_argv(self) -> tuple[str, ...]:
        """``ssh`` and its options up to the destination."""
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}",
                   "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.ssh_config is not None:
            options += ["-F", str(self.ssh_config)]
        return ("ssh", *options, self.address)

    def remote(self, argv: list[str], what: str, stdin: Path | None = None,
               accept: tuple[int, ...] = (0,)) -> str:
        """Runs ``argv`` on the device (quoted for its shell); returns its stdout."""
        command = Command((*self.base_argv(), remote_join(argv)), what, stdin,
                          self.timeout_s + self.connect_timeout_s)
        return self.runner.run(command, self.address, diagnose_ssh, accept)

    def make_work_dir(self) -> str:
        """Makes a private directory on the device and returns its path."""
        out = self.remote(["mktemp", "-d", "/tmp/edgedistill.XXXXXXXX"],
                          "make a work directory on the device")
        self.work_dir = DRY_RUN_DIR if self.runner.dry_run else checked_work_dir(
            out, _WORK_DIR, self.address,
            "a directory path; does the login shell print to stdout?")
        return self.work_dir

    def upload(self, local: Path, name: str) -> str:
        """Streams ``local`` into the work directory as ``name``; returns the remote path."""
        remote = f"{self.work_dir}/{name}"
        self.remote(["sh", "-c", 'cat > "$1"', "sh", remote],
                    f"copy {name} to the device", stdin=local)
        return remote

    def time_model(self, sha256: str, python: str, runs: int, warmup: int,
                   threads: int) -> dict:
        """Runs the uploaded runner on the uploaded model; returns its figures.

        Raises:
            EdgeDistillError: the checksum did not match, the device has no
                TFLite runtime, or the runtime could not run the model.
        """
        argv = [python, f"{self.work_dir}/{RUNNER_NAME}", f"{self.work_dir}/{MODEL_NAME}",
                "--sha256", sha256, "--runs", str(runs), "--warmup", str(warmup),
                "--threads", str(threads)]
        out = self.remote(argv, f"time the model on the device with {python}",
                          accept=(0, *_EXIT))
        if self.runner.dry_run:
            return {}
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise EdgeDistillError(f"{self.address}: the runner printed {out.strip()[:120]!r}, "
                                   f"not its JSON figures; is {python} Python 3?") from None
        if not isinstance(result, dict):
            raise EdgeDistillError(f"{self.address}: the runner printed {result!r:.120}")
        if "error" in result:
            raise EdgeDistillError(f"{self.address}: {result.get('message', result['error'])}")
        return result

    def cleanup(self) -> None:
        """Removes the work directory, if one was made."""
        if self.work_dir is not None:
            self.remote(["rm", "-rf", "--", self.work_dir], "remove the work directory")
            self.work_dir = None


def runner_source() -> Path:
    """The runner copied to the device (a file inside the installed package)."""
    return Path(str(resources.files("edgedistill.flash").joinpath(RUNNER_NAME)))


def flash_over_ssh(session: SshSession, model: Path, sha256: str, python: str, runs: int,
                   warmup: int, threads: int, keep: bool = False) -> dict:
    """The whole SSH round: work directory, copies, checked timed run, cleanup.

    Returns:
        The runner's figures (empty on a dry run), with ``work_dir`` added when kept.
    """
    session.make_work_dir()
    with cleaned_up(session, keep):
        session.upload(runner_source(), RUNNER_NAME)
        session.upload(model, MODEL_NAME)
        figures = session.time_model(sha256, python, runs, warmup, threads)
        kept = {"work_dir": session.work_dir} if keep else {}
    return {**figures, **kept}
