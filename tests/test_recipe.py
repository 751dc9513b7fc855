"""Distill recipes: YAML settings read as distill() arguments, and every bad file refused."""

import inspect

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedistill.cli import distill as distill_command
from edgedistill.cli import main
from edgedistill.distill import distill
from edgedistill.distill.recipe import KEYS, load_recipe
from edgedistill.errors import EdgeDistillError

RECIPE = """\
teacher: [teacher-mlp, teacher.h5]
student: student-mlp
data: digits
out: runs/x
mode: standard
losses:
  - logits_distillation:temperature=2
  - name: feature_distillation
    teacher_layer_name: dense
    student_layer_name: dense_1
loss-weights: [1, 0.5]
augment: [shift, {name: mixup, alpha: 0.4}]
epochs: 3
alpha: 0
qat: true
baseline: false
"""


def test_a_recipe_reads_as_distill_arguments(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    recipe = load_recipe(path)
    assert recipe == {
        "teacher": ["teacher-mlp", "teacher.h5"], "student": "student-mlp", "data": "digits",
        "out_dir": "runs/x", "mode": "standard",
        "losses": ["logits_distillation:temperature=2",
                   {"class_name": "feature_distillation",
                    "config": {"teacher_layer_name": "dense", "student_layer_name": "dense_1"}}],
        "loss_weights": [1.0, 0.5],
        "augment": ["shift", {"class_name": "mixup", "config": {"alpha": 0.4}}],
        "epochs": 3, "alpha": 0.0, "qat": True, "scratch_baseline": False,
    }
    parameters = inspect.signature(distill).parameters
    assert set(KEYS) <= set(parameters) and set(recipe) <= set(parameters)


def test_command_line_defaults_are_the_python_defaults():
    """A recipe run (Python defaults) and a command-line run (click defaults) agree."""
    parameters = inspect.signature(distill).parameters
    names = {"out": "out_dir", "baseline": "scratch_baseline", "teachers": "teacher"}
    for option in distill_command.params:
        name = names.get(option.name, option.name)
        if name not in parameters or option.multiple:
            continue
        python_default = parameters[name].default
        if python_default is inspect.Parameter.empty:
            continue
        click_default = option.default if isinstance(
            option.default, bool | int | float | str | type(None)) else None
        assert python_default == click_default, name


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "a recipe is a mapping"),
    ("epochs: [1\n", "invalid YAML at line"),
    ("temprature: 2\n", "unknown key 'temprature'; known: "),
    ("epochs: 2.5\n", "epochs: expected a whole number"),
    ("epochs: true\n", "epochs: expected a whole number"),
    ("alpha: .nan\n", "alpha: expected a number"),
    ("qat: yes please\n", "qat: expected true or false"),
    ("student: [a, b]\n", "student: expected text"),
    ("teacher: [1, 2]\n", "teacher: expected a teacher"),
    ("teacher: []\n", "teacher: expected a teacher"),
    ("losses: logits_distillation\n", "losses: expected a list"),
    ("losses: [{temperature: 2}]\n", "with 'name' and plain settings"),
    ("losses: [{name: x, nested: {a: 1}}]\n", "with 'name' and plain settings"),
    ("loss_weights: [1, a]\n", "loss_weights: expected a list of numbers"),
    ("adversary: [pgd]\n", "adversary: expected a spec string"),
    ("epochs: 2\nepochs: 3\n", None),
    ("out: a\nout_dir: b\n", "out_dir is given twice"),
    ("a: &x [1]\nb: *x\n", "unknown key 'a'"),
])
def test_bad_recipes_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    if message is None:  # YAML itself keeps the last of repeated keys
        assert load_recipe(path) == {"epochs": 3}
        return
    with pytest.raises(EdgeDistillError, match=message) as error:
        load_recipe(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_unreadable_recipes(tmp_path):
    with pytest.raises(EdgeDistillError, match="no such recipe"):
        load_recipe(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EdgeDistillError, match="cannot read recipe"):
        load_recipe(tmp_path / "bin.yaml")
    (tmp_path / "big.yaml").write_text("# " + "x" * (2 << 20))
    with pytest.raises(EdgeDistillError, match="too large for a recipe"):
        load_recipe(tmp_path / "big.yaml")
    with pytest.raises(EdgeDistillError, match="cannot read recipe"):
        load_recipe(tmp_path)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_fuzzed_recipes_read_or_fail_cleanly(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_bytes(content)
    try:
        recipe = load_recipe(path)
    except EdgeDistillError as error:
        assert "\n" not in str(error)
    else:
        assert set(recipe) <= set(KEYS)


def test_the_command_line_runs_a_recipe_and_its_options_override_it(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("teacher: teacher-mlp\nteacher_epochs: 1\nstudent: student-mlp\n"
                      "data: digits\nepochs: 5\nbaseline: false\n"
                      f"out: {tmp_path / 'from-recipe'}\ncache_dir: {tmp_path / 'cache'}\n")
    result = CliRunner().invoke(main, ["distill", "--recipe", str(recipe), "--epochs", "1",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "distill epoch 1/1" in result.stderr and "from scratch" not in result.stdout
    assert (tmp_path / "run" / "student.h5").is_file() and not (tmp_path / "from-recipe").exists()

    recipe.write_text("teacher: teacher-mlp\ndata: digits\n")
    result = CliRunner().invoke(main, ["distill", "--recipe", str(recipe), "--out",
                                       str(tmp_path / "x")])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "Error: --student: required (on the command line or in --recipe)")
