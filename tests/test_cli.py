"""The command line, end to end, and every bad input it must refuse."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import mlperf_model, strict_json

from edgedistill.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_clean_error(result, *fragments):
    """Exit code 2, one line on stderr, no traceback, and the words that help."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs") / "run"
    result = run("quickstart", "--out", out, "--epochs", 2, "--teacher-epochs", 2,
                 "--max-train-samples", 2000)
    assert result.exit_code == 0, result.output
    return out, result


def test_quickstart_falls_back_to_digits_without_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr("edgedistill.data.FASHION_MNIST_DIR", tmp_path / "absent")
    result = run("quickstart", "--out", tmp_path / "run", "--epochs", 1, "--teacher-epochs", 1)
    assert result.exit_code == 0, result.output
    assert "apt install dataset-fashion-mnist" in result.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["distill"]["data"]["name"] == "digits"


def test_quickstart_runs_the_whole_pipeline(quickstart):
    out, result = quickstart
    for stage in ("▶ teacher", "▶ distill", "▶ scratch", "▶ convert", "▶ micro", "▶ profile"):
        assert stage in result.stderr
    assert "distill epoch 2/2" in result.stderr
    report = json.loads((out / "report.json").read_text())
    distilled = report["distill"]
    assert distilled["qat"] and distilled["size_ratio"] >= 10
    assert report["student"]["mode"] == "int8" and report["student"]["agreement"] > 0.8
    targets = {t["target"] for t in report["profile"]["targets"]}
    assert {"nucleo-l4r5zi", "nano-33-ble-sense", "esp32-s3-devkitc-1", "raspberry-pi-4",
            "pixel-4"} <= targets
    assert report["profile"]["totals"]["ram_source"] == "measured"
    for name in ("model_data.cc", "model_data.h", "op_resolver.h", "manifest.json"):
        assert (out / "student-int8" / "micro" / name).is_file()
    assert (out / "report.md").read_text().startswith("# edgedistill report")
    assert "nucleo-l4r5zi" in result.stdout


def test_quickstart_refuses_to_overwrite(quickstart):
    out, _ = quickstart
    before = sorted(p.name for p in out.iterdir())
    assert_clean_error(run("quickstart", "--out", out), str(out), "--force")
    assert sorted(p.name for p in out.iterdir()) == before


def test_records_are_valid_json_naming_the_final_paths(quickstart):
    out, _ = quickstart
    records = [out / "report.json", out / "distill" / "distill.json",
               out / "student-int8" / "conversion.json", out / "scratch-int8" / "conversion.json"]
    for record in records:
        assert ".partial" not in record.read_text(), record
        strict_json(record.read_text())
    report = strict_json((out / "report.json").read_text())
    assert Path(report["out_dir"]) == out
    assert Path(report["student"]["tflite_path"]).is_file()
    assert Path(report["micro"]["out_dir"]) == out / "student-int8" / "micro"
    assert Path(report["micro"]["model_path"]) == out / "student-int8" / "model.tflite"
    assert report["micro"]["parity"]["samples"] == 100
    assert report["micro"]["parity"]["top1_agreement"] >= 0.99
    assert Path(report["distill"]["student_path"]).is_file()
    assert Path(report["profile"]["model"]["path"]) == out / "student-int8" / "model.tflite"


def test_kill_9_during_quickstart_force_keeps_the_finished_run(quickstart, tmp_path):
    finished, _ = quickstart
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    child = subprocess.Popen(
        [sys.executable, "-m", "edgedistill.cli", "quickstart", "--out", str(out), "--force",
         "--epochs", "2", "--teacher-epochs", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".run.*.partial/.distill.partial/checkpoints/teacher-0")):
        assert child.poll() is None and time.monotonic() < deadline, "never got under way"
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert_clean_error(run("quickstart", "--out", out), "--force")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_each_stage_on_its_own(quickstart, tmp_path):
    out, _ = quickstart
    student = out / "distill" / "student.h5"
    # Fashion-MNIST, or digits where Debian's package is missing (the quickstart's fallback).
    data = json.loads((out / "report.json").read_text())["distill"]["data"]["name"]
    result = run("convert", student, "--data", data, "--out", tmp_path / "c",
                 "--mode", "float32")
    assert result.exit_code == 0, result.output
    assert "top-1 agreement" in result.stdout
    assert not (tmp_path / "c" / "micro").exists()  # no bundle of a float model
    result = run("convert", student, "--data", data, "--out", tmp_path / "i",
                 "--calibration-per-class", 5)
    assert result.exit_code == 0, result.output
    assert "50 samples: 5 per class" in result.stdout
    parity = json.loads((tmp_path / "i" / "micro" / "manifest.json").read_text())["parity"]
    assert (parity["inputs"], parity["samples"]) == ("given", 100)  # the test split's
    tflite = out / "student-int8" / "model.tflite"
    result = run("micro", tflite, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert "agrees (max diff" in result.stdout
    assert (tmp_path / "m" / "op_resolver.h").is_file()
    result = run("profile", tflite, "--target", "nucleo-l4r5zi", "--bundle", tmp_path / "m",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert report["totals"]["ram_bytes"] == manifest["arena"]["recommended_bytes"]
    result = run("profile", tflite, "--format", "md")
    assert result.exit_code == 0 and "|" in result.stdout


def test_help_explains_every_option():
    for command in ("distill", "convert", "micro", "profile", "quickstart"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "--" in result.stdout
    assert "--temperature" in run("distill", "--help").stdout


def test_targets_list_and_show():
    result = run("targets", "list")
    assert result.exit_code == 0 and "nucleo-l4r5zi" in result.stdout
    result = run("targets", "show", "nucleo-l4r5zi")
    assert result.exit_code == 0 and "datasheet" in result.stdout.lower()



def test_commands_on_a_tflite_do_not_import_tensorflow(tmp_path):
    # Importing TensorFlow costs seconds; help, targets, micro and profile never need it.
    model = mlperf_model("ad01_int8.tflite")
    code = (
        "import sys\n"
        "import click\n"
        "from edgedistill.cli import main\n"
        f"for args in ([], ['--help'], ['targets', 'list'], ['micro', {str(model)!r}, '--out', "
        f"{str(tmp_path / 'b')!r}], ['profile', {str(model)!r}, '--target', 'nucleo-l4r5zi']):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except (SystemExit, click.exceptions.NoArgsIsHelpError):\n"
        "        pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    assert (tmp_path / "b" / "manifest.json").exists()

# Bad input: one line, exit code 2, nothing written.


def test_missing_files(tmp_path):
    assert_clean_error(run("profile", tmp_path / "nope.tflite"), "nope.tflite")
    assert_clean_error(run("micro", tmp_path / "nope.tflite", "--out", tmp_path / "m"),
                       "nope.tflite")
    assert_clean_error(run("convert", tmp_path / "nope.h5", "--data", "digits", "--out",
                           tmp_path / "c"), "nope.h5")
    assert_clean_error(run("distill", "--teacher", tmp_path / "t.h5", "--student",
                           "student-cnn", "--data", "digits", "--out", tmp_path / "d"), "t.h5")
    assert_clean_error(run("convert", tmp_path / "nope.h5", "--data", tmp_path / "d.npz",
                           "--out", tmp_path / "c"), "d.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_files_that_are_not_models(tmp_path):
    text = tmp_path / "notes.tflite"
    text.write_text("these are my notes, not a model\n")
    assert_clean_error(run("profile", text), "notes.tflite")
    assert_clean_error(run("micro", text, "--out", tmp_path / "m"), "notes.tflite")
    data = mlperf_model("kws_ref_model.tflite").read_bytes()
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    assert_clean_error(run("profile", truncated), "cut.tflite")
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from edgedistill._tf import keras

    k = keras()
    folder = tmp_path_factory.mktemp("models")
    for name, classes in (("ten", 10), ("three", 3)):
        model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(),
                              k.layers.Dense(classes)])
        model.save(folder / f"{name}.h5")
    return folder


def test_teacher_and_student_output_shapes_differ(tiny_models, tmp_path):
    result = run("distill", "--teacher", tiny_models / "ten.h5", "--student",
                 tiny_models / "three.h5", "--data", "digits", "--out", tmp_path / "d")
    assert_clean_error(result, "output shapes differ")
    assert not (tmp_path / "d").exists()


def test_data_that_does_not_fit_the_model(tiny_models, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "small.npz", x_train=rng.random((20, 4, 4, 1)),
             y_train=rng.integers(0, 10, 20), x_test=rng.random((5, 4, 4, 1)),
             y_test=rng.integers(0, 10, 5))
    result = run("convert", tiny_models / "ten.h5", "--data", tmp_path / "small.npz",
                 "--out", tmp_path / "c")
    assert_clean_error(result, "small.npz", "(4, 4, 1)", "(8, 8, 1)")
    np.savez(tmp_path / "labels.npz", x_train=rng.random((20, 8, 8, 1)),
             y_train=rng.integers(0, 12, 20), x_test=rng.random((5, 8, 8, 1)),
             y_test=rng.integers(0, 3, 5))
    result = run("distill", "--teacher", tiny_models / "three.h5", "--student",
                 tiny_models / "three.h5", "--data", tmp_path / "labels.npz", "--out",
                 tmp_path / "d")
    assert_clean_error(result, "labels.npz", "3 outputs")
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_bundle_of_another_model(quickstart):
    out, _ = quickstart
    result = run("profile", mlperf_model("ad01_int8.tflite"), "--bundle",
                 out / "student-int8" / "micro")
    assert_clean_error(result, "manifest.json", "another model")


def test_unknown_target_lists_the_known_ones():
    tflite = mlperf_model("ad01_int8.tflite")
    result = run("profile", tflite, "--target", "pdp-11")
    assert_clean_error(result, "pdp-11", "nucleo-l4r5zi", "raspberry-pi-4")


def test_out_exists_and_is_not_empty(tiny_models, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for args in (
        ("convert", tiny_models / "ten.h5", "--data", "digits", "--out", out),
        ("micro", mlperf_model("ad01_int8.tflite"), "--out", out),
        ("distill", "--teacher", "teacher-mlp", "--student", "student-mlp", "--data", "digits",
         "--out", out),
    ):
        assert_clean_error(run(*args), str(out), "--force")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("option,value,fragment", [
    ("--loss", "nope", "nope: unknown distillation loss; known: "),
    ("--loss", "logits_distillation:temperature", "'temperature' in logits_distillation"),
    ("--loss", "logits_distillation:temperature=0", "temperature: must be a finite number"),
    ("--loss", "feature_distillation:teacher_layer_name=dense,student_layer_name=nope",
     "has no layer 'nope'"),
    ("--augment", "rotate", "rotate: unknown augmentation"),
    ("--augment", "shift:fraction=2", "shift fraction: must lie in"),
    ("--augment", ":fraction=2", "does not start with a name"),
])
def test_bad_losses_and_augmentations(tiny_models, tmp_path, option, value, fragment):
    result = run("distill", "--teacher", tiny_models / "ten.h5", "--student", "student-mlp",
                 "--data", "digits", "--out", tmp_path / "d", option, value, "--epochs", 1)
    assert_clean_error(result, fragment)
    assert not (tmp_path / "d").exists()


def test_distill_with_losses_augmentation_and_an_ensemble(tiny_models, tmp_path):
    result = run("distill", "-t", tiny_models / "ten.h5", "-t", tiny_models / "ten.h5",
                 "--teacher-weight", 1, "--teacher-weight", 3, "--student", "student-mlp",
                 "--data", "digits", "--out", tmp_path / "d", "--loss", "logits_mse",
                 "--loss", "rkd_angle", "--loss-weight", 1, "--loss-weight", 2,
                 "--augment", "shift:fraction=0.125", "--augment", "mixup", "--epochs", 2,
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "distillation gain" in result.stdout and "distill epoch 2/2" in result.stderr
    assert "distillation_loss" in result.stderr
    # An untrained teacher is flagged.
    assert "Warning: the teacher" in result.stderr
    record = json.loads((tmp_path / "d" / "distill.json").read_text())
    assert [a["class_name"] for a in record["augment"]] == ["Shift", "Mixup"]
    assert record["teacher"]["kind"] == "ensemble" and record["loss_weights"] == [1.0, 2.0]


def test_distill_modes_from_the_command_line(tiny_models, tmp_path):
    from edgedistill.cli import DISTILL_MODES
    from edgedistill.distill.run import MODES

    assert DISTILL_MODES == MODES
    result = run("distill", "--mode", "born-again", "--generations", 2, "--student",
                 "student-mlp", "--data", "digits", "--out", tmp_path / "ban", "--epochs", 1,
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "born-again mode" in result.stdout and "generation 1" in result.stdout
    assert "teacher (student from scratch)" in result.stdout
    assert "generation-1 epoch 1/1" in result.stderr

    result = run("distill", "-t", tiny_models / "ten.h5", "--student", "student-mlp",
                 "--data", "digits", "--out", tmp_path / "adv", "--mode", "adversarial",
                 "--adversary", "fgsm:epsilon=0.05", "--epochs", 1)
    assert result.exit_code == 0, result.output
    assert "under PGD-10" in result.stdout and "under FGSM" in result.stdout
    record = json.loads((tmp_path / "adv" / "distill.json").read_text())
    assert record["adversarial"]["adversary"]["epsilon"] == 0.05


@pytest.mark.parametrize("args,fragment", [
    (("--mode", "assistant"), "give at least one assistant"),
    (("--mode", "adversarial", "--adversary", "pgd:steps=-1"), "steps must be"),
    (("--adversary", "pgd"), "only --mode adversarial"),
    (("--mode", "data-free", "--synthetic-samples", 100), "has no BatchNormalization layer"),
])
def test_bad_mode_settings(tiny_models, tmp_path, args, fragment):
    result = run("distill", "-t", tiny_models / "ten.h5", "--student", "student-mlp",
                 "--data", "digits", "--out", tmp_path / "d", "--epochs", 1, *args)
    assert_clean_error(result, fragment)
    assert not (tmp_path / "d").exists()


def test_distill_without_a_teacher_needs_born_again(tmp_path):
    result = run("distill", "--student", "student-mlp", "--data", "digits", "--out",
                 tmp_path / "d")
    assert_clean_error(result, "only --mode born-again runs without one")
