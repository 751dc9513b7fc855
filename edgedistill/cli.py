"""The ``edgedistill`` command line: thin commands over the Python API.

Each command imports its stage only when it runs, so ``edgedistill --help``,
``targets`` and ``profile`` start without TensorFlow. Bad input ends with a
one-line ``Error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import click

from edgedistill.convert.modes import IO_TYPES, MODES
from edgedistill.errors import CheckFailed, EdgeDistillError
from edgedistill.reports import FORMATS

# edgedistill.distill.run.MODES, spelled out so that --help does not import TensorFlow.
DISTILL_MODES = ("standard", "born-again", "assistant", "data-free", "adversarial")

DATA_HELP = (
    "Dataset: 'digits' (scikit-learn's bundled 8x8 digits), 'fashion-mnist' "
    "(IDX files in /usr/share/datasets/fashion-mnist, or 'fashion-mnist:DIR'), or a .npz "
    "with x_train, y_train, x_test, y_test and optionally x_val, y_val."
)


class _OneLineError(click.ClickException):
    """What the user sees of any failure: ``Error: ...`` on one line, and an exit code."""

    def __init__(self, message: str, exit_code: int):
        # A file name can hold a newline; the message must stay one line.
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))
        self.exit_code = exit_code


def _usage_error(error: click.UsageError) -> _OneLineError:
    command = error.ctx.command_path if error.ctx else "edgedistill"
    message = " ".join(error.format_message().split())
    return _OneLineError(f"{message} (see '{command} --help')", 2)


class _Group(click.Group):
    """One error path for every command.

    Bad input (an :class:`EdgeDistillError`, a usage error) exits 2; a check
    of the result that failed, or a fault of ours, exits 1. A fault of ours
    leaves its traceback in a log file that the message names.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            raise _usage_error(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            raise _usage_error(e) from None
        except EdgeDistillError as e:
            raise _OneLineError(str(e), e.exit_code) from None
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as e:
            import traceback

            from edgedistill._fileio import save_log

            log = save_log("crash", traceback.format_exc())
            raise _OneLineError(
                f"internal error ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                f"the traceback is in {log}; please report it", 1) from None


_EPOCH_FIGURES = ("loss", "student_loss", "distillation_loss", "accuracy", "val_accuracy")


class _RichProgress:
    """Prints stage starts and epoch ends to stderr, so stdout stays parseable."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)

    def stage(self, name: str, detail: str = "") -> None:
        self.console.print(f"[bold cyan]▶ {name}[/] {detail}")

    def epoch(self, stage: str, epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
        shown = "  ".join(f"{k} {logs[k]:.4f}" for k in _EPOCH_FIGURES if k in logs)
        self.console.print(f"  {stage} epoch {epoch}/{epochs}  {shown}")


def _stdout():
    from rich.console import Console

    return Console(highlight=False)


def _labels(path: str | None) -> tuple[str, ...] | None:
    from edgedistill.data import load_labels

    return None if path is None else load_labels(path)


def _require_agreement(bundle) -> None:
    """Exit 1 when a written Micro bundle failed its own TFLM-vs-LiteRT check."""
    if not bundle.check.passed:
        raise CheckFailed(
            f"{bundle.out_dir}: written, but TFLM and LiteRT disagree on the model "
            f"({bundle.check.disagreement()}); do not deploy it before finding out why")


def _report_options(own_force: bool = False):
    """``--format`` and ``--report FILE`` for a command that reports, and ``--force``
    (replace an existing FILE) when the command has no ``--force`` of its own."""
    def decorate(f):
        options = [
            click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table",
                         show_default=True,
                         help="What stdout gets: a table, JSON (its schema: "
                              "edgedistill/reports/schema.json), Markdown, or a "
                              "self-contained HTML page with plots. Progress goes to stderr."),
            click.option("--report", "report_file", type=click.Path(dir_okay=False),
                         default=None, metavar="FILE",
                         help="Also write the report to FILE, in the format its suffix names: "
                              ".json, .md, .html or .txt (the table)."),
        ]
        if own_force:
            options.append(click.option("--force", is_flag=True,
                                        help="Replace --report FILE if it exists."))
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _check_report_file(path: str | None, force: bool) -> None:
    """Fails before any work when ``--report FILE`` cannot be written as asked."""
    if path is None:
        return
    from edgedistill.reports import format_of

    format_of(path)
    if Path(path).exists() and not force:
        raise EdgeDistillError(f"{path}: exists; pass --force to replace it")


def _show(report, fmt: str, path: str | None, force: bool) -> None:
    """Writes ``report`` to ``path`` (``--report``), then prints it in ``fmt`` on stdout.

    The file comes first: a reader that stops early (``| head``) must not cost it.
    """
    if path is not None:
        from edgedistill._fileio import write_text_atomic
        from edgedistill.reports import format_of

        write_text_atomic(path, report.render(format_of(path)), force=force)
        click.echo(f"Report: {path}", err=True)
    if fmt == "table":
        console = _stdout()
        for renderable in report.renderables():
            console.print(renderable)
    else:
        click.echo(report.render(fmt), nl=False)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgedistill")
def main():
    """Distill a large Keras teacher into a small int8 student and see what it costs
    on phones, Raspberry Pis and microcontrollers."""


def _distill_options(teacher_epochs: int = 30):
    """The training options of distill and quickstart (which trains a smaller teacher)."""
    options = [
        click.option("--temperature", type=float, default=2.0, show_default=True,
                     help="Softmax temperature of the default loss (logits_distillation)."),
        click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Weight of the hard-label loss; the distillation losses get 1 - alpha."),
        click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True,
                     help="Student epochs (distilled and from-scratch alike)."),
        click.option("--learning-rate", type=float, default=5e-3, show_default=True,
                     help="The student's Adam learning rate (peak of the schedule)."),
        click.option("--schedule", type=click.Choice(["cosine", "constant"]), default="cosine",
                     show_default=True, help="Learning-rate schedule over all epochs."),
        click.option("--patience", type=click.IntRange(min=1), default=None,
                     help="Stop after this many epochs without a better validation accuracy "
                          "[default: never]; the best epoch's weights are restored either way."),
        click.option("--teacher-epochs", type=click.IntRange(min=1), default=teacher_epochs,
                     show_default=True,
                     help="Most epochs for a zoo teacher (it stops early on the validation split "
                          "and keeps its best epoch)."),
        click.option("--teacher-learning-rate", type=float, default=1e-3, show_default=True,
                     help="A zoo teacher's Adam learning rate."),
        click.option("--teacher-augment", "teacher_augment", multiple=True, default=["shift"],
                     metavar="NAME[:KEY=VALUE,...]|none", show_default=True,
                     help="Augmentation a zoo teacher trains with on images; repeat to chain, "
                          "'none' for none. Add flip where mirror images keep their class."),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Batch size for training and evaluation."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seeds data splits, weights, batches and augmentation."),
    ]

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _specs(values, what):
    from edgedistill.specs import parse

    return [parse(value, what) for value in values]


@main.command()
@click.option("--teacher", "-t", "teachers", multiple=True,
              help="Teacher: a tf_keras or Keras 3 .keras/.h5 file, a SavedModel directory, a "
                   ".tflite, an .onnx, a .npy of precomputed outputs for the training rows, or a "
                   "zoo name (teacher-cnn, teacher-mlp) trained here first. Repeat for an "
                   "ensemble: its soft targets are averaged. Only --mode born-again runs "
                   "without one.")
@click.option("--teacher-weight", "teacher_weights", type=float, multiple=True,
              help="Ensemble weight of each --teacher, in order [default: equal].")
@click.option("--student", "-s",
              help="Student: a tf_keras .keras/.h5 file or a zoo name (student-cnn, "
                   "student-cnn3, tiny-cnn, student-mlp)."
                   " Required, here or in --recipe.")
@click.option("--data", "-d", help=DATA_HELP + " Required, here or in --recipe.")
@click.option("--out", "-o", type=click.Path(file_okay=False),
              help="Output directory (student.h5, scratch_student.h5, teacher.h5, distill.json)."
                   " Required, here or in --recipe.")
@click.option("--recipe", "-r", type=click.Path(dir_okay=False), default=None,
              help="A YAML file of distill settings (keys: the options' names, e.g. teacher, "
                   "student, data, out, losses, augment, epochs), or of stages (distill, "
                   "prune, QAT, convert) each continuing from the one before, or the name of "
                   "a built-in staged recipe (see 'edgedistill recipes'). Options given here "
                   "override the recipe's settings (a stage's own settings still win).")
@click.option("--loss", "-l", "losses", multiple=True, metavar="NAME[:KEY=VALUE,...]",
              help="A distillation loss; repeat to combine: logits_distillation, logits_mse, "
                   "feature_distillation, attention_transfer, rkd_distance, rkd_angle. Layer "
                   "losses name their layers, e.g. 'feature_distillation:teacher_layer_name="
                   "conv2d_2,student_layer_name=conv2d_1' [default: logits_distillation at "
                   "--temperature].")
@click.option("--loss-weight", "loss_weights", type=float, multiple=True,
              help="Weight of each --loss, in order [default: 1 each].")
@click.option("--mode", "-m", type=click.Choice(DISTILL_MODES), default="standard",
              show_default=True,
              help="standard: teacher -> student; born-again: generation k teaches generation "
                   "k+1 of the student's architecture (without --teacher, generation 0 is the "
                   "student from scratch); assistant: teacher -> --assistant(s) -> student; "
                   "data-free: distill on inputs synthesized from the teacher's BatchNorm "
                   "statistics (and report the gap to real data); adversarial: also match, on "
                   "inputs perturbed against the student (--adversary), the teacher's outputs "
                   "on the clean ones.")
@click.option("--generations", type=click.IntRange(min=1), default=2, show_default=True,
              help="born-again: generations to distill; the last is the student.")
@click.option("--assistant", "assistants", multiple=True,
              help="assistant: a zoo name or model file between teacher and student in size; "
                   "repeat for a chain, largest first.")
@click.option("--adversary", default=None, metavar="fgsm|pgd[:KEY=VALUE,...]",
              help="adversarial: the attack, e.g. 'pgd:epsilon=0.1,steps=5' (the default) or "
                   "'fgsm:epsilon=0.05'; inputs are in [0, 1].")
@click.option("--tune", type=click.IntRange(min=1), default=None, metavar="TRIALS",
              help="Choose --temperature, --alpha and (with several --loss) loss weights by "
                   "this many short trials scored on the validation split, then train with "
                   "the chosen values.")
@click.option("--tune-epochs", type=click.IntRange(min=1), default=None,
              help="Epochs per --tune trial [default: a quarter of --epochs].")
@click.option("--synthetic-samples", type=click.IntRange(min=1), default=None,
              help="data-free: inputs to synthesize [default: as many as the training split].")
@click.option("--augment", "-a", "augment", multiple=True, metavar="NAME[:KEY=VALUE,...]",
              help="Augment every batch, the same for teacher and student (consistent "
                   "teaching); repeat to chain: shift, flip, crop, mixup.")
@_distill_options()
@click.option("--qat/--no-qat", default=False, show_default=True,
              help="Quantization-aware training (tfmot) inside the distillation loop.")
@click.option("--prune", default=None, metavar="SPARSITY|KEY=VALUE,...",
              help="Prune the student (and the scratch baseline) with tfmot while it is "
                   "distilled: a sparsity such as 0.5, or settings: sparsity, "
                   "schedule=polynomial|constant, begin and end (fractions of training), "
                   "frequency, m_by_n=2:4, block=4x2. Not with --qat or --cluster.")
@click.option("--prune-channels", type=float, default=None, metavar="FRACTION",
              help="Before distilling, remove this fraction of the channels of every hidden "
                   "Conv and Dense layer of --student (a trained one), weakest L1 norm "
                   "first: a smaller dense student with fewer MACs, bytes and arena.")
@click.option("--cluster", default=None, metavar="CLUSTERS|KEY=VALUE,...",
              help="Cluster the student's kernels (and the scratch baseline's) with tfmot "
                   "while it is distilled: a count of distinct values per kernel such as 16, "
                   "or settings: clusters, init=kmeans_plus_plus|linear|density_based|random. "
                   "Not with --qat or --prune.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also train the student from scratch: same initial weights, same batches, "
                   "same budget, hard labels only.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where teacher outputs are cached [default: $EDGEDISTILL_CACHE_DIR or "
                   "~/.cache/edgedistill].")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists and is not empty, or an interrupted run's work, "
                   "and --report FILE.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run (crash, kill, Ctrl-C) of the same command: "
                   "finished fits are kept and the interrupted one goes on after its last "
                   "epoch, with the result the uninterrupted run would have given.")
@_report_options()
@click.pass_context
def distill(ctx, recipe, fmt, report_file, **options):
    """Train a student on a teacher's knowledge plus the hard labels.

    Reports teacher, distilled student and student-from-scratch accuracy on the test split.
    """
    from edgedistill.distill import distill as run_distill

    _check_report_file(report_file, options["force"])
    settings = _distill_settings(options)
    if recipe:
        from edgedistill import recipes

        loaded = recipes.load(recipe)
        if isinstance(loaded, recipes.Recipe):
            _run_staged_recipe(loaded.with_shared(_given_on_command_line(ctx, settings)),
                               options["force"], options["resume"], fmt, report_file)
            return
        settings = {**loaded, **_given_on_command_line(ctx, settings)}
    for name, option in (("student", "--student"), ("data", "--data"), ("out_dir", "--out")):
        if not settings.get(name):
            raise EdgeDistillError(f"{option}: required (on the command line or in --recipe)")
    result = run_distill(settings.pop("teacher", None), settings.pop("student"),
                         settings.pop("data"), settings.pop("out_dir"), **settings,
                         force=options["force"], resume=options["resume"],
                         progress=_RichProgress())
    from edgedistill.reports.training import distill_report

    _show(distill_report(result), fmt, report_file, options["force"])
    _warn(result.warnings)


def _run_staged_recipe(recipe, force: bool, resume: bool, fmt: str,
                       report_file: str | None) -> None:
    from edgedistill.recipes import run_recipe
    from edgedistill.reports.training import recipe_report

    result = run_recipe(recipe, force=force, resume=resume, progress=_RichProgress())
    _show(recipe_report(result), fmt, report_file, force)
    _warn(dict.fromkeys(w for stage in result.stages if stage.distill
                        for w in stage.distill.warnings))
    click.echo(f"Report: {result.out_dir}/report.md; the product: {result.student_path}",
               err=True)


# CLI parameter -> distill() argument, where the names differ.
_DISTILL_ARGUMENTS = {"teachers": "teacher", "out": "out_dir", "baseline": "scratch_baseline"}


def _distill_settings(options: dict) -> dict:
    """The command line's options as ``distill()`` arguments."""
    teachers = options["teachers"]
    values = {
        **{name: value for name, value in options.items() if name not in ("force", "resume")},
        "teachers": list(teachers) if len(teachers) != 1 else teachers[0],
        "losses": _specs(options["losses"], "--loss") or None,
        "loss_weights": list(options["loss_weights"]) or None,
        "augment": _specs(options["augment"], "--augment"),
        "teacher_augment": _teacher_augment(options["teacher_augment"]),
        "teacher_weights": list(options["teacher_weights"]) or None,
        "assistants": list(options["assistants"]),
    }
    return {_DISTILL_ARGUMENTS.get(name, name): value for name, value in values.items()}


def _teacher_augment(values) -> list:
    return [] if list(values) == ["none"] else _specs(values, "--teacher-augment")


def _given_on_command_line(ctx, settings: dict) -> dict:
    """The settings whose options were typed, which override a recipe's."""
    from click.core import ParameterSource

    given = {}
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            key = _DISTILL_ARGUMENTS.get(name, name)
            if key in settings:
                given[key] = settings[key]
    return given


def _note_skipped_target(name: str, reason: str) -> None:
    click.secho(f"Note: target {name} left out: {reason}", err=True, fg="yellow")


def _warn(warnings) -> None:
    for warning in warnings:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")


@main.command()
@click.argument("model")
@click.option("--data", "-d", required=True, help=DATA_HELP)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory (model.tflite, conversion.json, micro/).")
@click.option("--mode", type=click.Choice(list(MODES)), default="int8", show_default=True,
              help="; ".join(f"{m.name}: {m.description}" for m in MODES.values()) + ".")
@click.option("--io", "io_type", type=click.Choice(IO_TYPES), default=None,
              help="The model's input and output type: int8, uint8 or float32 for int8; "
                   "int16 or float32 for 16x8 [default: the mode's integer type].")
@click.option("--calibration-per-class", type=click.IntRange(min=1), default=50,
              show_default=True,
              help="The representative dataset: this many training samples of every class.")
@click.option("--calibration", "calibration_file", default=None, metavar="FILE",
              help="Your own representative inputs instead: an .npy array, or an .npz "
                   "holding x, shaped like the model input.")
@click.option("--max-drop", "max_drop", type=click.FloatRange(min=0, max=100), default=None,
              metavar="POINTS",
              help="Fail, writing nothing, if the .tflite's test accuracy is more than this "
                   "many points below the Keras model's.")
@click.option("--labels", "labels_file", default=None, metavar="FILE",
              help="Class names for the Micro bundle, one per line in class order.")
@click.option("--micro/--no-micro", default=None,
              help="Write a TensorFlow Lite Micro bundle into OUT/micro [default: for int8].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the data split and the representative sample.")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists and is not empty, and --report FILE.")
@_report_options()
def convert(model, data, out, mode, io_type, calibration_per_class, calibration_file, max_drop,
            labels_file, micro, seed, force, fmt, report_file):
    """Convert a tf_keras MODEL (.keras/.h5) to TFLite and check it with LiteRT.

    The .tflite is run on the test split and its accuracy is reported beside
    the Keras model's, with the share of samples where both predict the same class
    and the difference of their outputs. Then, for the integer modes, the
    TensorFlow Lite Micro bundle goes into OUT/micro.
    """
    from edgedistill.convert import convert as run_convert
    from edgedistill.data import load_dataset
    from edgedistill.reports.deploy import convert_command_report, quantization_report

    _check_report_file(report_file, force)
    progress = _RichProgress()
    dataset = load_dataset(data, seed=seed)
    labels = _labels(labels_file)
    try:
        result = run_convert(
            model, dataset, out, mode=mode, io_type=io_type,
            calibration_per_class=calibration_per_class, calibration=calibration_file,
            max_accuracy_drop=None if max_drop is None else max_drop / 100, seed=seed,
            force=force, progress=progress,
        )
    except CheckFailed as e:
        if e.details is not None:
            for renderable in quantization_report(e.details).renderables():
                progress.console.print(renderable)
        raise
    bundle = None
    if MODES[mode].full_integer if micro is None else micro:
        from edgedistill.micro import BUNDLE_DIR, write_evaluated_bundle

        bundle = write_evaluated_bundle(result.tflite_path, Path(out) / BUNDLE_DIR, dataset,
                                        labels=labels, progress=progress)
    _show(convert_command_report(result, bundle), fmt, report_file, force)
    if bundle is not None:
        _require_agreement(bundle)


@main.command()
@click.argument("model")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory for the bundle.")
@click.option("--data", "-d", default=None,
              help="Check TFLM against LiteRT on this dataset's test split (a --data of "
                   "distill) [default: random inputs].")
@click.option("--labels", "labels_file", default=None, metavar="FILE",
              help="Class names for the Micro bundle, one per line in class order.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the data split, or the random inputs.")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists and is not empty, and --report FILE.")
@_report_options()
def micro(model, out, data, labels_file, seed, force, fmt, report_file):
    """Write a TensorFlow Lite Micro bundle for MODEL (.tflite).

    model_data.cc/.h (aligned C array), op_resolver.h (exactly the model's ops),
    model_settings.h (the arena measured with the tflite-micro interpreter
    plus a margin; shapes, types, quantization, labels), an example main.cc,
    an Arduino sketch, a CMakeLists.txt and manifest.json, with TFLM's outputs
    checked against LiteRT's.
    """
    from edgedistill.micro import write_evaluated_bundle, write_micro_bundle
    from edgedistill.reports.deploy import micro_report

    _check_report_file(report_file, force)
    labels = _labels(labels_file)
    if data is None:
        bundle = write_micro_bundle(model, out, force=force, labels=labels, seed=seed)
    else:
        from edgedistill.data import load_dataset

        bundle = write_evaluated_bundle(model, out, load_dataset(data, seed=seed), labels=labels,
                                        force=force)
    _show(micro_report(bundle), fmt, report_file, force)
    _require_agreement(bundle)


@main.command()
@click.argument("models", metavar="MODEL...", nargs=-1, required=True)
@click.option("--target", "-t", "target_names", multiple=True, default=["all"], show_default=True,
              help="Target name (see 'edgedistill targets list'), a target .yaml file, or 'all'. "
                   "Repeat for several.")
@click.option("--bundle", "-b", default=None,
              help="A TFLite Micro bundle directory: its measured arena is the RAM figure.")
@click.option("--runtime", "-r", default=None, metavar="ID",
              help="Estimate for this runtime's constants (e.g. microtvm-cmsis-nn-2022; "
                   "'edgedistill targets show' lists a target's); with --target all, targets "
                   "without it are left out [default: each target's own].")
@click.option("--max-latency-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Latency budget: each target's verdict says whether the estimate meets it.")
@_report_options(own_force=True)
def profile(models, target_names, bundle, runtime, max_latency_ms, fmt, report_file, force):
    """Profile MODEL (.tflite): per-op MACs and bytes, flash, RAM, and per-target latency
    and fit. Several models are compared side by side.

    RAM is the measured arena of --bundle when given, else an estimate from
    tensor lifetimes. Latency is an estimate from each target's calibrated
    cycles-per-MAC model (see edgedistill/profile/latency.py). TensorFlow is
    not imported.
    """
    from edgedistill import targets as targets_lib
    from edgedistill.profile import profile_model
    from edgedistill.reports.comparison import comparison_report
    from edgedistill.reports.profile import profile_report

    _check_report_file(report_file, force)
    if bundle and len(models) > 1:
        raise EdgeDistillError("--bundle: its arena was measured for one model; profile that "
                               "model alone with it")
    chosen = targets_lib.select(target_names, runtime, on_skip=_note_skipped_target)
    arena = None
    if bundle:
        from edgedistill.micro import bundle_arena_bytes
        from edgedistill.tflite_file import read_tflite

        arena = bundle_arena_bytes(bundle, read_tflite(models[0]).sha256)
    profiles = [profile_model(model, chosen, arena_bytes=arena, max_latency_ms=max_latency_ms)
                for model in models]
    report = profile_report(profiles[0]) if len(profiles) == 1 else comparison_report(profiles)
    _show(report, fmt, report_file, force)


@main.command()
@click.argument("model")
@click.option("--target", "-t", "target_name", required=True,
              help="Target name or .yaml file; its flash: section says how to reach the device.")
@click.option("--device", "-d", default=None, metavar="ADDRESS",
              help="The device: an ssh destination (host, user@host, an ~/.ssh/config alias) "
                   "or an adb serial [default: the target's flash.device; over adb, the one "
                   "device attached].")
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True,
              help="Timed inferences on the device.")
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True,
              help="Untimed inferences first.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="The runtime's threads [default: the target's, as its estimate assumes].")
@click.option("--ssh-config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="An ssh config file to use instead of ~/.ssh/config.")
@click.option("--python", "python", default=None,
              help="ssh: the device's Python [default: the target's flash.python, else "
                   "python3].")
@click.option("--benchmark-model", default=None, metavar="PATH",
              help="adb: TFLite's benchmark_model, a local binary to push or a path on the "
                   "phone [default: the target's flash.benchmark_model, else searched for].")
@click.option("--out", "-o", "project_dir", type=click.Path(file_okay=False), default=None,
              help="Microcontrollers: where the firmware project is written "
                   "[default: edgedistill-firmware-TARGET].")
@click.option("--port", "-p", default=None,
              help="Microcontrollers: the board's serial port [default: the one USB serial "
                   "port attached].")
@click.option("--no-build", is_flag=True,
              help="Microcontrollers: write the project but do not build or flash it; read "
                   "the serial port of a board already running it.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=300.0, show_default=True, help="Seconds each step on the device may take.")
@click.option("--keep", is_flag=True, help="Leave the model and runner on the device.")
@click.option("--force", is_flag=True,
              help="Flash a model the profile says will not fit; also replace --out and "
                   "--report FILE.")
@click.option("--dry-run", is_flag=True, help="Print every command without running any.")
@click.option("--verbose", "-v", is_flag=True, help="Print each command as it runs.")
@_report_options()
def flash(model, target_name, device, runs, warmup, threads, ssh_config, python,
          benchmark_model, project_dir, port, no_build, timeout_s, keep, force, dry_run,
          verbose, fmt, report_file):
    """Put MODEL (.tflite) on a device of the target, time it there, and show the
    measured latency beside the profile's estimate.

    Linux boards are reached with the system's ssh (your keys, agent and
    ~/.ssh/config; host keys are always checked): the model and a small runner
    are copied to a private directory, the model's sha256 is checked there, N
    inferences are timed with the device's ai_edge_litert, tflite_runtime or
    tensorflow, and the directory is removed. Phones are reached with adb: the
    model is pushed and timed with TFLite's benchmark_model. Microcontrollers get
    a firmware project (Zephyr, ESP-IDF or Arduino, as the target file says)
    that is built and flashed with the board's tool, and the inference times
    are read from its serial port. A model that will not fit the target's flash
    or RAM is refused unless --force.
    """
    from edgedistill.flash import flash as flash_model
    from edgedistill.reports.flash import flash_report

    _check_report_file(report_file, force)
    echo = (lambda line: click.echo(line, err=not dry_run)) if dry_run or verbose else None
    result = flash_model(model, target_name, device, runs=runs, warmup=warmup, threads=threads,
                         keep=keep, force=force, dry_run=dry_run, ssh_config=ssh_config,
                         python=python, benchmark_model=benchmark_model,
                         project_dir=project_dir, port=port, build=not no_build,
                         timeout_s=timeout_s, echo=echo)
    if not dry_run:
        _show(flash_report(result), fmt, report_file, force)


@main.group(cls=_Group)
def targets():
    """Hardware targets: built-in ones and those in $EDGEDISTILL_TARGETS_PATH."""


@targets.command("list")
@_report_options(own_force=True)
def targets_list(fmt, report_file, force):
    """List every known target."""
    from edgedistill.reports.targets import targets_report
    from edgedistill.targets import list_targets

    _check_report_file(report_file, force)
    _show(targets_report(list_targets(on_skip=_note_skipped_target)), fmt, report_file, force)


@targets.command("show")
@click.argument("name")
@_report_options(own_force=True)
def targets_show(name, fmt, report_file, force):
    """Show every figure of target NAME with its source."""
    from edgedistill.reports.targets import target_report
    from edgedistill.targets import get

    _check_report_file(report_file, force)
    _show(target_report(get(name)), fmt, report_file, force)


@main.command()
@click.argument("name", required=False)
@_report_options(own_force=True)
@click.pass_context
def recipes(ctx, name, fmt, report_file, force):
    """List the built-in staged recipes, or print recipe NAME's file to copy and edit
    (with --format or --report, NAME's stages as a report instead)."""
    from click.core import ParameterSource

    from edgedistill import recipes as recipes_lib
    from edgedistill.reports.training import recipes_report

    _check_report_file(report_file, force)
    as_report = report_file or ctx.get_parameter_source("fmt") != ParameterSource.DEFAULT
    if name:
        recipe = recipes_lib.get(name)  # a clean error for an unknown name
        if not as_report:
            click.echo(recipes_lib.builtin_recipes()[name].read_text(), nl=False)
            return
    chosen = [recipe] if name else [recipes_lib.get(n) for n in recipes_lib.builtin_recipes()]
    _show(recipes_report(chosen), fmt, report_file, force)


@main.command()
@click.option("--out", "-o", default="edgedistill-quickstart", show_default=True,
              type=click.Path(file_okay=False), help="Output directory.")
@click.option("--data", "-d", default="fashion-mnist", show_default=True,
              help=DATA_HELP + " Without Debian's dataset-fashion-mnist, the default falls back "
                               "to digits.")
@click.option("--max-train-samples", type=click.IntRange(min=1), default=8_000,
              show_default=True,
              help="Train on at most this many training samples, drawn at random; the "
                   "validation and test splits stay whole.")
@_distill_options(teacher_epochs=20)
@click.option("--force", is_flag=True,
              help="Replace --out if it exists and is not empty, and --report FILE.")
@_report_options()
@click.pass_context
def quickstart(ctx, out, data, max_train_samples, temperature, alpha, epochs, learning_rate,
               schedule, patience, teacher_epochs, teacher_learning_rate, teacher_augment,
               batch_size, seed, force, fmt, report_file):
    """The whole pipeline in one go, on 8,000 Fashion-MNIST images by default.

    Trains a teacher, distills a 40x smaller student with quantization-aware
    training beside the same student trained from scratch, converts both to
    full-integer int8 TFLite, writes a TensorFlow Lite Micro bundle and profiles
    it on every built-in target (report.json, report.md, report.html in OUT).
    """
    from click.core import ParameterSource

    from edgedistill.data import fashion_mnist_installed
    from edgedistill.pipeline import REPORT_FILES, run_pipeline
    from edgedistill.reports.pipeline import pipeline_report

    _check_report_file(report_file, force)
    if (ctx.get_parameter_source("data") == ParameterSource.DEFAULT
            and not fashion_mnist_installed()):
        click.echo("Note: Fashion-MNIST is not installed (apt install dataset-fashion-mnist); "
                   "running on scikit-learn's digits, where the student from scratch is "
                   "already close to the teacher.", err=True)
        data = "digits"
    result = run_pipeline(
        out, data=data, max_train_samples=max_train_samples, temperature=temperature,
        alpha=alpha, epochs=epochs, learning_rate=learning_rate, schedule=schedule,
        patience=patience, teacher_epochs=teacher_epochs,
        teacher_learning_rate=teacher_learning_rate,
        teacher_augment=_teacher_augment(teacher_augment), batch_size=batch_size, seed=seed,
        force=force, progress=_RichProgress(),
    )
    _show(pipeline_report(result), fmt, report_file, force)
    click.echo("Reports: " + ", ".join(f"{result.out_dir}/{name}" for name in REPORT_FILES),
               err=True)
    _warn(result.distill.warnings)
    _require_agreement(result.micro)


if __name__ == "__main__":
    sys.exit(main())
