"""The report of ``edgedistill flash``: what ran on the device, what it measured, and the
profile of the model on that target with the measurement beside the estimate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.reports import Report, combine
from edgedistill.reports.document import Facts, Heading, Note
from edgedistill.reports.profile import estimate_error_text, profile_report
from edgedistill.units import fmt_bytes, fmt_ms

if TYPE_CHECKING:
    from edgedistill.flash import FlashResult


def flash_report(result: FlashResult) -> Report:
    """The device's figures (or, on a dry run, the commands), then the target's profile.

    Example:
        >>> result = flash("kws.tflite", "raspberry-pi-4")  # doctest: +SKIP
        >>> print(flash_report(result).render("md"))  # doctest: +SKIP
    """
    title = f"{'Dry run of flash' if result.dry_run else 'Flash'}: {result.target} at " \
            f"{result.device}"
    facts = [("target", result.target), ("device", result.device), ("method", result.method)]
    m = result.measured
    if m is not None:
        facts += [
            ("runtime on the device", f"{m.version}, {m.threads} thread(s)"),
            ("latency, measured", ", ".join(
                f"{fmt_ms(value)} {name}" for name, value in (
                    ("median", m.median_ms), ("mean", m.mean_ms), ("p90", m.p90_ms),
                    ("p95", m.p95_ms), ("min", m.min_ms)) if value is not None)
             + f" ({m.runs} runs after {m.warmup} warm-up)"),
            ("latency, estimated", f"{fmt_ms(result.fit.latency_ms)}: "
                                   f"{estimate_error_text(result.estimate_error)}"),
        ]
        if result.peak_rss_bytes is not None:
            facts.append(("peak memory (RSS)", f"{fmt_bytes(result.peak_rss_bytes)}, of which "
                                               f"{fmt_bytes(result.model_rss_bytes or 0)} "
                                               "came with the model"))
    if result.arena_used_bytes is not None:
        facts.append(("tensor arena used on the board", fmt_bytes(result.arena_used_bytes)))
    if result.project_dir:
        facts.append(("firmware project", result.project_dir))
    if result.kept_dir:
        facts.append(("kept on the device", result.kept_dir))
    blocks = [Heading("On the device"), Facts(facts)]
    if result.dry_run:
        blocks.append(Note("Nothing was run. The commands, in order:\n\n" + "\n".join(
            c.shell() for c in result.commands)))
    device = Report("flash", "On the device", tuple(blocks), None)
    return combine("flash", title, {"device": device, "profile": profile_report(result.profile)},
                   data=result.to_dict())
