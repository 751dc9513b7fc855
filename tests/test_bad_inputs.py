"""Every bad input the command line refuses: one line, exit code 2, nothing written.

The catalogue below is the README's table of bad inputs (``## When things go
wrong``); a test keeps the two in step.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO_ROOT, mlperf_model

from edgedistill.cli import main

KWS = "{mlperf}/kws_ref_model.tflite"
DISTILL = ("distill", "--teacher", "teacher-mlp", "--student", "student-mlp", "--data",
           "digits", "--out", "{g}/out", "--epochs", "1")
CONVERT = ("convert", "{g}/ten.h5", "--data", "digits", "--out", "{g}/out")

# (what the user did wrong, the command, a fragment the one-line message must hold)
CASES = [
    # .tflite files
    ("model file missing", ("profile", "{g}/nope.tflite"), "nope.tflite: "),
    ("model is a directory", ("profile", "{g}/folder.tflite"), "folder.tflite"),
    ("model is a text file", ("profile", "{g}/notes.tflite"), "notes.tflite"),
    ("model is empty", ("profile", "{g}/empty.tflite"), "empty.tflite"),
    ("model is truncated", ("profile", "{g}/cut.tflite"), "cut.tflite"),
    ("model name holds a newline", ("profile", "{g}/two\nlines.tflite"), "two\\nlines.tflite"),
    ("micro of a text file", ("micro", "{g}/notes.tflite", "--out", "{g}/out"), "notes.tflite"),
    ("micro of a truncated model", ("micro", "{g}/cut.tflite", "--out", "{g}/out"),
     "cut.tflite"),
    # targets
    ("unknown target", ("profile", KWS, "--target", "pdp-11"), "pdp-11"),
    ("target YAML alias bomb", ("profile", KWS, "--target", "{g}/bomb.yaml"),
     "aliases expand to more than"),
    ("target YAML syntax error", ("profile", KWS, "--target", "{g}/broken.yaml"),
     "broken.yaml"),
    ("target field of the wrong type", ("profile", KWS, "--target", "{g}/wrongtype.yaml"),
     "clock_hz"),
    ("target show of an unknown name", ("targets", "show", "vax-780"), "vax-780"),
    # flash
    ("flash to a target that cannot be flashed", ("flash", KWS, "--target", "host"),
     "no flash: section"),
    ("flash to a device named like an option",
     ("flash", KWS, "--target", "raspberry-pi-4", "--device", "-oProxyCommand=x", "--dry-run"),
     "cannot start with '-'"),
    ("flash of a text file", ("flash", "{g}/notes.tflite", "--target", "raspberry-pi-4",
                              "--dry-run"), "notes.tflite"),
    # bundles and manifests
    ("bundle without manifest", ("profile", KWS, "--bundle", "{g}/bundle-empty"),
     "manifest.json: no such file"),
    ("manifest is a directory", ("profile", KWS, "--bundle", "{g}/bundle-dir"),
     "not a readable JSON manifest"),
    ("manifest is not JSON", ("profile", KWS, "--bundle", "{g}/bundle-text"),
     "not a readable JSON manifest"),
    ("manifest arena is 1e999", ("profile", KWS, "--bundle", "{g}/bundle-inf"),
     "arena.recommended_bytes"),
    ("manifest arena is negative", ("profile", KWS, "--bundle", "{g}/bundle-negative"),
     "arena.recommended_bytes"),
    ("manifest of another model", ("profile", KWS, "--bundle", "{g}/bundle-other"),
     "another model"),
    # data
    ("data file missing", (*CONVERT[:2], "--data", "{g}/nope.npz", *CONVERT[4:]), "nope.npz"),
    ("data is not an archive", (*CONVERT[:2], "--data", "{g}/text.npz", *CONVERT[4:]),
     "text.npz"),
    ("data archive truncated", (*CONVERT[:2], "--data", "{g}/cut.npz", *CONVERT[4:]),
     "cut.npz"),
    ("data with zero samples", (*CONVERT[:2], "--data", "{g}/zero.npz", *CONVERT[4:]),
     "zero.npz"),
    ("data holding NaN", (*CONVERT[:2], "--data", "{g}/nan.npz", *CONVERT[4:]), "NaN"),
    ("data holding infinity", (*CONVERT[:2], "--data", "{g}/inf.npz", *CONVERT[4:]),
     "inf.npz"),
    ("data without labels", (*CONVERT[:2], "--data", "{g}/nolabels.npz", *CONVERT[4:]),
     "y_train"),
    ("data of another input shape", (*CONVERT[:2], "--data", "{g}/small.npz", *CONVERT[4:]),
     "(4, 4, 1)"),
    ("unknown dataset name", (*DISTILL[:5], "--data", "imagenet", *DISTILL[7:]), "imagenet"),
    ("Fashion-MNIST folder missing",
     (*DISTILL[:5], "--data", "fashion-mnist:{g}/nowhere", *DISTILL[7:]), "nowhere"),
    # Keras models
    ("Keras model file missing", ("convert", "{g}/nope.h5", "--data", "digits", "--out",
                                  "{g}/out"), "nope.h5"),
    ("Keras model is a text file", ("convert", "{g}/notes.h5", "--data", "digits", "--out",
                                    "{g}/out"), "notes.h5"),
    ("unknown zoo student", (*DISTILL[:3], "--student", "resnet-9000", *DISTILL[5:]),
     "resnet-9000"),
    ("teacher file missing", ("distill", "--teacher", "{g}/nope.h5", *DISTILL[3:]), "nope.h5"),
    # numbers
    ("temperature infinite", (*DISTILL, "--temperature", "inf"), "temperature"),
    ("temperature NaN", (*DISTILL, "--temperature", "nan"), "temperature"),
    ("temperature zero", (*DISTILL, "--temperature", "0"), "temperature"),
    ("learning rate NaN", (*DISTILL, "--learning-rate", "nan"), "learning-rate"),
    ("learning rate negative", (*DISTILL, "--learning-rate", "-1"), "learning-rate"),
    ("teacher learning rate infinite", (*DISTILL, "--teacher-learning-rate", "inf"),
     "learning-rate"),
    ("alpha above 1", (*DISTILL, "--alpha", "1.5"), "--alpha"),
    ("zero epochs", (*DISTILL, "--epochs", "0"), "--epochs"),
    ("zero batch size", (*DISTILL, "--batch-size", "0"), "--batch-size"),
    ("zero patience", (*DISTILL, "--patience", "0"), "--patience"),
    ("negative teacher weight", (*DISTILL, "--teacher-weight", "-1"), "teacher weights"),
    ("teacher weights that do not match", (*DISTILL, "--teacher-weight", "1",
                                           "--teacher-weight", "2"), "2 weights for 1"),
    ("loss weight NaN", (*DISTILL, "--loss-weight", "nan"), "loss"),
    ("pruning sparsity above 1", (*DISTILL, "--prune", "1.5"), "sparsity: must lie in (0, 1)"),
    ("unknown pruning setting", (*DISTILL, "--prune", "sparsty=0.5"), "unknown setting"),
    ("2:4 pruning written backwards", (*DISTILL, "--prune", "m_by_n=4:2"), "need 0 < m < n"),
    ("pruning together with QAT", (*DISTILL, "--prune", "0.5", "--qat"), "prune with qat"),
    ("one cluster per kernel", (*DISTILL, "--cluster", "1"), "a whole number from 2 to 256"),
    ("channel pruning of every channel", (*DISTILL, "--prune-channels", "1"),
     "channel pruning fraction: must lie in (0, 1)"),
    ("zero calibration samples per class", (*CONVERT, "--calibration-per-class", "0"),
     "--calibration-per-class"),
    ("calibration file is text", (*CONVERT, "--calibration", "{g}/notes.npy"), "notes.npy"),
    ("calibration of the wrong shape", (*CONVERT, "--calibration", "{g}/small.npy"),
     "small.npy: inputs have shape (4, 4, 1)"),
    ("calibration holds NaN", (*CONVERT, "--calibration", "{g}/nan.npy"),
     "nan.npy: x holds NaN or infinity"),
    ("labels file missing", ("micro", KWS, "--out", "{g}/out", "--labels", "{g}/nope.txt"),
     "nope.txt: no such file"),
    ("labels file not UTF-8", ("micro", KWS, "--out", "{g}/out", "--labels", "{g}/latin1.txt"),
     "latin1.txt: not UTF-8 text"),
    ("labels of the wrong count", ("micro", KWS, "--out", "{g}/out", "--labels",
                                   "{g}/three.txt"), "labels: 3 given, but output 0"),
    ("micro check data missing", ("micro", KWS, "--out", "{g}/out", "--data", "{g}/nope.npz"),
     "nope.npz"),
    # names and recipes
    ("unknown loss", (*DISTILL, "--loss", "nope"), "nope: unknown distillation loss"),
    ("unknown augmentation", (*DISTILL, "--augment", "rotate"), "rotate: unknown"),
    ("unknown distill mode", (*DISTILL, "--mode", "telepathy"), "--mode"),
    ("unknown conversion mode", (*CONVERT, "--mode", "int3"), "--mode"),
    ("I/O type the mode lacks", (*CONVERT, "--mode", "16x8", "--io", "uint8"),
     "--io uint8: mode 16x8 takes int16 or float32"),
    ("unknown report format", ("profile", KWS, "--format", "xml"), "--format"),
    ("recipe missing", ("distill", "--recipe", "{g}/nope.yaml"), "nope.yaml"),
    ("recipe with an unknown key", ("distill", "--recipe", "{g}/typo.yaml"),
     "unknown key 'temprature'"),
    ("recipe YAML alias bomb", ("distill", "--recipe", "{g}/bomb.yaml"),
     "aliases expand to more than"),
    ("unknown built-in recipe", ("distill", "--recipe", "prune-everything"),
     "no such recipe file or built-in recipe; built-in: "),
    ("recipe stage of an unknown kind", ("distill", "--recipe", "{g}/stagekind.yaml"),
     "stages[1]: expected one stage kind"),
    ("recipe stage sets the student", ("distill", "--recipe", "{g}/stagestudent.yaml"),
     "stages[2].distill.student: set it once"),
    ("recipes of an unknown name", ("recipes", "nope"), "recipe 'nope': unknown"),
    # command line
    ("unknown command", ("frobnicate",), "frobnicate"),
    ("unknown option", ("profile", KWS, "--colour"), "--colour"),
    ("missing argument", ("profile",), "MODEL"),
    ("missing required option", ("convert", "{g}/ten.h5", "--out", "{g}/out"), "--data"),
    # outputs
    ("--out is a file", (*CONVERT[:5], "{g}/afile"), "afile"),
    ("--out exists and is not empty", (*CONVERT[:5], "{g}/busy"), "--force"),
    ("quickstart --out is a file", ("quickstart", "--out", "{g}/afile"), "afile"),
    ("resume with nothing to resume", (*DISTILL, "--resume"), "nothing to resume"),
    ("--report file exists", ("profile", KWS, "--report", "{g}/three.txt"),
     "three.txt: exists; pass --force"),
    ("--report file exists, before distilling", (*DISTILL, "--report", "{g}/three.txt"),
     "three.txt: exists; pass --force"),
    ("--report of an unknown format", ("targets", "list", "--report", "{g}/r.pdf"),
     "the suffix says the format"),
    ("--bundle with several models", ("profile", KWS, KWS, "--bundle", "{g}/bundle-empty"),
     "--bundle: its arena was measured for one model"),
]


def _laughs(levels=9, width=9):
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]"
              for i in range(1, levels)]
    return "\n".join([*lines, f"name: *l{levels - 1}"]) + "\n"


def _bundle(folder: Path, manifest) -> None:
    folder.mkdir()
    if manifest is not None:
        (folder / "manifest.json").write_text(manifest)


@pytest.fixture(scope="module")
def garden(tmp_path_factory):
    """A folder of every kind of bad file, made once."""
    from edgedistill._tf import keras

    g = tmp_path_factory.mktemp("garden")
    kws = mlperf_model("kws_ref_model.tflite").read_bytes()
    (g / "folder.tflite").mkdir()
    (g / "notes.tflite").write_text("these are my notes, not a model\n")
    (g / "notes.h5").write_text("these are my notes, not a model\n")
    (g / "empty.tflite").write_bytes(b"")
    (g / "cut.tflite").write_bytes(kws[: len(kws) // 2])
    (g / "bomb.yaml").write_text(_laughs())
    (g / "broken.yaml").write_text("name: [unclosed\n")
    target = (REPO_ROOT / "targets" / "nucleo-l4r5zi.yaml").read_text()
    (g / "wrongtype.yaml").write_text(
        re.sub(r"clock_hz: \{value: \d+", "clock_hz: {value: fast", target))
    (g / "typo.yaml").write_text("temprature: 2\n")
    (g / "stagekind.yaml").write_text("stages:\n  - quantize: {}\n")
    (g / "stagestudent.yaml").write_text(
        "stages:\n  - distill: {}\n  - distill: {student: s.h5}\n")
    _bundle(g / "bundle-empty", None)
    (g / "bundle-dir").mkdir()
    (g / "bundle-dir" / "manifest.json").mkdir()
    _bundle(g / "bundle-text", "not json {")
    sha = {"sha256": "0" * 64}
    _bundle(g / "bundle-inf", '{"model": {"sha256": "00"}, "arena": {"recommended_bytes": 1e999}}')
    _bundle(g / "bundle-negative", json.dumps({"model": sha, "arena": {"recommended_bytes": -5}}))
    _bundle(g / "bundle-other", json.dumps({"model": sha, "arena": {"recommended_bytes": 4096}}))
    rng = np.random.default_rng(0)

    def npz(name, **arrays):
        split = {"x_train": rng.random((20, 8, 8, 1)), "y_train": rng.integers(0, 10, 20),
                 "x_test": rng.random((5, 8, 8, 1)), "y_test": rng.integers(0, 10, 5)}
        np.savez(g / name, **{k: v for k, v in {**split, **arrays}.items() if v is not None})

    npz("good.npz")
    (g / "cut.npz").write_bytes((g / "good.npz").read_bytes()[:300])
    (g / "text.npz").write_text("x_train,y_train\n1,2\n")
    npz("zero.npz", x_train=np.zeros((0, 8, 8, 1)), y_train=np.zeros(0, int))
    x = rng.random((20, 8, 8, 1))
    x[3, 2, 2, 0] = np.nan
    npz("nan.npz", x_train=x)
    npz("inf.npz", x_test=np.full((5, 8, 8, 1), np.inf))
    npz("nolabels.npz", y_train=None)
    npz("small.npz", x_train=rng.random((20, 4, 4, 1)), x_test=rng.random((5, 4, 4, 1)))
    (g / "latin1.txt").write_bytes("café\nthé\n".encode("latin-1"))
    (g / "three.txt").write_text("yes\nno\nmaybe\n")
    (g / "notes.npy").write_text("these are my notes, not inputs\n")
    np.save(g / "small.npy", rng.random((5, 4, 4, 1)))
    np.save(g / "nan.npy", x)
    k = keras()
    k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(),
                  k.layers.Dense(10)]).save(g / "ten.h5")
    (g / "afile").write_text("mine")
    (g / "busy").mkdir()
    (g / "busy" / "keep.txt").write_text("mine")
    return g


def _listing(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("what", "args", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_writes_nothing(garden, what, args, fragment):
    mlperf = mlperf_model("kws_ref_model.tflite").parent
    before = _listing(garden)
    result = CliRunner().invoke(
        main, [a.format(g=garden, mlperf=mlperf) for a in args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    assert fragment in lines[0], lines[0]
    assert _listing(garden) == before


def test_usage_errors_name_help():
    result = CliRunner().invoke(main, ["distill", "--epochs", "0"])
    assert result.exit_code == 2
    assert "--help" in result.stderr and "Usage:" not in result.stderr


def test_the_readme_lists_every_bad_input():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme[readme.index("## When things go wrong"):]
    missing = [what for what, _, _ in CASES if f"| {what} |" not in table]
    assert not missing, missing
    assert len(CASES) >= 50


def test_a_fault_of_ours_is_one_line_exit_1_with_the_traceback_in_a_log(monkeypatch, tmp_path):
    import edgedistill.targets

    def broken(*_, **__):
        raise ZeroDivisionError("a bug")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(edgedistill.targets, "list_targets", broken)
    result = CliRunner().invoke(main, ["targets", "list"], catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error (ZeroDivisionError: a bug)" in lines[0]
    log = Path(re.search(r"traceback is in (\S+);", lines[0])[1])
    assert log.parent == tmp_path / "edgedistill" / "logs"
    assert "Traceback (most recent call last)" in log.read_text()
