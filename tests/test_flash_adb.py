"""flash over adb: the commands it builds, and the benchmark_model logs it reads.

No phone is attached here, so the adb path is checked by its dry run (every
command, quoted as adb's shell receives it) and by parsing logs in the two
formats benchmark_model prints: builds since 2023 (``INFO:`` prefixes,
percentiles, peak memory by periodic monitoring) and older ones (mean only).
Their layout follows the tool's own code (tensorflow/lite/tools/benchmark:
``BenchmarkLoggingListener::OnBenchmarkEnd`` and the ``Stat`` line of
``stats_calculator``).
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from conftest import mlperf_model, strict_json
from hypothesis import given, settings
from hypothesis import strategies as st
from report_checks import assert_matches_schema

from edgedistill.cli import main
from edgedistill.errors import EdgeDistillError
from edgedistill.flash import flash
from edgedistill.flash.adb import check_serial, diagnose_adb, parse_benchmark_log
from edgedistill.reports.flash import flash_report

MODEL = mlperf_model("kws_ref_model.tflite")

LOG_2024 = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [50]
INFO: Min warmup runs: [10]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/edgedistill.a8Kq2xPz/model.tflite]
INFO: Use xnnpack: [1]
INFO: Report the peak memory footprint: [1]
INFO: Loaded model /data/local/tmp/edgedistill.a8Kq2xPz/model.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
VERBOSE: Replacing 13 out of 13 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 \
partitions for subgraph 0.
INFO: The input model file size (MB): 0.053936
INFO: Initialized session in 3.412ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if \
exceeding 150 seconds.
INFO: count=3117 first=412 curr=149 min=141 max=412 avg=157.2 std=12 p5=146 median=153 p95=172

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if \
exceeding 150 seconds.
INFO: count=6402 first=151 curr=148 min=139 max=503 avg=152.9 std=9 p5=144 median=150 p95=165

INFO: Inference timings in us: Init: 3412, First inference: 412, Warmup (avg): 157.2, \
Inference (avg): 152.9
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only \
APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at \
your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=2.85938 overall=3.125
INFO: Overall peak memory footprint (MB) via periodic monitoring: 6.20312
"""

LOG_2020 = """\
STARTING!
Min num runs: [50]
Min runs duration (seconds): [1]
Num threads: [4]
Graph: [/data/local/tmp/edgedistill.Q2w9/model.tflite]
Use xnnpack: [1]
Loaded model /data/local/tmp/edgedistill.Q2w9/model.tflite
The input model file size (MB): 0.053936
Initialized session in 4.12ms.
Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if \
exceeding 150 seconds.
count=2890 first=530 curr=160 min=152 max=530 avg=172.4 std=21

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if \
exceeding 150 seconds.
count=6121 first=166 curr=158 min=150 max=611 avg=162.3 std=13

Inference timings in us: Init: 4120, First inference: 530, Warmup (avg): 172.4, \
Inference (avg): 162.3
Note: as the benchmark tool itself affects memory footprint, the following is only \
APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at \
your discretion.
Peak memory footprint (MB): init=2.41016 overall=2.99219
"""

LOG_FAILED = """\
INFO: STARTING!
INFO: Graph: [/data/local/tmp/edgedistill.a8Kq2xPz/model.tflite]
ERROR: Could not open '/data/local/tmp/edgedistill.a8Kq2xPz/model.tflite'.
ERROR: Benchmarking failed.
"""


def test_a_current_log_gives_median_p95_and_memory():
    f = parse_benchmark_log(LOG_2024)
    assert (f["runs"], f["warmup"]) == (6402, 3117)
    assert (f["median_ms"], f["mean_ms"], f["min_ms"], f["p95_ms"], f["p90_ms"]) == \
        (0.150, 0.1529, 0.139, 0.165, None)
    assert f["model_rss_bytes"] == round(3.125 * 2**20)
    assert f["peak_rss_bytes"] == round(6.20312 * 2**20)


def test_an_older_log_gives_the_mean_and_no_median():
    f = parse_benchmark_log(LOG_2020)
    assert (f["runs"], f["warmup"], f["median_ms"], f["mean_ms"], f["min_ms"]) == \
        (6121, 2890, None, 0.1623, 0.150)
    assert f["model_rss_bytes"] == round(2.99219 * 2**20) and f["peak_rss_bytes"] is None


def test_a_run_of_equal_times_and_a_failed_run():
    f = parse_benchmark_log("count=5 curr=200(all same)\n")
    assert (f["runs"], f["mean_ms"], f["min_ms"], f["median_ms"]) == (5, 0.2, 0.2, None)
    with pytest.raises(EdgeDistillError, match=r"printed no timings; its last line: ERROR: "
                                               r"Benchmarking failed\."):
        parse_benchmark_log(LOG_FAILED)
    with pytest.raises(EdgeDistillError, match="no timings; its last line: \\(nothing\\)"):
        parse_benchmark_log("")


@pytest.mark.parametrize("junk", ["count=5 min=1e999999 avg=x", "count=1 avg=--3",
                                  "count=99999999999999999999 min=1 avg=1", "\x00" * 100])
def test_a_garbled_log_is_a_clean_error_or_a_figure(junk):
    try:
        f = parse_benchmark_log(junk)
    except EdgeDistillError as exc:
        assert "\n" not in str(exc)
        return
    assert f["runs"] >= 0 and 0 <= f["mean_ms"] < float("inf") and 0 <= f["min_ms"] < 1e9


def test_adb_errors_say_what_to_do():
    assert "accept the USB debugging prompt" in diagnose_adb("error: device unauthorized.")
    assert "--device SERIAL" in diagnose_adb("error: more than one device/emulator")
    assert "adb devices" in diagnose_adb("adb: device 'XYZ' not found")
    assert diagnose_adb("something else") is None
    with pytest.raises(EdgeDistillError, match="not an adb serial"):
        check_serial("-s; reboot")


def test_dry_run_builds_every_adb_command(tmp_path):
    hostile = tmp_path / "my model;reboot.tflite"
    shutil.copy(MODEL, hostile)
    printed = []
    result = flash(hostile, "pixel-8", device="R58M12ABC", dry_run=True, runs=20, warmup=3,
                   echo=printed.append)
    argvs = [c.argv for c in result.commands]
    assert all(a[:4] == ("adb", "-s", "R58M12ABC", a[3]) for a in argvs)
    assert [a[3] for a in argvs] == ["shell", "push", "shell", "shell", "shell", "shell"]
    assert argvs[1][4] == str(hostile)  # the local path is one argument, never a shell word
    run = argvs[4][4]
    assert run.startswith("/data/local/tmp/benchmark_model --graph=/data/local/tmp/")
    for flag in ("--num_threads=4", "--use_xnnpack=true", "--num_runs=20", "--warmup_runs=3"):
        assert flag in run
    assert argvs[-1][4].startswith("rm -rf /data/local/tmp/edgedistill.")
    assert result.measured is None and "adb -s R58M12ABC push" in "\n".join(printed)
    assert_matches_schema("flash", strict_json(flash_report(result).render("json")))


def test_a_local_benchmark_model_is_pushed_and_made_executable(tmp_path):
    tool = tmp_path / "android_aarch64_benchmark_model"
    tool.write_bytes(b"\x7fELF")
    result = flash(MODEL, "pixel-4", dry_run=True, benchmark_model=str(tool))
    argvs = [c.argv for c in result.commands]
    assert argvs[0][:2] == ("adb", "shell")  # no -s: the only device attached
    pushes = [a for a in argvs if a[1] == "push"]
    assert [p[2] for p in pushes] == [str(MODEL), str(tool)]
    assert any(a[2].startswith("chmod 755 ") for a in argvs if a[1] == "shell")


def test_cli_dry_run_over_adb():
    result = CliRunner().invoke(main, ["flash", str(MODEL), "--target", "pixel-8", "--device",
                                       "emulator-5554", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "adb -s emulator-5554 push" in result.output
    assert "--use_xnnpack=true" in result.output


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("count=minavgdp5median9510.e-+ \n\tx"), max_size=200))
def test_any_log_is_a_clean_error_or_sane_figures(text):
    try:
        f = parse_benchmark_log(text)
    except EdgeDistillError as exc:
        assert "\n" not in str(exc)
        return
    assert f["runs"] >= 0 and f["warmup"] >= 0
    for key in ("median_ms", "mean_ms", "min_ms", "p95_ms"):
        assert f[key] is None or 0 <= f[key] < float("inf"), (key, f[key])


@pytest.mark.parametrize("figures, fragment", [
    ({"runtime": "r", "version": "1", "threads": 1, "warmup": 0, "runs": 3, "min_ms": -1.0,
      "median_ms": 2.0}, "impossible figures"),
    ({"runtime": "r", "version": "1", "threads": 1, "warmup": 0, "runs": 3, "min_ms": 1.0,
      "median_ms": float("nan")}, "impossible figures"),
    ({"runtime": "r", "version": "1", "threads": 1, "warmup": 0, "runs": 0, "min_ms": 1.0,
      "median_ms": 1.0}, "impossible figures"),
    ({"runtime": "r", "version": "1", "threads": 1, "warmup": 0, "runs": 3, "min_ms": 1.0},
     "incomplete"),
    ({"runtime": "r", "threads": 1}, "incomplete")])
def test_figures_a_device_cannot_mean_are_refused(figures, fragment):
    from edgedistill.flash import _measurement

    with pytest.raises(EdgeDistillError, match=f"^pi: .*{fragment}"):
        _measurement(figures, "pi")
