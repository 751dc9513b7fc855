import pytest

from edgedistill._fileio import output_dir, replacing_dir, write_text_atomic
from edgedistill.errors import EdgeDistillError


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


def test_replacing_dir_restores_the_old_run_on_failure(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), replacing_dir(out, force=True) as d:
        (d / "partial.txt").write_text("p")
        raise RuntimeError
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_text_atomic_never_overwrites_silently(tmp_path):
    path = write_text_atomic(tmp_path / "a.md", "one")
    with pytest.raises(EdgeDistillError, match="exists"):
        write_text_atomic(path, "two")
    write_text_atomic(path, "two", force=True)
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"]
