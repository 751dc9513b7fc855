import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import strict_json

from edgedistill._fileio import (
    check_output_dir,
    json_text,
    output_dir,
    recover,
    relocated,
    resumable_output_dir,
    write_text_atomic,
)
from edgedistill.errors import EdgeDistillError


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_output_dir_appears_only_on_success(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), output_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with output_dir(target) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (target / "done.txt").read_text() == "x"


def test_output_dir_refuses_non_empty_without_force(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("keep")
    with pytest.raises(EdgeDistillError, match="--force"), output_dir(tmp_path / "out"):
        pass
    assert (tmp_path / "out" / "keep.txt").read_text() == "keep"
    with output_dir(tmp_path / "out", force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]


def test_output_dir_keeps_the_old_run_when_the_new_one_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), output_dir(out, force=True) as d:
        (d / "partial.txt").write_text("p")
        raise RuntimeError
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


_KILLED_WRITER = """
import sys, time
from edgedistill._fileio import output_dir
with output_dir(sys.argv[1], force=True) as tmp:
    (tmp / "new.txt").write_text("new")
    print("writing", flush=True)
    time.sleep(60)
"""


def test_kill_9_while_replacing_keeps_the_old_run_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(out)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "writing\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert len(list(tmp_path.glob(".out.*.partial"))) == 1
    with pytest.raises(EdgeDistillError, match="--force"):
        check_output_dir(out, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_old_run_moved_aside_by_a_killed_process_goes_back(tmp_path):
    pid = _dead_pid()
    aside = tmp_path / f".out.{pid}.0123abcd.old"
    aside.mkdir()
    (aside / "old.txt").write_text("old")
    unfinished = tmp_path / f".out.{pid}.89abcdef.partial"
    unfinished.mkdir()
    recover(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "old.txt").read_text() == "old"


def test_an_old_run_already_replaced_is_removed(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / f".out.{_dead_pid()}.0123abcd.old").mkdir()
    recover(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_live_processes_and_other_names_are_kept(tmp_path):
    names = [f".out.{os.getpid()}.0123abcd.partial", f".other.{_dead_pid()}.0123abcd.partial",
             ".out.partial", ".out.notapid.0123abcd.partial",
             f".out.{10**30}.0123abcd.partial"]
    for name in names:
        (tmp_path / name).mkdir()
    recover(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_a_resumable_run_killed_before_its_first_checkpoint_is_cleaned_up(tmp_path):
    (tmp_path / ".out.partial" / "checkpoints").mkdir(parents=True)
    with resumable_output_dir(tmp_path / "out") as work:
        (work / "result.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_outputs_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with output_dir(tmp_path / "out") as tmp:
            (tmp / "a.txt").write_text("a")
        path = write_text_atomic(tmp_path / "b.txt", "b")
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert path.stat().st_mode & 0o777 == 0o644


def test_json_text_is_always_valid_json():
    text = json_text({"loss": float("nan"), "peak": [float("inf"), -float("inf"), 1.5],
                      "pair": (1, 2)})
    assert strict_json(text) == {"loss": None, "peak": [None, None, 1.5], "pair": [1, 2]}
    assert text.endswith("}\n")


@dataclasses.dataclass(frozen=True)
class _Record:
    path: str
    files: tuple
    inner: dict


def test_relocated_moves_paths_under_the_temporary_directory_only():
    record = _Record("/r/.q.1.partial/model.tflite",
                     ("/r/.q.1.partial", "/r/.q.1.partialx/a", "/elsewhere/b"),
                     {"micro": {"out_dir": "/r/.q.1.partial/micro"}, "n": 3})
    moved = relocated(record, "/r/.q.1.partial", "/r/q")
    assert moved == _Record("/r/q/model.tflite", ("/r/q", "/r/.q.1.partialx/a", "/elsewhere/b"),
                            {"micro": {"out_dir": "/r/q/micro"}, "n": 3})


def test_write_text_atomic_never_overwrites_silently(tmp_path):
    path = write_text_atomic(tmp_path / "a.md", "one")
    with pytest.raises(EdgeDistillError, match="exists"):
        write_text_atomic(path, "two")
    write_text_atomic(path, "two", force=True)
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"]


def test_kill_9_during_the_arena_search_leaves_nothing_after_the_next_search(tmp_path,
                                                                           monkeypatch):
    from conftest import mlperf_model

    from edgedistill.micro.arena import try_arena

    model = mlperf_model("kws_ref_model.tflite")
    search = f"from edgedistill.micro import measure_arena; measure_arena({str(model)!r})"
    child = subprocess.Popen([sys.executable, "-c", search], env={**os.environ,
                                                                  "TMPDIR": str(tmp_path)})
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".edgedistill-micro.*.partial/model.tflite")):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert len(list(tmp_path.iterdir())) == 1
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert try_arena(model, 64 * 1024).ok
    assert list(tmp_path.iterdir()) == []
