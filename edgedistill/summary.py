"""Readable summaries of stage results: rich tables for the terminal, Markdown for files."""

from __future__ import annotations

import math

from rich.table import Table

from edgedistill.units import fmt_bytes


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def distill_table(result) -> Table:
    """Teacher, the chain of students, and the student from scratch, side by side."""
    table = Table(title=f"Distillation on {result.data['name']} (test split)"
                  + ("" if result.mode == "standard" else f", {result.mode} mode"))
    robust = result.adversarial or {}
    columns = ["model", "parameters", "test accuracy"]
    if robust:
        columns.append("under attack")
    columns.append("s/epoch")
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")

    def row(name, params, accuracy, role=None, fit=None):
        cells = [name, params, _pct(accuracy)]
        if robust:
            cells.append(_pct(robust.get(f"{role}_accuracy")) if role else "")
        table.add_row(*cells, _epoch_seconds(result, fit) if fit else "")

    teacher_params = "—" if result.teacher_params is None else f"{result.teacher_params:,}"
    teacher_name = "teacher" if result.teacher["members"] else "teacher (student from scratch)"
    row(teacher_name, teacher_params, result.teacher_accuracy, "teacher")
    fits = [name for name in result.fits if name.startswith(("assistant-", "generation-"))]
    fits += ["reference"] if "reference" in result.fits else []
    for link, fit in zip(result.chain[:-1], fits, strict=True):
        row(f"{link['role']}: {link['name']}", f"{link['params']:,}", link["accuracy"], fit=fit)
    scheme = (result.compression or {}).get("scheme")
    qat = ", QAT)" if result.qat_scheme == "default" else f", {result.qat_scheme} QAT)"
    kind = "student (distilled" + (qat if result.qat else ", pruned)" if scheme == "prune"
                                   else ", clustered)" if scheme == "cluster" else ")")
    row(kind, f"{result.student_params:,}", result.student_accuracy, "student", "distill")
    if result.scratch_accuracy is not None:
        row("student (from scratch)", f"{result.student_params:,}", result.scratch_accuracy,
            "scratch", "scratch")
        gain = 100 * result.gain
        table.add_row("[bold]distillation gain[/]", "", f"[bold]{gain:+.1f} points[/]",
                      *[""] * (len(columns) - 3))
    if result.data_free:
        table.add_row("gap to real-data distillation", "",
                      f"{100 * result.data_free['gap']:.1f} points", *[""] * (len(columns) - 3))
    ratio = "" if result.size_ratio is None else f"{result.size_ratio:.0f}x fewer parameters · "
    losses = ", ".join(loss["class_name"] for loss in result.losses)
    augment = ", ".join(a["class_name"] for a in result.augment) or "none"
    attack = ""
    if robust:
        adversary = robust["adversary"]
        attack = f" · attack: {adversary['method']} epsilon={adversary['epsilon']:g}"
    tuned = ""
    if result.tuning:
        chosen = ", ".join(f"{k}={v:.3g}" for k, v in result.tuning["chosen"].items())
        tuned = f" · tuned ({len(result.tuning['trials'])} trials): {chosen}"
    pruned = ""
    if result.compression and result.compression["scheme"] == "prune":
        shown = ", ".join(f"{r['layer']} {100 * r['sparsity']:.0f}%"
                          for r in result.compressed_layers)
        pruned = f" · pruned: {shown}"
    elif result.compression:
        shown = ", ".join(f"{r['layer']} {r['distinct_values']}"
                          for r in result.compressed_layers)
        pruned = f" · distinct values: {shown}"
    if result.channel_pruning:
        shown = ", ".join(f"{r['layer']} {r['channels_before']}→{r['channels_after']}"
                          for r in result.channel_pruning["layers"])
        pruned += f" · channels: {shown}"
    table.caption = (
        f"{ratio}{losses} · alpha={result.alpha:g} · augment: {augment}{attack}{tuned}"
        f"{pruned} · {result.epochs} epochs · saved in {result.out_dir}"
    )
    return table


def _epoch_seconds(result, fit: str) -> str:
    record = result.fits.get(fit)
    return "" if record is None else f"{record['median_epoch_seconds']:.2f}"


def conversion_table(result) -> Table:
    """Keras vs .tflite accuracy and agreement on the test split."""
    table = Table(title=f"{result.mode} TFLite ({result.io_type} I/O): {result.tflite_path}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("size", fmt_bytes(result.tflite_bytes))
    table.add_row("Keras accuracy", _pct(result.keras_accuracy))
    table.add_row("TFLite accuracy (LiteRT)", _pct(result.tflite_accuracy))
    table.add_row("top-1 agreement", _pct(result.agreement))
    table.add_row("output difference, max / mean",
                  f"{result.max_abs_diff:.3g} / {result.mean_abs_diff:.3g}")
    table.add_row("test samples", str(result.test_samples))
    if result.calibration_source:
        table.add_row("calibration", f"{result.calibration_samples} samples: "
                                     f"{result.calibration_source}")
    report = result.quantization
    if report is not None and report.rows:
        worst = max(report.rows, key=lambda row: row.rmse_over_scale)
        table.add_row("largest op error (int8 steps)",
                      f"{worst.rmse_over_scale:.2f} ({worst.layer}); "
                      f"{len(report.flagged) or 'no'} op(s) flagged")
    return table


_SHOWN_OPS = 8


def quantization_table(report) -> Table:
    """Each op's int8 error, worst first (at most 8 rows), and the measured remedies."""
    table = Table(title=f"int8 error of each op on {report.debug_samples} test samples "
                        f"(flagged: {report.criterion})")
    for column in ("op", "layer", "error (int8 steps, rms)", ""):
        table.add_column(column, justify="right" if column.startswith("error") else "left")
    worst = sorted(report.rows, key=lambda row: -row.rmse_over_scale)[:_SHOWN_OPS]
    for row in worst:
        mark = "[bold red]flagged[/]" if row in report.flagged else ""
        table.add_row(row.op, row.layer, f"{row.rmse_over_scale:.2f}", mark)
    if report.remedies:
        table.caption = "\n".join(report.remedies)
    return table


def _check(check) -> str:
    """TFLM against LiteRT in a few words: the verdict, the largest difference, top-1."""
    if not all(math.isfinite(d) for d in check.max_diffs):
        return "[bold red]DISAGREES (outputs differ in shape or are not finite)[/]"
    diff = max(check.max_diffs, default=0.0)
    top1 = "" if check.top1_agreement is None else \
        f", same class on {_pct(check.top1_agreement)}"
    text = f"max diff {diff:g}{top1}, {check.samples} inputs"
    return f"agrees ({text})" if check.passed else f"[bold red]DISAGREES ({text})[/]"


def micro_table(bundle) -> Table:
    """What a TensorFlow Lite Micro bundle holds."""
    table = Table(title=f"TFLite Micro bundle: {bundle.out_dir}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    arena = bundle.arena
    table.add_row("model", fmt_bytes(bundle.model_bytes))
    table.add_row("operators", ", ".join(bundle.ops))
    table.add_row("arena measured", f"{arena.measured_bytes:,} B")
    if arena.head_bytes is not None:
        table.add_row("  planned (activations, scratch)", f"{arena.head_bytes:,} B")
        table.add_row("  persistent", f"{arena.tail_bytes:,} B")
    table.add_row("arena margin", f"{arena.margin_bytes:,} B")
    table.add_row("arena to allocate", f"{arena.recommended_bytes:,} B")
    table.add_row("TFLM run vs LiteRT", _check(bundle.check))
    return table


def pipeline_tables(result) -> list:
    """Everything ``quickstart`` prints at the end."""
    from edgedistill.profile.report import to_rich

    stages = Table(title="Seconds per stage")
    for name in result.seconds:
        stages.add_column(name, justify="right")
    stages.add_row(*(f"{s:.1f}" for s in result.seconds.values()))
    return [
        distill_table(result.distill),
        _int8_table(result),
        *to_rich(result.profile),
        stages,
        f"Reports: {result.out_dir}/report.json, {result.out_dir}/report.md",
    ]


def _int8_table(result) -> Table:
    table = Table(title="int8 TFLite (full-integer), checked with LiteRT on the test split")
    for column in ("model", "bytes", "Keras accuracy", "int8 accuracy", "agreement"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, conv in (("distilled student", result.student), ("from-scratch student",
                                                                 result.scratch)):
        table.add_row(name, f"{conv.tflite_bytes:,}", _pct(conv.keras_accuracy),
                      _pct(conv.tflite_accuracy), _pct(conv.agreement))
    return table


def pipeline_markdown(result) -> str:
    """report.md of ``quickstart``: distillation, conversion, profile."""
    from edgedistill.profile.report import to_markdown

    d, s, b = result.distill, result.student, result.scratch
    lines = [
        "# edgedistill report",
        "",
        f"Data: {d.data['name']} ({d.data['train_samples']} train, {d.data['val_samples']} "
        f"validation, {d.data['test_samples']} test samples).",
        "",
        "## Distillation",
        "",
        "| model | parameters | test accuracy (Keras) | int8 test accuracy | int8 bytes |",
        "|---|---:|---:|---:|---:|",
        f"| teacher | {d.teacher_params:,} | {_pct(d.teacher_accuracy)} | — | — |",
        f"| student, distilled{' + QAT' if d.qat else ''} | {d.student_params:,} | "
        f"{_pct(d.student_accuracy)} | {_pct(s.tflite_accuracy)} | {s.tflite_bytes:,} |",
        f"| student, from scratch | {d.student_params:,} | {_pct(d.scratch_accuracy)} | "
        f"{_pct(b.tflite_accuracy)} | {b.tflite_bytes:,} |",
        "",
        f"Losses {', '.join(x['class_name'] for x in d.losses)}, temperature "
        f"{d.temperature:g}, alpha {d.alpha:g}, {d.epochs} epochs, batch {d.batch_size}, seed "
        f"{d.seed}; both students start from the same weights and see the same batches. "
        f"Distillation gain: {100 * d.gain:+.1f} points.",
        f"int8 vs Keras top-1 agreement: {_pct(s.agreement)} (distilled), "
        f"{_pct(b.agreement)} (from scratch).",
        "",
        "## Seconds per stage",
        "",
        "| " + " | ".join(result.seconds) + " |",
        "|" + "---:|" * len(result.seconds),
        "| " + " | ".join(f"{v:.1f}" for v in result.seconds.values()) + " |",
        "",
        # The profile is a section of this report, so its headings go one level down.
        *("#" + line if line.startswith("#") else line
          for line in to_markdown(result.profile).splitlines()),
    ]
    return "\n".join(lines) + "\n"


_RECIPE_COLUMNS = ("stage", "distilled", "from scratch", "gain", "size", "details")


def _recipe_rows(result) -> list[tuple[str, ...]]:
    """One row per stage: the student's and the baseline's accuracy, size and details."""
    rows = []
    for stage in result.stages:
        if stage.distill is not None:
            d = stage.distill
            rows.append((stage.stage.name, _pct(d.student_accuracy), _pct(d.scratch_accuracy),
                         _gain(d.student_accuracy, d.scratch_accuracy),
                         f"{d.student_params:,} params", _compression_details(d)))
        else:
            s, b = stage.student, stage.scratch
            arena = f"; TFLM arena {fmt_bytes(stage.micro.arena.recommended_bytes)}" \
                if stage.micro else ""
            elements = sum(k["elements"] for k in stage.kernels) or 1
            zeros = sum(k["zeros"] * k["elements"] for k in stage.kernels) / elements
            distinct = max((k["distinct_values"] for k in stage.kernels), default=0)
            rows.append((stage.stage.name, _pct(s.tflite_accuracy),
                         _pct(b.tflite_accuracy if b else None),
                         _gain(s.tflite_accuracy, b.tflite_accuracy if b else None),
                         fmt_bytes(s.tflite_bytes),
                         f"{s.mode}; {_pct(s.agreement)} agreement with Keras{arena}; kernels "
                         f"{_pct(zeros)} zeros, at most {distinct} values per channel"))
    return rows


def _gain(student: float, scratch: float | None) -> str:
    return "—" if scratch is None else f"{100 * (student - scratch):+.1f}"


def _compression_details(d) -> str:
    details = []
    if d.channel_pruning:
        details.append("channels " + ", ".join(
            f"{r['channels_before']}→{r['channels_after']}" for r in d.channel_pruning["layers"]))
    if d.compression and d.compression["scheme"] == "prune":
        details.append("sparsity " + ", ".join(f"{100 * r['sparsity']:.0f}%"
                                               for r in d.compressed_layers))
    elif d.compression:
        details.append("distinct values " + ", ".join(str(r["distinct_values"])
                                                      for r in d.compressed_layers))
    if d.qat:
        details.append("QAT" if d.qat_scheme == "default" else f"QAT, {d.qat_scheme}")
    return "; ".join(details) or f"{d.epochs} epochs"


def recipe_table(result) -> Table:
    """Every stage of a recipe: distilled student beside the same recipe without a teacher."""
    table = Table(title=f"Recipe {result.recipe.name} (test split)")
    for column in _RECIPE_COLUMNS:
        table.add_column(column, justify="left" if column in ("stage", "details") else "right")
    for row in _recipe_rows(result):
        table.add_row(*row)
    table.caption = (f"from scratch: the same stages without a teacher, from the same weights "
                     f"· saved in {result.out_dir} ({result.seconds / 60:.1f} min)")
    return table


def recipe_markdown(result) -> str:
    """report.md of a staged recipe."""
    lines = [f"# Recipe {result.recipe.name}", ""]
    if result.recipe.description:
        lines += [result.recipe.description, ""]
    lines += ["| " + " | ".join(_RECIPE_COLUMNS) + " |",
              "|---|" + "---:|" * (len(_RECIPE_COLUMNS) - 2) + "---|"]
    lines += ["| " + " | ".join(row) + " |" for row in _recipe_rows(result)]
    lines += ["", "Accuracies on the test split. From scratch: the same stages without a "
              "teacher (hard labels only), from the same initial weights and on the same "
              "batches.", "", f"The product: {result.student_path}"]
    return "\n".join(lines) + "\n"


def recipes_table(recipes) -> Table:
    """The built-in recipes: name, stages and what each is for."""
    table = Table(title="Built-in recipes (edgedistill distill --recipe NAME -t ... -s ... "
                  "-d ... -o ...)")
    for column in ("name", "stages", "what it does"):
        table.add_column(column)
    for recipe in recipes:
        table.add_row(recipe.name, " → ".join(s.name for s in recipe.stages),
                      recipe.description)
    return table
