"""Outputs are written under a temporary name and renamed into place.

Nothing a command produces is ever half-written, and an existing output is
replaced only when the user asked for it with ``force``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgedistill.errors import EdgeDistillError


def check_output_dir(path: str | os.PathLike, force: bool) -> Path:
    """Fails early when ``path`` holds something and ``force`` is off."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EdgeDistillError(f"{path}: exists and is not a directory; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise EdgeDistillError(
            f"{path}: output directory exists and is not empty; pass --force to replace it"
        )
    return path


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yields a fresh temporary directory that becomes ``path`` on success.

    On an exception the temporary directory is removed and ``path`` is left
    as it was. With ``force``, a previous ``path`` is replaced only after the
    new one is complete.

    Example:
        >>> with output_dir("runs/digits", force=True) as tmp:
        ...     (tmp / "report.json").write_text("{}")
    """
    path = check_output_dir(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        path.rename(old)
    tmp.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Writes ``data`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    if path.exists() and not force:
        raise EdgeDistillError(f"{path}: exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` through a temporary file."""
    return write_bytes_atomic(path, text.encode("utf-8"), force=force)


@contextlib.contextmanager
def replacing_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yields ``path`` itself, emptied, for a multi-stage run that writes under it.

    Each stage writes its own sub-directory atomically (:func:`output_dir`);
    this keeps the whole run all-or-nothing: a previous ``path`` (``force``
    only) is moved aside and restored if the run fails, removed if it succeeds.
    """
    path = check_output_dir(path, force)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        path.rename(old)
    path.mkdir(parents=True)
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if old is not None:
            old.rename(path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def resumable_output_dir(path: str | os.PathLike, force: bool = False,
                         resume: bool = False, progress_dir: str = "checkpoints"
                         ) -> Iterator[Path]:
    """Like :func:`output_dir`, but an interrupted run's work survives for ``resume``.

    The work directory has a fixed name, ``.<name>.partial`` beside
    ``path``. If the run fails after it has written ``progress_dir``
    (a sub-directory of checkpoints) there, the directory stays, even after ``kill -9``; the
    next run must either ``resume`` it or ``force`` a fresh start. On success
    ``progress_dir`` is removed and the rest becomes ``path``.
    """
    path = check_output_dir(path, force)
    work = path.with_name(f".{path.name}.partial")
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
        progress = work / progress_dir
        if not (progress.is_dir() and any(p.is_dir() for p in progress.iterdir())):
            shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work / progress_dir, ignore_errors=True)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        path.rename(old)
    work.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
