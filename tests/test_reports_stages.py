"""Reports of the training and deployment stages on real results: a tiny staged recipe
(distill, then int8 with a Micro bundle) on digits gives every kind but the profile, and
the quickstart's report is assembled from the same results."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import strict_json
from report_checks import (
    assert_matches_schema,
    assert_not_blank,
    check_every_format,
    screenshot,
)

from edgedistill import recipes, targets
from edgedistill.pipeline import PipelineResult
from edgedistill.profile import profile_model
from edgedistill.reports.deploy import (
    conversion_report,
    convert_command_report,
    micro_report,
    quantization_report,
)
from edgedistill.reports.pipeline import pipeline_report
from edgedistill.reports.training import distill_report, recipe_report

RECIPE = """\
teacher: teacher-mlp
teacher_epochs: 1
student: student-mlp
data: digits
epochs: 1
cache_dir: {cache}
stages:
  - distill: {{}}
  - convert: {{}}
"""


@pytest.fixture(scope="module")
def recipe_result(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipe")
    path = folder / "tiny.yaml"
    path.write_text(RECIPE.format(cache=folder / "cache"))
    return recipes.run_recipe(recipes.load(path), folder / "out")


def test_distill_report(recipe_result):
    result = recipe_result.stages[0].distill
    out = check_every_format(distill_report(result), "distill")
    assert out["md"].startswith("# Distillation on digits (test split)\n")
    assert "| **distillation gain** |" in out["md"]
    assert "student (from scratch)" in out["table"] and "s/epoch" in out["html"]


def test_conversion_micro_and_convert_reports(recipe_result):
    int8 = recipe_result.stages[1]
    out = check_every_format(conversion_report(int8.student), "conversion")
    assert "| top-1 agreement |" in out["md"] and "largest op error" in out["md"]
    assert int8.student.quantization is not None
    out = check_every_format(quantization_report(int8.student.quantization), "quantization")
    assert "| op | layer | error (int8 steps, rms) |" in out["md"]
    out = check_every_format(micro_report(int8.micro), "micro")
    assert "agrees (max diff" in out["md"] and 'class="good"' in out["html"]
    out = check_every_format(convert_command_report(int8.student, int8.micro), "convert")
    assert out["md"].startswith("# Conversion to int8 TFLite\n\n## int8 TFLite (int8 I/O)")
    assert "## TFLite Micro bundle" in out["md"]
    data = strict_json(out["json"])
    assert data["micro"]["arena"]["recommended_bytes"] == int8.micro.arena.recommended_bytes
    without = check_every_format(convert_command_report(int8.scratch, None), "convert")
    assert strict_json(without["json"])["micro"] is None


def test_recipe_report(recipe_result):
    out = check_every_format(recipe_report(recipe_result), "recipe")
    assert "| 1-distill |" in out["md"] and "| 2-int8 |" in out["md"]
    assert f"The product: {recipe_result.student_path}" in out["md"]
    # The recipe's own report.md is this report's Markdown.
    assert out["md"] == (Path(recipe_result.out_dir) / "report.md").read_text()


def test_pipeline_report_in_every_format_and_in_chromium(recipe_result, tmp_path):
    distilled, int8 = recipe_result.stages
    profile = profile_model(int8.student.tflite_path, targets.list_targets(),
                            arena_bytes=int8.micro.arena.recommended_bytes)
    result = PipelineResult(out_dir=recipe_result.out_dir, distill=distilled.distill,
                            student=int8.student, scratch=int8.scratch, micro=int8.micro,
                            profile=profile, seconds={"distill": 1.0, "total": 2.0})
    report = pipeline_report(result)
    out = check_every_format(report, "pipeline")
    assert out["md"].startswith("# edgedistill report\n")
    for heading in ("## Distillation on digits", "## int8 TFLite (full-integer)",
                    "## TFLite Micro bundle", "## Profile of model.tflite", "### Targets",
                    "## Seconds per stage"):
        assert heading in out["md"], heading
    data = strict_json(out["json"])
    assert data["profile"]["totals"]["ram_source"] == "measured"
    assert data["micro"]["out_dir"] == int8.micro.out_dir
    assert_not_blank(screenshot(out["html"], tmp_path))


def _cli(*args):
    from click.testing import CliRunner

    from edgedistill.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_the_training_and_deployment_commands_print_json_and_write_reports(recipe_result,
                                                                           tmp_path):
    distilled = recipe_result.stages[0].distill
    result = _cli("distill", "-t", distilled.teacher_paths[0], "-s", "student-mlp",
                  "-d", "digits", "-o", tmp_path / "d", "--epochs", "1", "--no-baseline",
                  "--cache-dir", tmp_path / "cache", "--format", "json",
                  "--report", tmp_path / "distill.md")
    assert_matches_schema("distill", strict_json(result.stdout))
    assert "▶ distill" in result.stderr and "▶" not in result.stdout
    assert (tmp_path / "distill.md").read_text().startswith("# Distillation on digits")
    result = _cli("convert", tmp_path / "d" / "student.h5", "-d", "digits", "-o",
                  tmp_path / "c", "--format", "json", "--report", tmp_path / "convert.html")
    data = strict_json(result.stdout)
    assert_matches_schema("convert", data)
    assert data["micro"]["out_dir"] == str(tmp_path / "c" / "micro")
    assert "TFLite Micro bundle" in (tmp_path / "convert.html").read_text()
    result = _cli("micro", tmp_path / "c" / "model.tflite", "-o", tmp_path / "m",
                  "--format", "md")
    assert result.stdout.startswith("# TFLite Micro bundle: ")
