"""Teacher outputs computed once per dataset and read back memory-mapped.

Without augmentation the teacher's outputs on the training data never
change, so running it at every step of every epoch doubles the cost of
distillation for nothing. :func:`cached_teacher_outputs` computes them once,
in batches, and stores them on disk keyed by the teacher's digest and the
data's, so later runs (other students, seeds, losses) read them for free.

Example:
    >>> cached = cached_teacher_outputs(teacher, data.x_train, rows=data.train_rows)
    >>> cached.arrays["output"].shape, cached.hit
    ((54000, 10), True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgedistill._fileio import user_cache_dir
from edgedistill.distill.teachers import OUTPUT, EnsembleTeacher, Teacher
from edgedistill.errors import EdgeDistillError

FORMAT = "edgedistill-teacher-outputs-1"
META = "meta.json"


@dataclasses.dataclass(frozen=True)
class CachedOutputs:
    """Teacher outputs for every row of an array, memory-mapped read-only.

    Attributes:
        arrays: ``{"output": (n, classes), layer: (n, ...)}``.
        path: the cache entry's folder.
        hit: read from disk (True) or computed now (False).
        seconds: time spent computing or opening.
    """

    arrays: dict[str, np.ndarray]
    path: str
    hit: bool
    seconds: float

    def to_dict(self) -> dict:
        return {"path": self.path, "hit": self.hit, "seconds": self.seconds,
                "shapes": {k: list(v.shape) for k, v in self.arrays.items()}}


def default_cache_dir() -> Path:
    """``$EDGEDISTILL_CACHE_DIR``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get("EDGEDISTILL_CACHE_DIR"):
        return Path(os.environ["EDGEDISTILL_CACHE_DIR"])
    return user_cache_dir() / "teacher-outputs"


def cached_teacher_outputs(teacher: Teacher, x: np.ndarray, *, rows: np.ndarray | None = None,
                           layer_names: Sequence[str] = (), cache_dir=None,
                           batch_size: int = 256) -> CachedOutputs:
    """The teacher's outputs on every row of ``x``, from the cache or computed and cached.

    Args:
        teacher: any teacher; precomputed (.npy) ones read their ``rows``.
        x: the inputs, one sample per row.
        rows: each sample's row in the user's training array (for .npy teachers).
        layer_names: teacher layers whose outputs are cached too.
        cache_dir: the cache's root folder (default :func:`default_cache_dir`).
        batch_size: rows per teacher call.
    """
    started = time.perf_counter()
    layer_names = tuple(sorted(layer_names))
    key = _key(teacher, x, rows, layer_names)
    entry = Path(cache_dir or default_cache_dir()) / key
    names = (OUTPUT, *layer_names)
    arrays = _read(entry, names, len(x))
    if arrays is not None:
        return CachedOutputs(arrays, str(entry), True, time.perf_counter() - started)
    computed = _compute(teacher, x, rows, layer_names, batch_size)
    _write(entry, computed)
    arrays = _read(entry, names, len(x))
    if arrays is None:  # the cache folder is not writable or readable: keep them in memory
        arrays = computed
    return CachedOutputs(arrays, str(entry), False, time.perf_counter() - started)


def _key(teacher: Teacher, x: np.ndarray, rows, layer_names) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    digest.update(teacher.digest.encode())
    digest.update(json.dumps([str(x.dtype), list(x.shape), list(layer_names)]).encode())
    digest.update(memoryview(np.ascontiguousarray(x)).cast("B"))
    if rows is not None:
        digest.update(np.ascontiguousarray(rows, np.int64).tobytes())
    return digest.hexdigest()[:32]


def _compute(teacher: Teacher, x, rows, layer_names, batch_size) -> dict[str, np.ndarray]:
    if isinstance(teacher, EnsembleTeacher):
        outputs = [_compute(m, x, rows, (), batch_size)[OUTPUT] for m in teacher.members]
        return {OUTPUT: teacher.combine(outputs)}
    if not teacher.runs_in_graph:
        if rows is None:
            raise EdgeDistillError(
                f"{teacher.name}: precomputed outputs need the training rows they belong to")
        if layer_names:
            teacher.layer_output_shape(layer_names[0])
        out = teacher.rows(rows)
        if out.shape[0] != len(x):
            raise EdgeDistillError(f"{teacher.name}: {out.shape[0]} rows for {len(x)} samples")
        return {OUTPUT: out}
    computed = teacher.predict(x, batch_size=batch_size, layer_names=layer_names)
    for name, array in computed.items():
        if not np.isfinite(array).all():
            raise EdgeDistillError(
                f"{teacher.name}: gives NaN or infinite outputs ({name}); check the teacher and "
                "the data")
    return computed


def _read(entry: Path, names, rows: int) -> dict[str, np.ndarray] | None:
    """The entry's arrays, or None when it is missing, partial or damaged."""
    try:
        meta = json.loads((entry / META).read_text())
        if meta.get("format") != FORMAT or sorted(meta.get("arrays", {})) != sorted(names):
            return None
        arrays = {}
        for name in names:
            array = np.load(entry / f"{_file(name)}.npy", mmap_mode="r", allow_pickle=False)
            if list(array.shape) != meta["arrays"][name] or array.shape[0] != rows:
                return None
            arrays[name] = array
        return arrays
    except Exception:  # any damage (NumPy's header parser raises SyntaxError too) means redo
        return None


def _write(entry: Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes the entry under a temporary name and renames it; a lost race is fine."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    except OSError:
        return
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{_file(name)}.npy", np.ascontiguousarray(array))
        meta = {"format": FORMAT, "arrays": {k: list(v.shape) for k, v in arrays.items()}}
        (tmp / META).write_text(json.dumps(meta))
        if entry.exists():  # damaged: the fresh copy replaces it
            shutil.rmtree(entry, ignore_errors=True)
        tmp.rename(entry)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _file(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16] if name != OUTPUT else OUTPUT
