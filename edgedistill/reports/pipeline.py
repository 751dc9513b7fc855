"""The report of ``edgedistill quickstart``: distillation, int8 conversion, profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.reports import Report
from edgedistill.reports.deploy import micro_report, pct
from edgedistill.reports.document import Column, Heading, Note, Table, demoted
from edgedistill.reports.profile import profile_report
from edgedistill.reports.training import distill_report

if TYPE_CHECKING:
    from edgedistill.pipeline import PipelineResult


def _int8_table(result: PipelineResult) -> Table:
    columns = (Column("model"), *(Column(n, numeric=True) for n in (
        "bytes", "Keras accuracy", "int8 accuracy", "agreement")))
    rows = [(name, f"{c.tflite_bytes:,}", pct(c.keras_accuracy), pct(c.tflite_accuracy),
             pct(c.agreement))
            for name, c in (("distilled student", result.student),
                            ("from-scratch student", result.scratch))]
    return Table(columns, rows)


def pipeline_report(result: PipelineResult) -> Report:
    """Every stage of the quickstart: the distillation, both students in int8, the
    distilled student's Micro bundle and its profile on every target, and each stage's
    seconds.

    Example:
        >>> report = pipeline_report(run_pipeline("quickstart"))
        >>> report.render("md").splitlines()[0]
        '# edgedistill report'
    """
    d = result.distill
    title = "edgedistill report"
    settings = (f"Data: {d.data['name']} ({d.data['train_samples']:,} train, "
                f"{d.data['val_samples']:,} validation, {d.data['test_samples']:,} test samples). "
                f"Losses {', '.join(x['class_name'] for x in d.losses)}, temperature "
                f"{d.temperature:g}, alpha {d.alpha:g}, {d.epochs} epochs, batch "
                f"{d.batch_size}, seed {d.seed}; both students start from the same weights "
                "and see the same batches.")
    seconds = Table(tuple(Column(name, numeric=True) for name in result.seconds),
                    [tuple(f"{s:.1f}" for s in result.seconds.values())])
    blocks = [Heading(title), Note(settings), *demoted(distill_report(d).blocks),
              Heading("int8 TFLite (full-integer), checked with LiteRT on the test split", 2),
              _int8_table(result), *demoted(micro_report(result.micro).blocks),
              *demoted(profile_report(result.profile).blocks),
              Heading("Seconds per stage", 2), seconds]
    return Report("pipeline", title, tuple(blocks), result.to_dict())
