"""The ``edgedistill`` command line: thin commands over the Python API.

Each command imports its stage only when it runs, so ``edgedistill --help``,
``targets`` and ``profile`` start without TensorFlow. Bad input ends with a
one-line ``Error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import click

from edgedistill.convert.modes import MODES
from edgedistill.errors import EdgeDistillError

DATA_HELP = (
    "Dataset: 'digits' (scikit-learn's bundled 8x8 digits), 'fashion-mnist' "
    "(IDX files in /usr/share/datasets/fashion-mnist, or 'fashion-mnist:DIR'), or a .npz "
    "with x_train, y_train, x_test, y_test and optionally x_val, y_val."
)


class _Group(click.Group):
    """Turns EdgeDistillError into a one-line message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeDistillError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(2)


class _RichProgress:
    """Prints stage starts and epoch ends to stderr, so stdout stays parseable."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)

    def stage(self, name: str, detail: str = "") -> None:
        self.console.print(f"[bold cyan]▶ {name}[/] {detail}")

    def epoch(self, stage: str, epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
        shown = "  ".join(
            f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_accuracy")
        )
        self.console.print(f"  {stage} epoch {epoch}/{epochs}  {shown}")


def _stdout():
    from rich.console import Console

    return Console(highlight=False)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgedistill")
def main():
    """Distill a large Keras teacher into a small int8 student and see what it costs
    on phones, Raspberry Pis and microcontrollers."""


def _distill_options(f):
    options = [
        click.option("--temperature", type=float, default=4.0, show_default=True,
                     help="Softmax temperature of the teacher's soft targets."),
        click.option("--alpha", type=click.FloatRange(0, 1), default=0.1, show_default=True,
                     help="Weight of the hard-label loss; the soft-target loss gets 1 - alpha."),
        click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True,
                     help="Distillation epochs (also those of the from-scratch baseline)."),
        click.option("--teacher-epochs", type=click.IntRange(min=1), default=None,
                     help="Epochs to train a zoo teacher [default: --epochs]."),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Batch size for training and evaluation."),
        click.option("--learning-rate", type=float, default=5e-3, show_default=True,
                     help="Adam learning rate."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seeds data splits, weights and shuffling."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@main.command()
@click.option("--teacher", "-t", required=True,
              help="Teacher: a tf_keras .keras/.h5 file, or a zoo name "
                   "(teacher-cnn, teacher-mlp) that is first trained on --data.")
@click.option("--student", "-s", required=True,
              help="Student: a tf_keras .keras/.h5 file or a zoo name (student-cnn, student-mlp).")
@click.option("--data", "-d", required=True, help=DATA_HELP)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory (student.h5, teacher.h5, scratch_student.h5, distill.json).")
@_distill_options
@click.option("--qat/--no-qat", default=False, show_default=True,
              help="Quantization-aware training (tfmot) inside the distillation loop.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also train the student from scratch on hard labels, same epochs.")
@click.option("--force", is_flag=True, help="Replace --out if it exists and is not empty.")
def distill(teacher, student, data, out, temperature, alpha, epochs, teacher_epochs, batch_size,
            learning_rate, seed, qat, baseline, force):
    """Train a student on a teacher's soft targets plus the hard labels.

    Reports teacher, student and student-from-scratch accuracy on the test split.
    """
    from edgedistill.distill import distill as run_distill

    result = run_distill(
        teacher, student, data, out, temperature=temperature, alpha=alpha, epochs=epochs,
        teacher_epochs=teacher_epochs, batch_size=batch_size, learning_rate=learning_rate,
        seed=seed, qat=qat, scratch_baseline=baseline, force=force, progress=_RichProgress(),
    )
    from edgedistill.summary import distill_table

    _stdout().print(distill_table(result))


@main.command()
@click.argument("model")
@click.option("--data", "-d", required=True, help=DATA_HELP)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory (model.tflite, conversion.json, micro/).")
@click.option("--mode", type=click.Choice(list(MODES)), default="int8", show_default=True,
              help="; ".join(f"{m.name}: {m.description}" for m in MODES.values()) + ".")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=500,
              show_default=True, help="Training samples in the representative dataset.")
@click.option("--micro/--no-micro", default=None,
              help="Write a TensorFlow Lite Micro bundle into OUT/micro [default: for int8].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the data split and the representative sample.")
@click.option("--force", is_flag=True, help="Replace --out if it exists and is not empty.")
def convert(model, data, out, mode, calibration_samples, micro, seed, force):
    """Convert a tf_keras MODEL (.keras/.h5) to TFLite and check it with LiteRT.

    The .tflite is run on the test split and its accuracy is reported beside
    the Keras model's, with the share of samples where both predict the same class.
    """
    from edgedistill.convert import convert as run_convert

    result = run_convert(
        model, data, out, mode=mode, calibration_samples=calibration_samples, micro=micro,
        seed=seed, force=force, progress=_RichProgress(),
    )
    from edgedistill.summary import conversion_table

    _stdout().print(conversion_table(result))


@main.command()
@click.argument("model")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory for the bundle.")
@click.option("--force", is_flag=True, help="Replace --out if it exists and is not empty.")
def micro(model, out, force):
    """Write a TensorFlow Lite Micro bundle for MODEL (.tflite).

    model_data.cc/.h (aligned C array), op_resolver.h (exactly the model's ops),
    the arena size measured with the tflite-micro interpreter plus a margin,
    and manifest.json.
    """
    from edgedistill.micro import write_micro_bundle
    from edgedistill.summary import micro_table

    _stdout().print(micro_table(write_micro_bundle(model, out, force=force)))


@main.command()
@click.argument("model")
@click.option("--target", "-t", "target_names", multiple=True, default=["all"], show_default=True,
              help="Target name (see 'edgedistill targets list'), a target .yaml file, or 'all'. "
                   "Repeat for several.")
@click.option("--bundle", "-b", default=None,
              help="A TFLite Micro bundle directory: its measured arena is the RAM figure.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "md"]),
              default="table", show_default=True, help="Output format on stdout.")
def profile(model, target_names, bundle, fmt):
    """Profile MODEL (.tflite): per-op MACs and bytes, flash, RAM, and per-target latency
    and fit.

    RAM is the measured arena of --bundle when given, else an estimate from
    tensor lifetimes. Latency is an estimate from each target's calibrated
    cycles-per-MAC model (see edgedistill/profile/latency.py). TensorFlow is
    not imported.
    """
    from edgedistill import targets as targets_lib
    from edgedistill.profile import profile_model
    from edgedistill.profile.report import to_json, to_markdown, to_rich

    if "all" in target_names:
        chosen = targets_lib.list_targets()
    else:
        chosen = tuple(targets_lib.get(name) for name in target_names)
    arena = None
    if bundle:
        from edgedistill.micro import bundle_arena_bytes
        from edgedistill.tflite_file import read_tflite

        arena = bundle_arena_bytes(bundle, read_tflite(model).sha256)
    report = profile_model(model, chosen, arena_bytes=arena)
    if fmt == "json":
        click.echo(to_json(report))
    elif fmt == "md":
        click.echo(to_markdown(report))
    else:
        console = _stdout()
        for renderable in to_rich(report):
            console.print(renderable)


@main.group(cls=_Group)
def targets():
    """Hardware targets: built-in ones and those in $EDGEDISTILL_TARGETS_PATH."""


@targets.command("list")
def targets_list():
    """List every known target."""
    from edgedistill.targets import list_targets
    from edgedistill.targets.report import targets_table

    _stdout().print(targets_table(list_targets()))


@targets.command("show")
@click.argument("name")
def targets_show(name):
    """Show every figure of target NAME with its source."""
    from edgedistill.targets import get
    from edgedistill.targets.report import target_details

    _stdout().print(target_details(get(name)))


@main.command()
@click.option("--out", "-o", default="edgedistill-quickstart", show_default=True,
              type=click.Path(file_okay=False), help="Output directory.")
@click.option("--data", "-d", default="digits", show_default=True, help=DATA_HELP)
@_distill_options
@click.option("--force", is_flag=True, help="Replace --out if it exists and is not empty.")
def quickstart(out, data, temperature, alpha, epochs, teacher_epochs, batch_size,
               learning_rate, seed, force):
    """The whole pipeline in one go, on digits by default.

    Trains a teacher, distills a 100x smaller student with quantization-aware
    training, converts it to full-integer int8 TFLite, writes a TensorFlow Lite
    Micro bundle and profiles it on every built-in target (report.json, report.md).
    """
    from edgedistill.pipeline import run_pipeline
    from edgedistill.summary import pipeline_tables

    result = run_pipeline(
        out, data=data, temperature=temperature, alpha=alpha, epochs=epochs,
        teacher_epochs=teacher_epochs, batch_size=batch_size, learning_rate=learning_rate,
        seed=seed, force=force, progress=_RichProgress(),
    )
    console = _stdout()
    for renderable in pipeline_tables(result):
        console.print(renderable)


if __name__ == "__main__":
    sys.exit(main())
