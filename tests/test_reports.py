"""Reports without TensorFlow: profiles (one model and a comparison), targets and recipes,
in every format; the HTML in headless Chromium; --format and --report on the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import MLPERF_INT8, mlperf_model, strict_json
from report_checks import (
    assert_matches_schema,
    assert_not_blank,
    check_every_format,
    screenshot,
)

from edgedistill import recipes, targets
from edgedistill.cli import main
from edgedistill.errors import EdgeDistillError
from edgedistill.profile import profile_model
from edgedistill.reports import Report, combine, format_of
from edgedistill.reports.comparison import comparison_report
from edgedistill.reports.document import Cell, Column, Figure, Heading, Table
from edgedistill.reports.profile import profile_report
from edgedistill.reports.targets import target_report, targets_report
from edgedistill.reports.training import recipes_report


@pytest.fixture(autouse=True)
def _no_user_targets(monkeypatch):
    monkeypatch.delenv(targets.ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def profiles():
    """The four MLPerf Tiny int8 models on every built-in target."""
    chosen = targets.list_targets()
    return [profile_model(mlperf_model(name), chosen) for name in MLPERF_INT8]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_profile_report_in_every_format(profiles):
    report = profile_report(profiles[0])
    out = check_every_format(report, "profile")
    assert out["md"].startswith("# Profile of kws_ref_model.tflite\n")
    assert "## Targets" in out["md"] and "## Operators (ms on " in out["md"]
    assert "| nucleo-l4r5zi | mcu |" in out["md"]
    assert "Estimated latency per operator" in out["html"]
    assert "against each target&#x27;s limits" in out["html"]
    assert strict_json(out["json"]) == strict_json(json.dumps(profiles[0].to_dict()))


def test_a_profile_without_targets_plots_macs():
    report = profile_report(profile_model(mlperf_model("ad01_int8.tflite"), []))
    out = check_every_format(report, "profile")
    assert "Targets" not in out["md"] and "MACs per operator" in out["html"]


def test_comparison_report_in_every_format(profiles):
    report = comparison_report(profiles)
    out = check_every_format(report, "profile-comparison")
    data = strict_json(out["json"])
    assert [p["model"]["path"] for p in data] == [p.model.path for p in profiles]
    md = out["md"]
    assert md.startswith("# Comparison of 4 models\n")
    # The grid: one row per target, one column per model.
    header = next(line for line in md.splitlines() if line.startswith("| target |"))
    assert header.count("tflite") == 4
    for target in targets.list_targets():
        assert f"| {target.name} |" in md
    # Each model's own section, its targets being in the grid.
    assert md.count("## Profile of ") == 4 and "## Targets" not in md
    assert "Estimated latency of each model per target" in out["html"]


def test_comparison_tells_models_of_the_same_name_apart(profiles, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.tflite").write_bytes(
            mlperf_model("ad01_int8.tflite").read_bytes())
    chosen = targets.list_targets()[:2]
    report = comparison_report([profile_model(tmp_path / f / "model.tflite", chosen)
                                for f in ("a", "b")])
    md = report.render("md")
    assert "| a/model.tflite |" in md and "| b/model.tflite |" in md


def test_comparison_needs_the_same_targets(profiles):
    with pytest.raises(ValueError, match="same targets"):
        comparison_report([profiles[0], profile_model(mlperf_model("ad01_int8.tflite"), [])])
    with pytest.raises(ValueError, match="two profiles"):
        comparison_report(profiles[:1])


def test_failed_checks_are_red_with_their_reasons():
    chosen = [targets.get("nucleo-l4r5zi"), targets.get("nano-33-ble-sense")]
    kws = profile_model(mlperf_model("kws_ref_model.tflite"), chosen, max_latency_ms=250)
    # On the L4R5ZI KWS takes about 190 ms, on the nRF52840 twice that.
    assert [fit.ok for fit in kws.targets] == [True, False]
    md = profile_report(kws).render("md")
    assert "## Why not" in md
    assert "| nano-33-ble-sense | latency | estimate " in md and "over by" in md
    assert "| nucleo-l4r5zi | latency |" not in md
    ad01 = profile_model(mlperf_model("ad01_int8.tflite"), chosen, max_latency_ms=250)
    report = comparison_report([kws, ad01])
    (grid,) = [b for b in report.blocks if isinstance(b, Table) and b.title.startswith("Est")]
    nano = grid.rows[1]
    assert nano[0].text == "nano-33-ble-sense" and nano[1].text == "tflm-cmsis-nn-2020"
    assert (nano[2].tone, nano[2].note) == ("bad", "too slow")
    assert (nano[3].tone, nano[3].note) == ("", "")
    assert "too slow" in report.render("html") and "### Why not" in report.render("md")


def test_targets_reports_in_every_format():
    out = check_every_format(targets_report(targets.list_targets()), "targets")
    assert len(strict_json(out["json"])) == len(targets.list_targets())
    assert "| nucleo-l4r5zi | mcu |" in out["md"]
    out = check_every_format(target_report(targets.get("nucleo-l4r5zi")), "target")
    assert "ST STM32L4R5xx datasheet DS12023" in out["md"]
    assert "ST STM32L4R5xx datasheet DS12023" in out["html"]


def test_recipes_report_in_every_format():
    chosen = [recipes.get(name) for name in recipes.builtin_recipes()]
    out = check_every_format(recipes_report(chosen), "recipes")
    assert "| qad | 1-distill → 2-qat → 3-int8 |" in out["md"]


def test_html_opens_in_chromium_without_console_errors(profiles, tmp_path):
    pixels = screenshot(comparison_report(profiles).render("html"), tmp_path)
    assert_not_blank(pixels)


def test_the_plots_show_in_chromium(profiles, tmp_path):
    # A page of the figures alone, so that the screenshot is all plot.
    figures = tuple(b for b in comparison_report(profiles[:2]).blocks
                    if isinstance(b, Figure))[:1]
    page = Report("figures", "Figures", (Heading("Figures"), *figures), None).render("html")
    pixels = screenshot(page, tmp_path)
    assert_not_blank(pixels)
    # The bars of the first model, in their colour (#1f77b4), are drawn.
    blue = ((abs(pixels - (0x1F, 0x77, 0xB4)).sum(axis=1)) < 30).mean()
    assert blue > 0.002, blue


def test_cells_and_tables_are_checked():
    with pytest.raises(ValueError, match="tone"):
        Cell("x", tone="blue")
    with pytest.raises(ValueError, match="2 cells under 1 columns"):
        Table((Column("a"),), [("1", "2")])
    with pytest.raises(ValueError, match="format 'pdf'"):
        Report("x", "X", (), {}).render("pdf")


def test_markdown_escapes_and_combined_reports_nest():
    part = Report("part", "Part", (Heading("Part"), Table((Column("a|b"),), [("x|y\nz",)])),
                  {"x": 1})
    whole = combine("whole", "Whole", {"part": part, "missing": None})
    assert whole.to_dict() == {"part": {"x": 1}, "missing": None}
    md = whole.render("md")
    assert "# Whole\n\n## Part\n\n" in md and "| x\\|y<br>z |" in md and "| a\\|b |" in md


def test_report_file_format_comes_from_its_suffix():
    assert [format_of(f"r.{s}") for s in ("json", "md", "html", "HTM", "txt")] == [
        "json", "md", "html", "html", "table"]
    with pytest.raises(EdgeDistillError, match="--report r.pdf"):
        format_of("r.pdf")


def test_profile_compares_models_on_the_command_line(tmp_path):
    kws, ad01 = mlperf_model("kws_ref_model.tflite"), mlperf_model("ad01_int8.tflite")
    result = run("profile", kws, ad01, "--target", "all", "--format", "json",
                 "--report", tmp_path / "compare.html")
    assert result.exit_code == 0, result.output
    data = strict_json(result.stdout)
    assert_matches_schema("profile-comparison", data)
    assert [len(p["targets"]) for p in data] == [len(targets.list_targets())] * 2
    page = (tmp_path / "compare.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Comparison of 2 models" in page
    assert f"Report: {tmp_path / 'compare.html'}" in result.stderr
    result = run("profile", kws, ad01, "-t", "nucleo-l4r5zi")
    assert result.exit_code == 0 and "Estimated latency per target" in result.stdout


def test_report_files_are_never_silently_overwritten(tmp_path):
    kws = mlperf_model("kws_ref_model.tflite")
    out = tmp_path / "kws.md"
    assert run("profile", kws, "-t", "nucleo-l4r5zi", "--report", out).exit_code == 0
    before = out.read_text()
    assert before.startswith("# Profile of kws_ref_model.tflite")
    result = run("profile", kws, "--report", out)
    assert result.exit_code == 2 and "pass --force" in result.stderr and result.stdout == ""
    assert out.read_text() == before
    assert run("profile", kws, "--report", out, "--force").exit_code == 0
    assert out.read_text() != before  # every target now
    result = run("profile", kws, "--report", tmp_path / "kws.pdf")
    assert result.exit_code == 2 and "suffix" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kws.md"]


def test_one_bundle_belongs_to_one_model(tmp_path):
    kws, ad01 = mlperf_model("kws_ref_model.tflite"), mlperf_model("ad01_int8.tflite")
    result = run("profile", kws, ad01, "--bundle", tmp_path)
    assert result.exit_code == 2 and "--bundle" in result.stderr


@pytest.mark.parametrize("args, kind", [
    (("targets", "list"), "targets"),
    (("targets", "show", "pixel-4"), "target"),
    (("recipes",), "recipes"),
    (("recipes", "qad"), "recipes"),
])
def test_every_reporting_command_has_format_and_report(args, kind, tmp_path):
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    assert_matches_schema(kind, strict_json(result.stdout))
    for fmt, start in (("md", "# "), ("html", "<!DOCTYPE html>")):
        result = run(*args, "--format", fmt)
        assert result.exit_code == 0 and result.stdout.startswith(start), result.output
    result = run(*args, "--report", tmp_path / "r.html")
    assert result.exit_code == 0 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE")


def test_help_of_every_reporting_command_names_format_and_report():
    for command in (("distill",), ("convert",), ("micro",), ("profile",), ("quickstart",),
                    ("targets", "list"), ("targets", "show"), ("recipes",)):
        text = run(*command, "--help").stdout
        assert "--format" in text and "--report" in text, command
