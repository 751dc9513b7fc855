"""Reports of the deployment stages: a conversion (with its int8 error per op) and a
TensorFlow Lite Micro bundle, and of the ``convert`` command, which makes both.

The results are imported for type checking only: reporting on a bundle read
back from its record needs no TensorFlow.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from edgedistill.reports import Report, combine
from edgedistill.reports.document import Cell, Column, Facts, Heading, Note, Table
from edgedistill.units import fmt_bytes

if TYPE_CHECKING:
    from edgedistill.convert import ConversionResult
    from edgedistill.convert.debug import QuantizationDebugReport
    from edgedistill.micro import MicroBundle
    from edgedistill.micro.check import RunCheck

# The quantization table shows the worst ops; the JSON has every op.
SHOWN_OPS = 8


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal, or a dash when there is none.

    Example:
        >>> pct(0.9512), pct(None)
        ('95.1%', '—')
    """
    return "—" if x is None else f"{100 * x:.1f}%"


def conversion_report(result: ConversionResult) -> Report:
    """Keras against .tflite accuracy and agreement on the test split, with the op whose
    int8 error is largest, and the table of the worst ops when some are flagged.

    Example:
        >>> print(conversion_report(convert("student.h5", "digits", "out")).render("md"))
    """
    title = f"{result.mode} TFLite ({result.io_type} I/O): {result.tflite_path}"
    rows = [
        ("size", fmt_bytes(result.tflite_bytes)),
        ("Keras accuracy", pct(result.keras_accuracy)),
        ("TFLite accuracy (LiteRT)", pct(result.tflite_accuracy)),
        ("top-1 agreement", pct(result.agreement)),
        ("output difference, max / mean",
         f"{result.max_abs_diff:.3g} / {result.mean_abs_diff:.3g}"),
        ("test samples", str(result.test_samples)),
    ]
    if result.calibration_source:
        rows.append(("calibration",
                     f"{result.calibration_samples} samples: {result.calibration_source}"))
    report = result.quantization
    if report is not None and report.rows:
        worst = max(report.rows, key=lambda row: row.rmse_over_scale)
        rows.append(("largest op error (int8 steps)",
                     Cell(f"{worst.rmse_over_scale:.2f} ({worst.layer}); "
                          f"{len(report.flagged) or 'no'} op(s) flagged",
                          tone="bad" if report.flagged else "")))
    blocks = [Heading(title), Facts(rows)]
    if report is not None and report.flagged:
        blocks += _quantization_blocks(report)
    return Report("conversion", title, tuple(blocks), result.to_dict())


def _quantization_blocks(report: QuantizationDebugReport) -> list:
    columns = (Column("op", wrap=False), Column("layer"),
               Column("error (int8 steps, rms)", numeric=True), Column(""))
    worst = sorted(report.rows, key=lambda row: -row.rmse_over_scale)[:SHOWN_OPS]
    rows = [(row.op, row.layer, f"{row.rmse_over_scale:.2f}",
             Cell("flagged", tone="bad") if row in report.flagged else "") for row in worst]
    title = (f"int8 error of each op on {report.debug_samples} test samples "
             f"(flagged: {report.criterion})")
    return [Table(columns, rows, title=title), *(Note(remedy) for remedy in report.remedies)]


def quantization_report(report: QuantizationDebugReport) -> Report:
    """Each op's int8 error, worst first (at most :data:`SHOWN_OPS` rows), and the remedies
    measured for the flagged ones.

    Example:
        >>> quantization_report(failure.details).render("table")  # doctest: +SKIP
    """
    title = "int8 quantization error"
    return Report("quantization", title, (Heading(title), *_quantization_blocks(report)),
                  report.to_dict())


def _parity(check: RunCheck) -> Cell:
    """TFLM against LiteRT in a few words: the verdict, the largest difference, top-1."""
    if not all(math.isfinite(d) for d in check.max_diffs):
        return Cell("DISAGREES (outputs differ in shape or are not finite)", tone="bad")
    diff = max(check.max_diffs, default=0.0)
    top1 = "" if check.top1_agreement is None else \
        f", same class on {pct(check.top1_agreement)}"
    text = f"max diff {diff:g}{top1}, {check.samples} inputs"
    return Cell(f"agrees ({text})", tone="good") if check.passed else \
        Cell(f"DISAGREES ({text})", tone="bad")


def micro_report(bundle: MicroBundle) -> Report:
    """What a TensorFlow Lite Micro bundle holds: model, operators, the measured arena and
    its parts, and whether TFLM's outputs agree with LiteRT's.

    Example:
        >>> print(micro_report(write_micro_bundle("kws.tflite", "out")).render("table"))
    """
    title = f"TFLite Micro bundle: {bundle.out_dir}"
    arena = bundle.arena
    rows = [("model", fmt_bytes(bundle.model_bytes)), ("operators", ", ".join(bundle.ops)),
            ("arena measured", f"{arena.measured_bytes:,} B")]
    if arena.head_bytes is not None:
        rows += [("  planned (activations, scratch)", f"{arena.head_bytes:,} B"),
                 ("  persistent", f"{arena.tail_bytes:,} B")]
    rows += [("arena margin", f"{arena.margin_bytes:,} B"),
             ("arena to allocate", f"{arena.recommended_bytes:,} B"),
             ("TFLM run vs LiteRT", _parity(bundle.check))]
    return Report("micro", title, (Heading(title), Facts(rows)), bundle.to_dict())


def convert_command_report(result: ConversionResult, bundle: MicroBundle | None) -> Report:
    """What ``edgedistill convert`` made: the conversion and, for the integer modes, the
    Micro bundle (``null`` in the JSON when none was written).

    Example:
        >>> convert_command_report(result, None).to_dict()["micro"] is None
        True
    """
    return combine("convert", f"Conversion to {result.mode} TFLite",
                   {"conversion": conversion_report(result),
                    "micro": None if bundle is None else micro_report(bundle)})
