"""The TensorFlow Lite Micro bundle: C++ sources, arena size and manifest for one model."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from edgedistill._fileio import check_output_dir, json_text, output_dir
from edgedistill.errors import EdgeDistillError
from edgedistill.micro._child import load_model
from edgedistill.micro._ops import resolver_methods
from edgedistill.micro.arena import (
    DEFAULT_MARGIN,
    DEFAULT_MIN_MARGIN_BYTES,
    ArenaMeasurement,
    ArenaUse,
    measure_arena,
)
from edgedistill.micro.carray import array_name, model_data_cc, model_data_h
from edgedistill.micro.check import RunCheck, check_run
from edgedistill.micro.firmware import (
    DATA_FIELD,
    check_labels,
    firmware_texts,
    render,
    settings_h,
)
from edgedistill.tflite_file import Tensor, TFLiteModel

BUNDLE_DIR = "micro"  # where the pipeline and `convert` put a model's bundle
# TFLM and LiteRT are compared on this many test samples (10 ms each at most
# for the MLPerf Tiny models).
PARITY_SAMPLES = 100
# No microcontroller has 2 GiB of SRAM; a larger arena is a damaged manifest.
MAX_ARENA_BYTES = 2**31 - 1
FILES = ("model_data.cc", "model_data.h", "op_resolver.h", "model_settings.h", "main.cc",
         "edgedistill_timer.h", "CMakeLists.txt", "arduino/edgedistill_model/edgedistill_model.ino",
         "arduino/edgedistill_model/model_data.cpp", "arduino/edgedistill_model/model_data.h",
         "arduino/edgedistill_model/op_resolver.h",
         "arduino/edgedistill_model/model_settings.h",
         "arduino/edgedistill_model/edgedistill_timer.h", "manifest.json", "README.md")


@dataclass(frozen=True)
class MicroBundle:
    """A written bundle: where, for which model, and what was measured.

    array: the C name of the model's array (its length: ``<array>_len``).
    """

    out_dir: str
    model_path: str
    model_sha256: str
    model_bytes: int
    array: str
    ops: tuple[str, ...]
    arena: ArenaMeasurement
    check: RunCheck
    tflite_micro_version: str
    files: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "out_dir": self.out_dir, "model_path": self.model_path,
            "model_sha256": self.model_sha256, "model_bytes": self.model_bytes,
            "array": self.array, "ops": list(self.ops), "arena": self.arena.to_dict(),
            "parity": self.check.to_dict(),
            "tflite_micro_version": self.tflite_micro_version, "files": list(self.files),
        }

    @classmethod
    def from_dict(cls, data: dict) -> MicroBundle:
        """The bundle's record back from ``to_dict()``."""
        arena = {**data["arena"], "uses": tuple(ArenaUse(**u) for u in data["arena"]["uses"])}
        return cls(out_dir=data["out_dir"], model_path=data["model_path"],
                   model_sha256=data["model_sha256"], model_bytes=data["model_bytes"],
                   array=data["array"], ops=tuple(data["ops"]), arena=ArenaMeasurement(**arena),
                   check=RunCheck.from_dict(data["parity"]),
                   tflite_micro_version=data["tflite_micro_version"], files=tuple(data["files"]))


def _tensor_dict(t: Tensor) -> dict:
    q = t.quantization
    if q is None:
        quant = None
    elif len(q.scales) == 1:
        quant = {"scale": q.scales[0], "zero_point": q.zero_points[0]}
    else:
        quant = {"scales": list(q.scales), "zero_points": list(q.zero_points), "axis": q.axis}
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bytes": t.nbytes,
            "quantization": quant}


def _io_hint(model: TFLiteModel, kind: str) -> str:
    t = model.tensors[(model.inputs if kind == "Input" else model.outputs)[0]]
    field = f"{'input' if kind == 'Input' else 'output'}->data.{DATA_FIELD.get(t.dtype, 'raw')}"
    size = f"k{kind}0Bytes bytes"
    if t.quantization is not None and len(t.quantization.scales) == 1:
        formula = (f"q = round(x / k{kind}0Scale) + k{kind}0ZeroPoint" if kind == "Input"
                   else f"x = (q - k{kind}0ZeroPoint) * k{kind}0Scale")
        return f"  // {field}: {size} of {t.dtype}, {formula}."
    return f"  // {field}: {size} of {t.dtype}."


def _arena_rows(arena: ArenaMeasurement) -> str:
    if arena.head_bytes is None:
        return "(not reported by this tflite-micro)"
    rows = ["| part | bytes | allocations |", "|---|---:|---:|",
            f"| head: tensors planned by lifetime, kernels' scratch buffers | "
            f"{arena.head_bytes} | |",
            f"| tail: persistent for the interpreter's lifetime | {arena.tail_bytes} | |"]
    rows += [f"| - {use.kind} | {use.used_bytes} | {use.allocations} |" for use in arena.uses]
    return "\n".join(rows)


def _c_identifier(text: str) -> str:
    if not (isinstance(text, str) and text.isidentifier() and text.isascii()):
        raise EdgeDistillError(f"array name {text!r:.40}: not a C identifier; use letters, "
                               "digits and _, not starting with a digit")
    return text


def _readme(model: TFLiteModel, name: str, array: str, ops, arena: ArenaMeasurement,
            check: RunCheck, version: str) -> str:
    rows = []
    for kind, indices in (("input", model.inputs), ("output", model.outputs)):
        for i, index in enumerate(indices):
            t = model.tensors[index]
            q = t.quantization
            scale, zp = ((repr(q.scales[0]), str(q.zero_points[0])) if q and len(q.scales) == 1
                         else ("per-axis", "per-axis") if q else ("-", "-"))
            rows.append(
                f"| {kind} {i} | `{t.name}` | {t.dtype} | {list(t.shape)} | {scale} | {zp} |")
    return render(
        "README.md.tmpl", model_name=name, model_bytes=model.size_bytes, sha256=model.sha256,
        array=array,
        num_ops=len(ops), op_list=", ".join(f"`{op}`" for op in ops),
        recommended_bytes=arena.recommended_bytes, measured_bytes=arena.measured_bytes,
        margin_bytes=arena.margin_bytes, below_bytes=arena.measured_bytes - 16,
        probes=arena.probes, seconds=arena.seconds, tflm_version=version,
        tensor_rows="\n".join(rows), samples=check.samples, inputs=check.inputs,
        arena_rows=_arena_rows(arena),
        max_diffs=", ".join(f"{d:g}" for d in check.max_diffs),
        mean_diffs=", ".join(f"{d:.3g}" for d in check.mean_diffs),
        top1="" if check.top1_agreement is None else
        f"; the same class on {100 * check.top1_agreement:.1f} % of the inputs",
        tolerances=", ".join(f"{t:g}" for t in check.tolerances),
        verdict="agree" if check.passed else "DISAGREE",
        input_hint=_io_hint(model, "Input"), output_hint=_io_hint(model, "Output"))


def write_micro_bundle(tflite_path, out_dir, *, force: bool = False,
                       arena_margin: float = DEFAULT_MARGIN,
                       min_margin_bytes: int = DEFAULT_MIN_MARGIN_BYTES,
                       labels=None, array: str | None = None,
                       inputs=None, random_samples: int = PARITY_SAMPLES, seed: int = 0,
                       classifier: bool | None = None) -> MicroBundle:
    """Writes a TensorFlow Lite Micro bundle for a .tflite model into ``out_dir``.

    The arena is measured with the tflite-micro interpreter (see
    ``measure_arena``), then the model runs in TFLM with the recommended arena
    and its outputs are compared with LiteRT's (see ``check_run``); the result
    is in the manifest, and ``check.passed`` says whether they agreed.

    Args:
        tflite_path: the model.
        out_dir: bundle directory; written atomically.
        force: replace ``out_dir`` when it exists and is not empty.
        arena_margin: fraction of the measured arena added for device kernels.
        min_margin_bytes: the margin is at least this (default 1 KiB).
        labels: class names, one per element of the first output's last
            dimension, for ``model_settings.h`` (``kLabels``), the example
            application and the manifest.
        array: the C name of the model's array; default: from the model's
            file name (see ``carray.array_name``).
        inputs: evaluation inputs for the parity check: one array per model
            input (or one array), samples along the batch axis, float data
            quantized for a quantized input; ``random_samples`` random inputs,
            seeded with ``seed``, when None.
        classifier: whether the first output holds class scores, for the
            top-1 agreement; default: when a SOFTMAX produces it.

    Raises:
        EdgeDistillError: missing or invalid .tflite, several subgraphs, an op
            TFLM has no kernel for, a custom op, TFLM failing to run the model,
            labels that are not one name per class, or ``out_dir`` not empty
            without ``force``. Nothing is written then.

    Example:
        >>> b = write_micro_bundle("kws_ref_model.tflite", "out/micro")   # doctest: +SKIP
        >>> b.arena.recommended_bytes, b.ops[:2]                           # doctest: +SKIP
        (26704, ('AVERAGE_POOL_2D', 'CONV_2D'))
    """
    check_output_dir(out_dir, force)
    data, model = load_model(tflite_path)
    name = Path(tflite_path).name
    array = array_name(tflite_path) if array is None else _c_identifier(array)
    if model.subgraph_count != 1:
        raise EdgeDistillError(
            f"{tflite_path}: {model.subgraph_count} subgraphs; the bundle writer handles "
            "single-subgraph models only (no IF/WHILE/CALL_ONCE)")
    labels = check_labels(labels, model, str(tflite_path))
    ops = model.opcodes
    methods = resolver_methods(ops, str(tflite_path), model)
    arena = measure_arena(tflite_path, margin=arena_margin, min_margin_bytes=min_margin_bytes)
    check = check_run(tflite_path, arena.recommended_bytes, inputs=inputs,
                      random_samples=random_samples, seed=seed, classifier=classifier)
    version = metadata.version("tflite-micro")
    manifest = {
        "model": {"file": name, "sha256": model.sha256, "bytes": model.size_bytes,
                  "array": array},
        "ops": list(ops),
        "arena": {**arena.to_dict(), "source": (
            f"measured with tflite-micro {version} (host, reference kernels); "
            f"margin = max({arena_margin:g} x measured, {min_margin_bytes} B) rounded up to 16")},
        "inputs": [_tensor_dict(model.tensors[i]) for i in model.inputs],
        "outputs": [_tensor_dict(model.tensors[i]) for i in model.outputs],
        "labels": None if labels is None else list(labels),
        "tflite_micro_version": version,
        "ai_edge_litert_version": metadata.version("ai-edge-litert"),
        "parity": check.to_dict(),
        "files": list(FILES),
    }
    add_calls = "\n".join(
        f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;  // {op}"
        for op, m in zip(ops, methods, strict=True))
    texts = {
        "model_data.cc": model_data_cc(data, name, array),
        "model_data.h": model_data_h(array),
        "op_resolver.h": render("op_resolver.h.tmpl", model_name=name, num_ops=len(ops),
                                op_list=", ".join(ops), add_calls=add_calls),
        "model_settings.h": settings_h(model, name, version, arena, labels),
        "manifest.json": json_text(manifest),
        "README.md": _readme(model, name, array, ops, arena, check, version),
    }
    texts |= firmware_texts(texts, model, name, array, labels)
    with output_dir(out_dir, force) as tmp:
        for file, text in texts.items():
            (tmp / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp / file).write_text(text, encoding="utf-8")
    return MicroBundle(
        out_dir=os.fspath(out_dir), model_path=os.fspath(tflite_path), model_sha256=model.sha256,
        model_bytes=model.size_bytes, array=array, ops=ops, arena=arena, check=check,
        tflite_micro_version=version, files=FILES)


def bundle_arena_bytes(bundle_dir, model_sha256: str) -> int:
    """The arena to allocate (measured + margin) from a bundle made for this model.

    Raises:
        EdgeDistillError: no manifest, no arena in it, or a bundle of another model.

    Example:
        >>> bundle_arena_bytes("out/micro", read_tflite("model.tflite").sha256)  # doctest: +SKIP
        26704
    """
    manifest = Path(bundle_dir) / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeDistillError(
            f"{manifest}: no such file; --bundle takes a TFLite Micro bundle directory"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise EdgeDistillError(
            f"{manifest}: not a readable JSON manifest ({type(e).__name__}); write the bundle "
            "again") from None
    arena = data.get("arena") if isinstance(data, dict) else None
    arena = arena.get("recommended_bytes") if isinstance(arena, dict) else None
    model = data.get("model") if isinstance(data, dict) else None
    sha = model.get("sha256") if isinstance(model, dict) else None
    if type(arena) is not int or not 0 < arena <= MAX_ARENA_BYTES or not isinstance(sha, str):
        raise EdgeDistillError(
            f"{manifest}: needs arena.recommended_bytes, a whole number of bytes from 1 to "
            f"{MAX_ARENA_BYTES:,}, and model.sha256 (got {arena!r:.40}); write the bundle again")
    if sha != model_sha256:
        raise EdgeDistillError(
            f"{manifest}: the bundle was made for another model (sha256 {sha[:12]}…); "
            "pass the bundle of this .tflite"
        )
    return arena


def write_evaluated_bundle(tflite_path, out_dir, data, *, labels=None, force: bool = False,
                           progress=None) -> MicroBundle:
    """The Micro stage after ``convert``: a bundle whose parity check runs on the
    first ``PARITY_SAMPLES`` test samples of ``data`` (an ``edgedistill.data.Dataset``).

    Example:
        >>> converted = convert("student.keras", dataset, "out")      # doctest: +SKIP
        >>> bundle = write_evaluated_bundle(                           # doctest: +SKIP
        ...     converted.tflite_path, "out/micro", dataset)
        >>> bundle.check.top1_agreement                                # doctest: +SKIP
        1.0
    """
    if progress is not None:
        progress.stage("micro", "TFLite Micro bundle: measuring the arena, checking TFLM")
    return write_micro_bundle(tflite_path, out_dir, force=force, labels=labels,
                              inputs=data.x_test[:PARITY_SAMPLES], classifier=True)
