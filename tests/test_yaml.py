"""The YAML reader behind targets and recipes: alias bombs and huge values end in one short line."""

import subprocess
import sys
import time

import pytest

from edgedistill._yaml import MAX_VALUES, read_yaml
from edgedistill.distill.recipe import load_recipe
from edgedistill.errors import EdgeDistillError
from edgedistill.targets import get


def _laughs(levels: int, width: int = 9, key: str = "name") -> str:
    """The "billion laughs" bomb: each level lists the previous one ``width`` times."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join([*lines, f"{key}: *l{levels - 1}"]) + "\n"


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_laughs(9))
    assert len(bomb.read_bytes()) < 600
    started = time.perf_counter()
    with pytest.raises(EdgeDistillError, match=f"bomb.yaml: its aliases expand to more than "
                                               f"{MAX_VALUES:,} values"):
        read_yaml(bomb, "target file")
    assert time.perf_counter() - started < 1


def test_shared_anchors_within_the_bound_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1, y: [1, 2]}\nother: *b\n")
    assert read_yaml(path, "recipe") == {"base": {"x": 1, "y": [1, 2]},
                                         "other": {"x": 1, "y": [1, 2]}}
    path.write_text(_laughs(3))  # 9^3 values: fine
    assert len(read_yaml(path, "recipe")["name"]) == 9


@pytest.mark.parametrize("load", [get, load_recipe])
def test_targets_and_recipes_refuse_the_bomb(tmp_path, load):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_laughs(9, key="name"))
    with pytest.raises(EdgeDistillError, match="aliases expand"):
        load(bomb)


def test_a_large_bad_value_is_cut_to_an_excerpt(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(_laughs(4, key="name"))  # 9^4 = 6,561 values under a string field
    with pytest.raises(EdgeDistillError) as error:
        get(path)
    assert len(str(error.value)) < 300


def test_targets_show_on_a_bomb_is_one_line_exit_2(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_laughs(9))
    child = subprocess.run([sys.executable, "-m", "edgedistill.cli", "targets", "show", str(bomb)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 2
    assert child.stderr.count("\n") == 1 and "aliases expand" in child.stderr
