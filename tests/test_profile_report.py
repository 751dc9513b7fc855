"""profile_model on real models and targets, and its JSON / Markdown / rich / HTML renderings."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
from conftest import mlperf_model
from rich.console import Console

from edgedistill import targets
from edgedistill.errors import EdgeDistillError
from edgedistill.profile import RAM_ESTIMATED, RAM_MEASURED, profile_model
from edgedistill.profile.analysis import analyze
from edgedistill.profile.latency import estimate_latency
from edgedistill.reports.profile import MAX_OPS_SHOWN, profile_report
from edgedistill.tflite_file import read_tflite
from edgedistill.units import fmt_bytes, fmt_macs, fmt_ms


@pytest.fixture(scope="module")
def nucleo():
    return targets.get("nucleo-l4r5zi")


def _render(report) -> str:
    console = Console(record=True, width=160, color_system=None)
    for r in profile_report(report).renderables():
        console.print(r)
    return console.export_text()


def to_json(report) -> str:
    return profile_report(report).render("json")


def to_markdown(report) -> str:
    return profile_report(report).render("md")


def test_profile_kws_on_nucleo(nucleo):
    path = mlperf_model("kws_ref_model.tflite")
    report = profile_model(path, [nucleo])
    assert report.model.size_bytes == report.totals.flash_bytes == path.stat().st_size
    assert report.model.inputs[0].shape == (1, 49, 10, 1)
    assert report.model.inputs[0].dtype == "int8" and report.model.inputs[0].scale > 0
    assert report.model.outputs[0].shape == (1, 12)
    assert report.totals.macs == 2656768
    # No measured arena: RAM is the planned activation arena (equal to TFLM's head).
    assert report.totals.ram_source == RAM_ESTIMATED
    assert report.totals.ram_bytes == report.totals.activation_arena_bytes == 16000
    (fit,) = report.targets
    assert fit.target == "nucleo-l4r5zi" and fit.kind == "mcu" and fit.title == nucleo.title
    expected = estimate_latency(nucleo, analyze(read_tflite(path)))
    assert fit.latency_ms == pytest.approx(expected.total_ms)
    assert fit.per_op_ms == expected.per_op_ms
    assert fit.flash_headroom_bytes == (
        nucleo.flash_bytes - nucleo.reserved_flash_bytes - path.stat().st_size)
    assert fit.ram_headroom_bytes == nucleo.ram_bytes - nucleo.reserved_ram_bytes - 16000
    assert fit.fits and fit.verdict == "fits"


def test_measured_arena_is_used(nucleo):
    report = profile_model(mlperf_model("kws_ref_model.tflite"), [nucleo], arena_bytes=30000)
    assert report.totals.ram_source == RAM_MEASURED and report.totals.ram_bytes == 30000
    assert report.totals.activation_arena_bytes == 16000
    assert report.targets[0].ram_headroom_bytes == (
        nucleo.ram_bytes - nucleo.reserved_ram_bytes - 30000)


def _with_memory(target, name=None, **memory):
    """``target`` with other capacities (and name); they live in ``target.memory``."""
    changed = dataclasses.replace(target, memory=dataclasses.replace(target.memory, **memory))
    return dataclasses.replace(changed, name=name) if name else changed


@pytest.mark.parametrize("flash, ram, verdict", [
    (10**9, 10**9, "fits"),
    (10**9, 500, "too big: RAM"),
    (1000, 10**9, "too big: flash"),
    (1000, 500, "too big: flash, RAM"),
])
def test_verdicts(nucleo, flash, ram, verdict):
    small = _with_memory(nucleo, name="tiny", flash_bytes=flash, sram_bytes=ram,
                         reserved_flash_bytes=0, reserved_ram_bytes=0)
    (fit,) = profile_model(mlperf_model("ad01_int8.tflite"), [small]).targets
    assert fit.verdict == verdict
    assert fit.fits_flash == (flash >= 276976) and fit.fits_ram == (ram >= 768)


def test_reserved_bytes_count(nucleo):
    size = mlperf_model("ad01_int8.tflite").stat().st_size
    exact = _with_memory(nucleo, flash_bytes=size + 100, reserved_flash_bytes=100)
    (fit,) = profile_model(mlperf_model("ad01_int8.tflite"), [exact]).targets
    assert fit.fits_flash and fit.flash_headroom_bytes == 0
    over = _with_memory(exact, reserved_flash_bytes=101)
    (fit,) = profile_model(mlperf_model("ad01_int8.tflite"), [over]).targets
    assert not fit.fits_flash and fit.flash_headroom_bytes == -1


def test_all_builtin_targets_keep_order():
    chosen = targets.list_targets()
    report = profile_model(mlperf_model("vww_96_int8.tflite"), chosen)
    assert [f.target for f in report.targets] == [t.name for t in chosen]
    assert all(f.latency_ms > 0 for f in report.targets)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "100", True])
def test_bad_arena(nucleo, bad):
    with pytest.raises(EdgeDistillError, match="arena_bytes"):
        profile_model(mlperf_model("ad01_int8.tflite"), [nucleo], arena_bytes=bad)


def test_bad_model(tmp_path, nucleo):
    with pytest.raises(EdgeDistillError, match="no such file"):
        profile_model(tmp_path / "missing.tflite", [nucleo])
    (tmp_path / "notes.tflite").write_text("hello")
    with pytest.raises(EdgeDistillError, match="not a TFLite model"):
        profile_model(tmp_path / "notes.tflite", [nucleo])


def test_json_round_trip(nucleo):
    report = profile_model(mlperf_model("pretrainedResnet_quant.tflite"), [nucleo])
    d = json.loads(to_json(report))
    assert d == json.loads(json.dumps(report.to_dict()))
    assert d["totals"]["macs"] == report.totals.macs
    assert d["totals"]["ram_source"] == "estimated"
    assert d["targets"][0]["verdict"] == "fits" and d["targets"][0]["fits"] is True
    assert len(d["ops"]) == len(d["targets"][0]["per_op_ms"]) == 16
    assert d["memory"]["peak_bytes"] == 49152
    assert d["model"]["inputs"][0]["shape"] == [1, 32, 32, 3]


def test_markdown(nucleo):
    tiny = _with_memory(nucleo, name="tiny", sram_bytes=1000, reserved_ram_bytes=0)
    md = to_markdown(profile_model(mlperf_model("kws_ref_model.tflite"), [nucleo, tiny]))
    assert md.startswith("# Profile of kws_ref_model.tflite")
    assert "| nucleo-l4r5zi | mcu |" in md and "| fits |" in md
    assert "| tiny | mcu |" in md and "too big: RAM" in md
    assert "2.66 MMAC" in md and "15.6 KiB" in md
    assert md.count("| CONV_2D |") == 5 and "| SOFTMAX |" in md


def test_rich_and_markdown_cap_long_op_lists(nucleo):
    report = profile_model(mlperf_model("vww_96_int8.tflite"), [nucleo])
    assert len(report.ops) > MAX_OPS_SHOWN
    text = _render(report)
    assert f"top {MAX_OPS_SHOWN} of {len(report.ops)} operators by MACs" in text
    assert "nucleo-l4r5zi" in text and "7.49 MMAC" in text
    # The op with the fewest MACs (the RESHAPE/SOFTMAX tail) is the one left out.
    shown = sum(1 for line in text.splitlines() if re.match(r"\s*\d+\s+[A-Z_0-9]+\s+int8 ", line))
    assert shown == MAX_OPS_SHOWN
    md = to_markdown(report)
    assert f"top {MAX_OPS_SHOWN} of {len(report.ops)}" in md


def test_rich_without_targets():
    text = _render(profile_model(mlperf_model("ad01_int8.tflite"), []))
    assert "Targets" not in text and "FULLY_CONNECTED" in text and "264 kMAC" in text


def test_units():
    assert fmt_bytes(0) == "0 B" and fmt_bytes(-2048) == "-2 KiB"
    assert fmt_bytes(5 * 1024 ** 3) == "5 GiB" and fmt_bytes(-2100) == "-2.1 KiB"
    assert fmt_macs(1_500_000_000) == "1.5 GMAC" and fmt_macs(999) == "999 MAC"
    assert fmt_ms(0.5) == "0.5 ms" and fmt_ms(12.345) == "12.3 ms" and fmt_ms(0.0123) == "0.012 ms"
    assert fmt_ms(0.000048) == "0.048 µs" and fmt_ms(0) == "0 ms"


def test_profiling_and_rendering_do_not_import_tensorflow():
    path = mlperf_model("kws_ref_model.tflite")
    code = (
        "import sys\n"
        "from edgedistill import targets\n"
        "from edgedistill.profile import profile_model\n"
        "from edgedistill.reports.comparison import comparison_report\n"
        "from edgedistill.reports.profile import profile_report\n"
        f"r = profile_model({str(path)!r}, targets.list_targets())\n"
        "for report in (profile_report(r), comparison_report([r, r])):\n"
        "    report.renderables()\n"
        "    for fmt in ('table', 'json', 'md', 'html'):\n"
        "        report.render(fmt)\n"
        "assert 'matplotlib' in sys.modules, 'the HTML drew no plot'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
