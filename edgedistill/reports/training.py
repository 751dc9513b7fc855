"""Reports of distillation: one run, a staged recipe, and the list of built-in recipes.

The results are imported for type checking only, so these reports can be
rendered from records read back without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from edgedistill.reports import Report
from edgedistill.reports.deploy import pct
from edgedistill.reports.document import Cell, Column, Heading, Note, Table
from edgedistill.units import fmt_bytes

if TYPE_CHECKING:
    from edgedistill.distill import DistillResult
    from edgedistill.recipes import Recipe, RecipeResult


def _student_kind(result: DistillResult) -> str:
    scheme = (result.compression or {}).get("scheme")
    if result.qat:
        qat = "QAT" if result.qat_scheme == "default" else f"{result.qat_scheme} QAT"
        return f"student (distilled, {qat})"
    return {"prune": "student (distilled, pruned)",
            "cluster": "student (distilled, clustered)"}.get(scheme, "student (distilled)")


def _epoch_seconds(result: DistillResult, fit: str | None) -> str:
    record = result.fits.get(fit) if fit else None
    return "" if record is None else f"{record['median_epoch_seconds']:.2f}"


def _attack_columns(robust: dict) -> list[str]:
    if not robust:
        return []
    names = [f"under {_attack_name(robust['evaluation'])}"]
    return names + ([f"under {_attack_name(robust['adversary'])}"]
                    if robust["training_attack"] else [])


def _attack_name(adversary: dict) -> str:
    # Adversary.label from the record: reports never import the distill stage (TensorFlow).
    return "FGSM" if adversary["method"] == "fgsm" else f"PGD-{adversary['steps']}"


def _distill_rows(result: DistillResult, robust: dict) -> list[tuple]:
    attacks = [robust, robust["training_attack"]] if robust else []
    attacks = [figures for figures in attacks if figures]

    def row(name, params, accuracy, role=None, fit=None):
        attacked = [pct(figures.get(f"{role}_accuracy")) if role else ""
                    for figures in attacks]
        return (name, params, pct(accuracy), *attacked, _epoch_seconds(result, fit))

    teacher_params = "—" if result.teacher_params is None else f"{result.teacher_params:,}"
    teacher = "teacher" if result.teacher["members"] else "teacher (student from scratch)"
    rows = [row(teacher, teacher_params, result.teacher_accuracy, "teacher")]
    fits = [name for name in result.fits if name.startswith(("assistant-", "generation-"))]
    fits += ["reference"] if "reference" in result.fits else []
    for link, fit in zip(result.chain[:-1], fits, strict=True):
        rows.append(row(f"{link['role']}: {link['name']}", f"{link['params']:,}",
                        link["accuracy"], fit=fit))
    rows.append(row(_student_kind(result), f"{result.student_params:,}",
                    result.student_accuracy, "student", "distill"))
    blank = [""] * (1 + len(_attack_columns(robust)))
    if result.scratch_accuracy is not None:
        rows.append(row("student (from scratch)", f"{result.student_params:,}",
                        result.scratch_accuracy, "scratch", "scratch"))
        rows.append((Cell("distillation gain", tone="strong"), "",
                     Cell(f"{100 * result.gain:+.1f} points", tone="strong"), *blank))
    if result.data_free:
        rows.append(("gap to real-data distillation", "",
                     f"{100 * result.data_free['gap']:.1f} points", *blank))
    return rows


def _distill_caption(result: DistillResult, robust: dict) -> str:
    parts = [] if result.size_ratio is None else [f"{result.size_ratio:.0f}x fewer parameters"]
    parts.append(", ".join(loss["class_name"] for loss in result.losses)
                 + f" · alpha={result.alpha:g}")
    parts.append("augment: " + (", ".join(a["class_name"] for a in result.augment) or "none"))
    if robust:
        parts.append(f"trained against {_attack_name(robust['adversary'])}, robustness "
                     f"measured with {_attack_name(robust['evaluation'])}, "
                     f"epsilon={robust['adversary']['epsilon']:g}")
    if result.tuning:
        chosen = ", ".join(f"{k}={v:.3g}" for k, v in result.tuning["chosen"].items())
        parts.append(f"tuned ({len(result.tuning['trials'])} trials): {chosen}")
    if result.compression and result.compression["scheme"] == "prune":
        parts.append("pruned: " + ", ".join(f"{r['layer']} {100 * r['sparsity']:.0f}%"
                                            for r in result.compressed_layers))
    elif result.compression:
        parts.append("distinct values: " + ", ".join(f"{r['layer']} {r['distinct_values']}"
                                                     for r in result.compressed_layers))
    if result.channel_pruning:
        parts.append("channels: " + ", ".join(
            f"{r['layer']} {r['channels_before']}→{r['channels_after']}"
            for r in result.channel_pruning["layers"]))
    parts += [f"{result.epochs} epochs", f"saved in {result.out_dir}"]
    return " · ".join(parts)


def distill_report(result: DistillResult) -> Report:
    """Teacher, the chain of students, and the student from scratch, side by side, with
    the distillation gain and the settings.

    Example:
        >>> print(distill_report(distill("teacher-cnn", "student-cnn", "digits", "out"))
        ...       .render("md"))  # doctest: +SKIP
    """
    title = f"Distillation on {result.data['name']} (test split)" + (
        "" if result.mode == "standard" else f", {result.mode} mode")
    robust = result.adversarial or {}
    names = ["model", "parameters", "test accuracy", *_attack_columns(robust), "s/epoch"]
    columns = tuple(Column(n, numeric=n != "model") for n in names)
    table = Table(columns, _distill_rows(result, robust), caption=_distill_caption(result, robust))
    return Report("distill", title, (Heading(title), table), result.to_dict())


def _gain(student: float, scratch: float | None) -> str:
    return "—" if scratch is None else f"{100 * (student - scratch):+.1f}"


def _compression_details(d: DistillResult) -> str:
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


def _recipe_rows(result: RecipeResult) -> list[tuple[str, ...]]:
    """One row per stage: the student's and the baseline's accuracy, size and details."""
    rows = []
    for stage in result.stages:
        if stage.distill is not None:
            d = stage.distill
            rows.append((stage.stage.name, pct(d.student_accuracy), pct(d.scratch_accuracy),
                         _gain(d.student_accuracy, d.scratch_accuracy),
                         f"{d.student_params:,} params", _compression_details(d)))
            continue
        s, b = stage.student, stage.scratch
        arena = f"; TFLM arena {fmt_bytes(stage.micro.arena.recommended_bytes)}" \
            if stage.micro else ""
        elements = sum(k["elements"] for k in stage.kernels) or 1
        zeros = sum(k["zeros"] * k["elements"] for k in stage.kernels) / elements
        distinct = max((k["distinct_values"] for k in stage.kernels), default=0)
        rows.append((stage.stage.name, pct(s.tflite_accuracy),
                     pct(b.tflite_accuracy if b else None),
                     _gain(s.tflite_accuracy, b.tflite_accuracy if b else None),
                     fmt_bytes(s.tflite_bytes),
                     f"{s.mode}; {pct(s.agreement)} agreement with Keras{arena}; kernels "
                     f"{pct(zeros)} zeros, at most {distinct} values per channel"))
    return rows


def recipe_report(result: RecipeResult) -> Report:
    """Every stage of a recipe: the distilled student beside the same stages without a
    teacher, and where the product is.

    Example:
        >>> print(recipe_report(run_recipe(recipes.get("qad"), "out")).render("md"))
    """
    title = f"Recipe {result.recipe.name} (test split)"
    columns = tuple(Column(n, numeric=n not in ("stage", "details"))
                    for n in ("stage", "distilled", "from scratch", "gain", "size", "details"))
    table = Table(columns, _recipe_rows(result),
                  caption=f"saved in {result.out_dir} ({result.seconds / 60:.1f} min)")
    blocks = [Heading(title)]
    if result.recipe.description:
        blocks.append(Note(result.recipe.description))
    blocks += [table, Note("From scratch: the same stages without a teacher (hard labels "
                           "only), from the same initial weights and on the same batches."),
               Note(f"The product: {result.student_path}")]
    return Report("recipe", title, tuple(blocks), result.to_dict())


def recipes_report(recipes: Iterable[Recipe]) -> Report:
    """The recipes: name, stages and what each is for.

    Example:
        >>> from edgedistill import recipes
        >>> r = recipes_report([recipes.get(n) for n in recipes.builtin_recipes()])
    """
    recipes = tuple(recipes)
    title = "Recipes"
    table = Table((Column("name", wrap=False), Column("stages"), Column("what it does")),
                  [(r.name, " → ".join(s.name for s in r.stages), r.description)
                   for r in recipes])
    return Report("recipes", title, (
        Heading(title), Note("Run one with: edgedistill distill --recipe NAME -t TEACHER "
                             "-s STUDENT -d DATA -o OUT"), table), [r.to_dict() for r in recipes])
