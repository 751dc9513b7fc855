"""Staged recipes: parsed and checked, run stage after stage, resumed, and listed."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import strict_json
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedistill import recipes
from edgedistill._tf import keras
from edgedistill.cli import main
from edgedistill.data import load_dataset
from edgedistill.errors import EdgeDistillError
from edgedistill.recipes.schema import load_staged_recipe

TINY = """\
teacher: teacher-mlp
teacher_epochs: 2
student: student-mlp
data: digits
epochs: 2
cache_dir: {cache}
stages:
  - distill: {{}}
  - distill: {{prune: 0.5, epochs: 2}}
  - distill: {{qat: true, epochs: 1}}
    name: pqat
  - convert: {{micro: false}}
"""


def test_every_builtin_recipe_parses_and_ends_in_int8():
    assert {"qad", "prune-pqat", "sparse-2-4", "shrink-channels", "cluster"} <= set(
        recipes.builtin_recipes())
    for name in recipes.builtin_recipes():
        recipe = recipes.get(name)
        assert recipe.name == name and recipe.description
        assert recipe.stages[0].kind == "distill" and recipe.stages[-1].kind == "convert"
        assert recipe.stages[-1].settings.get("mode", "int8") == "int8"
    assert [s.name for s in recipes.get("prune-pqat").stages] == [
        "1-distill", "2-prune", "3-pqat", "4-int8"]


def test_a_staged_recipe_reads_shared_and_stage_settings(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(TINY.format(cache=tmp_path))
    recipe = load_staged_recipe(path)
    assert recipe.name == "r"
    assert recipe.shared == {"teacher": "teacher-mlp", "teacher_epochs": 2,
                             "student": "student-mlp", "data": "digits", "epochs": 2,
                             "cache_dir": str(tmp_path)}
    assert [(s.kind, s.name, s.settings) for s in recipe.stages] == [
        ("distill", "1-distill", {}), ("distill", "2-prune", {"prune": 0.5, "epochs": 2}),
        ("distill", "3-pqat", {"qat": True, "epochs": 1}), ("convert", "4-int8",
                                                           {"micro": False})]
    assert recipe.with_shared({"epochs": 9}).shared["epochs"] == 9
    assert isinstance(recipes.load(path), recipes.Recipe)
    path.write_text("epochs: 3\n")
    assert recipes.load(path) == {"epochs": 3}


@pytest.mark.parametrize("text, message", [
    ("stages: []\n", "stages: expected a list of stages"),
    ("stages: distill\n", "stages: expected a list of stages"),
    ("stages: [distill]\n", "stages[1]: expected a mapping"),
    ("stages: [{quantize: {}}]\n", "stages[1]: expected one stage kind (distill, convert)"),
    ("stages: [{distill: {}, convert: {}}]\n", "expected one stage kind"),
    ("stages: [{distill: [1]}]\n", "stages[1].distill: expected a mapping of settings"),
    ("stages: [{distill: {epochs: 1.5}}]\n", "stages[1].distill: epochs: expected a whole"),
    ("stages: [{distill: {temprature: 2}}]\n", "stages[1].distill: unknown key 'temprature'"),
    ("stages: [{distill: {}}, {distill: {student: s.h5}}]\n",
     "stages[2].distill.student: set it once, at the top"),
    ("stages: [{distill: {out: x}}]\n", "stages[1].distill.out_dir: set it once"),
    ("stages: [{convert: {mode: int3}}]\n", "stages[1].convert.mode: 'int3' unknown"),
    ("stages: [{convert: {calibration_per_class: 0}}]\n",
     "calibration_per_class: expected a whole"),
    ("stages: [{convert: {micro: 1}}]\n", "convert.micro: expected bool"),
    ("stages: [{convert: {threads: 2}}]\n", "convert: unknown key 'threads'"),
    ("stages: [{convert: {io_type: int4}}]\n", "convert.io_type: 'int4' unknown"),
    ("stages: [{convert: {max_accuracy_drop: 2}}]\n", "max_accuracy_drop: a fraction from 0"),
    ("stages: [{convert: {max_accuracy_drop: x}}]\n", "max_accuracy_drop: expected float"),
    ("stages: [{distill: {}, name: Big Name}]\n", "stages[1].name: expected lower-case"),
    ("stages: [{distill: {}, name: a}, {convert: {}, name: a}]\n", None),
    ("epochs: two\nstages: [{distill: {}}]\n", "epochs: expected a whole number"),
    ("description: [a]\nstages: [{distill: {}}]\n", "description: expected text"),
    ("stages: [" + ", ".join(["{distill: {}}"] * 21) + "]\n", "at most 20"),
])
def test_bad_staged_recipes_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    if message is None:  # stage names are numbered, so equal labels never clash
        assert [s.name for s in load_staged_recipe(path).stages] == ["1-a", "2-a"]
        return
    with pytest.raises(EdgeDistillError, match=message.replace("(", r"\(").replace(
            ")", r"\)").replace("[", r"\[").replace("]", r"\]")) as error:
        load_staged_recipe(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(
                        st.sampled_from(["distill", "convert", "name", "epochs", "qat", "mode",
                                         "prune", "student", "x"]), children, max_size=3),
                    max_leaves=12))
def test_fuzzed_stage_lists_read_or_fail_cleanly(tmp_path_factory, stages):
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_text(json.dumps({"stages": stages}))  # JSON is YAML
    try:
        recipe = load_staged_recipe(path)
    except EdgeDistillError as error:
        assert "\n" not in str(error)
    else:
        assert all(stage.kind in ("distill", "convert") for stage in recipe.stages)


def test_the_scratch_baseline_can_start_from_another_student(tmp_path):
    from edgedistill.distill import distill

    k = keras()
    data = load_dataset("digits")

    def mlp(seed):
        k.utils.set_random_seed(seed)
        return k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(),
                             k.layers.Dense(10)], name="tiny")

    mlp(1).save(tmp_path / "student.h5")
    start = mlp(2)
    start.save(tmp_path / "start.h5")
    result = distill("teacher-mlp", str(tmp_path / "student.h5"), data, tmp_path / "run",
                     scratch_student=str(tmp_path / "start.h5"), epochs=1, teacher_epochs=1,
                     learning_rate=1e-12, cache_dir=tmp_path / "cache")
    scratch = k.models.load_model(result.scratch_path, compile=False)
    for got, want in zip(scratch.get_weights(), start.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    wide = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(4),
                         k.layers.Dense(10)])
    wide.save(tmp_path / "wide.h5")
    with pytest.raises(EdgeDistillError, match="wide.h5: its weights do not fit"):
        distill("teacher-mlp", str(tmp_path / "student.h5"), data, tmp_path / "run2",
                scratch_student=str(tmp_path / "wide.h5"), epochs=1)


class _Recorder:
    def __init__(self, stop_at=None):
        self.stages, self.stop_at = [], stop_at

    def stage(self, name, detail=""):
        self.stages.append((name, detail))
        if self.stop_at and detail.startswith(self.stop_at):
            raise KeyboardInterrupt

    def epoch(self, stage, epoch, epochs, logs):
        pass


def test_a_recipe_runs_its_stages_in_a_chain_and_resumes(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(TINY.format(cache=tmp_path / "cache"))
    recipe = recipes.load(path)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        recipes.run_recipe(recipe, out, progress=_Recorder(stop_at="stage 3/4"))
    assert not out.exists() and (tmp_path / ".out.partial" / "stages-done").is_dir()
    with pytest.raises(EdgeDistillError, match="pass --resume"):
        recipes.run_recipe(recipe, out)

    progress = _Recorder()
    result = recipes.run_recipe(recipe, out, resume=True, progress=progress)
    # Stages 1 and 2 are read back: no teacher is trained again, only pqat distills.
    assert [name for name, _ in progress.stages].count("teacher") == 0
    assert [name for name, _ in progress.stages].count("distill") == 1
    first, pruned, pqat, int8 = result.stages
    assert pruned.distill.teacher_paths == (str(out / "1-distill" / "teacher.h5"),)
    assert pqat.distill.teacher_paths == pruned.distill.teacher_paths
    assert all(layer["sparsity"] == pytest.approx(0.5, abs=0.01)
               for layer in pruned.distill.compressed_layers)
    assert pqat.distill.qat and int8.student.mode == "int8" and int8.scratch is not None
    # The zeros of pruning survive sparsity-preserving QAT into the .tflite.
    assert all(kernel["zeros"] >= 0.49 for kernel in int8.kernels)
    assert result.student_path == str(out / "4-int8" / "student" / "model.tflite")
    record = strict_json((out / "recipe.json").read_text())
    assert [s["stage"]["name"] for s in record["stages"]] == [s.stage.name for s in
                                                              result.stages]
    assert "| 2-prune |" in (out / "report.md").read_text()
    assert not (out / "stages-done").exists() and not list(tmp_path.glob(".out*"))


def test_the_command_line_runs_a_builtin_recipe_with_its_models_given(tmp_path, monkeypatch):
    result = CliRunner().invoke(main, ["recipes"])
    assert result.exit_code == 0 and "prune-pqat" in result.stdout
    result = CliRunner().invoke(main, ["recipes", "qad"])
    assert result.exit_code == 0 and result.stdout == (
        recipes.builtin_recipes()["qad"].read_text())
    result = CliRunner().invoke(main, ["recipes", "nope"])
    assert result.exit_code == 2 and "recipe 'nope': unknown" in result.stderr

    qad = tmp_path / "qad.yaml"
    qad.write_text(recipes.builtin_recipes()["qad"].read_text().replace(
        "epochs: 10", "epochs: 1"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [
        "distill", "--recipe", "qad.yaml", "-t", "teacher-mlp", "--teacher-epochs", "1",
        "-s", "student-mlp", "-d", "digits", "-o", "run", "--epochs", "1",
        "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "Recipe qad" in result.stdout and "3-int8" in result.stdout
    assert (tmp_path / "run" / "3-int8" / "student" / "micro" / "manifest.json").is_file()
    record = strict_json((tmp_path / "run" / "recipe.json").read_text())
    assert record["stages"][0]["distill"]["budget"]["epochs"] == 1  # the command line's
    assert record["stages"][1]["distill"]["budget"]["epochs"] == 1  # the stage's own
