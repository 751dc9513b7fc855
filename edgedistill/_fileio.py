"""Outputs are written under a temporary name and renamed into place.

Nothing a command produces is ever half-written, and an existing output is
replaced only when the user asked for it with ``force``, and only once the
new one is complete. Temporary names carry the writer's process id, so the
next run can tell what a killed run left behind and clean it up: a finished
output moved aside goes back into place, unfinished work is removed.
Everything is created through the user's umask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edgedistill.errors import EdgeDistillError

# .<name>.<pid>.<token>.<kind>: a temporary output or an old one moved aside.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.(?P<kind>partial|old)$")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/edgedistill``, or ``~/.cache/edgedistill``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgedistill"


def save_log(name: str, text: str) -> Path:
    """Keeps ``text`` (a child's traceback, say) in a log file the user can send us.

    The file is ``<cache>/logs/<name>-<date>-<time>-<pid>.log``.
    """
    logs = user_cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with open(path, "a", encoding="utf-8") as log:
        log.write(text)
    return path


def _temporary_name(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def _process_alive(pid: int) -> bool:
    """True unless ``pid`` is certainly gone (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # not ours, or no process could have this pid
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recover(path: str | os.PathLike) -> None:
    """Cleans up after runs on ``path`` that were killed before they could.

    An old output that a killed run had moved aside goes back to ``path`` if
    nothing took its place; temporary outputs of dead processes are removed.
    Leftovers of live processes (a run going on beside this one) are kept.
    """
    path = Path(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:  # no such folder, or not ours to list: nothing we left there
        return
    leftovers = []
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match and match["name"] == path.name and not _process_alive(int(match["pid"])):
            leftovers.append((match["kind"] != "old", entry))
    for _, entry in sorted(leftovers):
        if entry.name.endswith(".old") and not os.path.lexists(path):
            entry.rename(path)
        else:
            _remove(entry)


def check_output_dir(path: str | os.PathLike, force: bool) -> Path:
    """Fails early when ``path`` holds something and ``force`` is off.

    Leftovers of killed runs on ``path`` are cleaned up first (:func:`recover`).
    """
    path = Path(path)
    recover(path)
    if path.exists() and not path.is_dir():
        raise EdgeDistillError(f"{path}: exists and is not a directory; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise EdgeDistillError(
            f"{path}: output directory exists and is not empty; pass --force to replace it"
        )
    return path


def _make_temporary_dir(path: Path) -> Path:
    while True:
        tmp = _temporary_name(path, "partial")
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp


def _put_in_place(new: Path, path: Path) -> None:
    """Renames ``new`` to ``path``; an old ``path`` is removed only after that."""
    old = None
    if os.path.lexists(path):
        old = _temporary_name(path, "old")
        path.rename(old)
    new.rename(path)
    if old is not None:
        _remove(old)


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yields a fresh temporary directory that becomes ``path`` on success.

    On an exception the temporary directory is removed and ``path`` is left
    as it was. With ``force``, a previous ``path`` is replaced only after the
    new one is complete; if the process is killed, ``path`` keeps the old
    output and the next run removes the unfinished one.

    Example:
        >>> with output_dir("runs/digits", force=True) as tmp:
        ...     (tmp / "report.json").write_text("{}")
    """
    path = check_output_dir(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temporary_dir(path)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _put_in_place(tmp, path)


@contextlib.contextmanager
def temporary_dir(name: str) -> Iterator[Path]:
    """A working directory in the system's temporary folder, removed afterwards.

    It is named like a temporary output (``.<name>.<pid>.<token>.partial``),
    so one that a killed process left behind is removed by the next user.
    """
    path = Path(tempfile.gettempdir()) / name
    recover(path)
    tmp = _make_temporary_dir(path)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Writes ``data`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    recover(path)
    if path.exists() and not force:
        raise EdgeDistillError(f"{path}: exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _temporary_name(path, "partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` through a temporary file."""
    return write_bytes_atomic(path, text.encode("utf-8"), force=force)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def json_text(value) -> str:
    """``value`` as indented JSON that any parser accepts: NaN and infinity become null.

    Example:
        >>> json_text({"loss": float("nan"), "accuracy": 0.9})
        '{\n  "loss": null,\n  "accuracy": 0.9\n}\n'
    """
    return json.dumps(_finite(value), indent=2, allow_nan=False) + "\n"


def relocated(value, old: str | os.PathLike, new: str | os.PathLike):
    """``value`` with every path under ``old`` moved to under ``new``.

    A result built in a temporary directory records the paths it will have
    once that directory is renamed; dataclasses, dicts, lists and tuples are
    rebuilt, other values returned as they are.

    Example:
        >>> relocated({"model": "/runs/.q.1.partial/model.tflite"}, "/runs/.q.1.partial", "/runs/q")
        {'model': '/runs/q/model.tflite'}
    """
    old, new = os.fspath(old), os.fspath(new)
    if isinstance(value, str):
        if value == old or value.startswith(old + os.sep):
            return new + value[len(old):]
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{
            field.name: relocated(getattr(value, field.name), old, new)
            for field in dataclasses.fields(value) if field.init})
    if isinstance(value, dict):
        return {key: relocated(item, old, new) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(relocated(item, old, new) for item in value)
    return value


def _has_progress(work: Path, progress_dirs: tuple[str, ...]) -> bool:
    return any(progress.is_dir() and any(p.is_dir() for p in progress.iterdir())
               for pattern in progress_dirs for progress in work.glob(pattern))


@contextlib.contextmanager
def resumable_output_dir(path: str | os.PathLike, force: bool = False,
                         resume: bool = False, progress_dir: str | tuple[str, ...] = "checkpoints"
                         ) -> Iterator[Path]:
    """Like :func:`output_dir`, but an interrupted run's work survives for ``resume``.

    The work directory has a fixed name, ``.<name>.partial`` beside
    ``path``. If the run fails after it has written ``progress_dir``
    (a sub-directory of checkpoints; or glob patterns of several, such as a
    nested run's) there, the directory stays, even after ``kill -9``; the
    next run must either ``resume`` it or ``force`` a fresh start; one killed
    before its first checkpoint is simply removed. On success the progress
    directories are removed and the rest becomes ``path``.
    """
    patterns = (progress_dir,) if isinstance(progress_dir, str) else tuple(progress_dir)
    path = check_output_dir(path, force)
    work = path.with_name(f".{path.name}.partial")
    if work.exists() and not _has_progress(work, patterns):
        shutil.rmtree(work)
    if work.exists():
        if not resume and not force:
            raise EdgeDistillError(
                f"{path}: an interrupted run left its progress in {work}; pass --resume to "
                "continue it or --force to start over")
        if not resume:
            shutil.rmtree(work)
    elif resume:
        raise EdgeDistillError(f"{path}: nothing to resume ({work} does not exist); run "
                               "without --resume")
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    except BaseException:
        if not _has_progress(work, patterns):
            shutil.rmtree(work, ignore_errors=True)
        raise
    for pattern in patterns:
        for progress in list(work.glob(pattern)):
            shutil.rmtree(progress, ignore_errors=True)
    _put_in_place(work, path)
