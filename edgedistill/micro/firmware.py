"""The bundle's firmware sources: model_settings.h, main.cc, an Arduino sketch, CMake.

``main.cc`` and the sketch share one application (``templates/app.cc.tmpl``)
written against tflite-micro's public API as its own examples are
(hello_world, person_detection): ``setup()`` builds the interpreter once,
``loop()`` fills the inputs, invokes and prints the top class. The input and
output code is generated for each tensor's element type and quantization, from
the constants in ``model_settings.h``.
"""

from __future__ import annotations

import math
from importlib import resources
from string import Template

from edgedistill.errors import EdgeDistillError
from edgedistill.tflite_file import Tensor, TFLiteModel

SKETCH = "edgedistill_model"
SKETCH_DIR = f"arduino/{SKETCH}"
# The sketch's copies of the bundle's sources. model_data.cc becomes .cpp:
# Arduino IDE 1.x and arduino-builder compile only .c, .cpp and .S files of a
# sketch folder (tflite-micro's own Arduino examples ship model.cpp).
SKETCH_COPIES = {"model_data.cc": "model_data.cpp", "model_data.h": "model_data.h",
                 "op_resolver.h": "op_resolver.h", "model_settings.h": "model_settings.h",
                 "edgedistill_timer.h": "edgedistill_timer.h"}
# The union of the TfLitePtrUnion members a C++ application reads per dtype.
DATA_FIELD = {"int8": "int8", "uint8": "uint8", "int16": "i16", "int32": "i32",
              "int64": "i64", "float32": "f", "float16": "f16", "bool": "b"}
_C_TYPE = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
           "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t", "uint64": "uint64_t",
           "float32": "float", "float64": "double", "bool": "bool"}
# Element types the example application converts from and to float; a
# tensor of another type (or quantized per axis) is left to the user.
_INTEGER_IO = ("int8", "uint8", "int16", "int32")


def render(name: str, **fields) -> str:
    """A template of ``micro/templates`` with its ``$fields`` filled in.

    Example:
        >>> "int main()" in render("main.cc.tmpl", model_name="m.tflite", app="")
        True
    """
    text = resources.files("edgedistill.micro").joinpath("templates", name).read_text("utf-8")
    return Template(text).substitute(fields)


def c_string(text: str) -> str:
    """A C/C++ string literal holding ``text`` as UTF-8, safe for any characters.

    Printable ASCII stays as it is; quotes, backslashes and ``?`` (trigraphs)
    are escaped, and every other byte becomes a three-digit octal escape, which
    cannot swallow a following digit as a hex escape would.

    Example:
        >>> print(c_string('say "hi"\\n, café?'))
        "say \\"hi\\"\\012, caf\\303\\251\\?"
    """
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _is_name(label) -> bool:
    if not isinstance(label, str) or "\0" in label:
        return False
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a badly decoded file name
        return False
    return True


def check_labels(labels, model: TFLiteModel, source: str) -> tuple[str, ...] | None:
    """The class labels as a tuple, one per element of output 0's last dimension.

    Raises:
        EdgeDistillError: a single string, a label that is not a string (or
            holds a NUL, or cannot be UTF-8 encoded), or a count other than
            output 0's last dimension.

    Example:
        >>> check_labels(["no", "yes"], read_tflite("m.tflite"), "m.tflite")  # doctest: +SKIP
        ('no', 'yes')
    """
    if labels is None:
        return None
    if isinstance(labels, str | bytes):
        raise EdgeDistillError(
            f"labels: got one {type(labels).__name__}; pass one name per class, as a list")
    labels = tuple(labels)
    for i, label in enumerate(labels):
        if not _is_name(label):
            raise EdgeDistillError(
                f"labels[{i}]: {label!r:.40} is not a class name; pass text without NUL "
                "characters")
    shape = model.tensors[model.outputs[0]].shape
    classes = shape[-1] if shape else 1
    if len(labels) != classes:
        raise EdgeDistillError(
            f"labels: {len(labels)} given, but output 0 of {source} has {classes} classes "
            f"(the last dimension of its shape {list(shape)}); pass one label per class")
    return labels


def _per_tensor(t: Tensor) -> bool:
    return t.quantization is not None and len(t.quantization.scales) == 1


def _about(t: Tensor) -> str:
    return f"{t.name!r}, {t.dtype} {list(t.shape)}"


def _tensor_constants(kind: str, i: int, t: Tensor) -> list[str]:
    k = f"k{kind}{i}"
    q = t.quantization
    lines = ["", f"// {kind.lower()} {i} {_about(t)}"]
    lines.append(f"using {kind}{i}Type = {_C_TYPE[t.dtype]};" if t.dtype in _C_TYPE
                 else f"// ({t.dtype} has no C++ element type)")
    lines.append(f"constexpr int {k}Rank = {len(t.shape)};")
    if t.shape:
        lines.append(f"constexpr int {k}Dims[{k}Rank] = {{{', '.join(map(str, t.shape))}}};")
    lines += [f"constexpr int {k}ElementCount = {math.prod(t.shape)};",
              f"constexpr int {k}Bytes = {t.nbytes};"]
    if _per_tensor(t):
        lines += [f"// real value = (q - {k}ZeroPoint) * {k}Scale",
                  f"constexpr float {k}Scale = {q.scales[0]!r}f;",
                  f"constexpr int {k}ZeroPoint = {q.zero_points[0]};"]
    elif q is not None:
        lines.append(f"// quantized per axis {q.axis}: the scales are in manifest.json")
    return lines


def settings_h(model: TFLiteModel, name: str, version: str, arena, labels) -> str:
    """Text of ``model_settings.h``: the arena, every input's and output's
    shape, element type, size and quantization, and the class labels if given.

    Example:
        >>> settings_h(model, "m.tflite", "0.dev", arena, ("no", "yes"))  # doctest: +SKIP
        '// Sizes, shapes and quantization of m.tflite ...'
    """
    lines = []
    for kind, indices in (("Input", model.inputs), ("Output", model.outputs)):
        for i, index in enumerate(indices):
            lines += _tensor_constants(kind, i, model.tensors[index])
    label_lines = []
    if labels is not None:
        label_lines = ["", "// Class names of output 0, one per element of its last dimension.",
                       f"constexpr int kLabelCount = {len(labels)};",
                       "constexpr const char* kLabels[kLabelCount] = {",
                       *(f"    {c_string(label)}," for label in labels), "};"]
    return render(
        "model_settings.h.tmpl", model_name=name, tflm_version=version,
        measured_bytes=arena.measured_bytes, margin_bytes=arena.margin_bytes,
        recommended_bytes=arena.recommended_bytes, num_inputs=len(model.inputs),
        num_outputs=len(model.outputs), tensor_constants="\n".join(lines) + "\n",
        label_constants="\n".join(label_lines) + "\n" if label_lines else "")


def _fill_inputs(model: TFLiteModel) -> tuple[str, str]:
    """loop()'s code that fills each input, and setup()'s notes on inputs it cannot."""
    blocks, notes = [], []
    for i, index in enumerate(model.inputs):
        t = model.tensors[index]
        if t.dtype == "float32":
            blocks.append(f"  // Input {i} ({_about(t)}): read in place.\n"
                          f"  ReadInput({i}, 0, interpreter->input({i})->data.f, "
                          f"kInput{i}ElementCount);\n")
        elif t.dtype in _INTEGER_IO and (t.quantization is None or _per_tensor(t)):
            scale, zero_point, formula = (
                (f"kInput{i}Scale", f"kInput{i}ZeroPoint",
                 "q = round(x / scale) + zero point, saturated") if _per_tensor(t)
                else ("1.0f", "0", "not quantized: values rounded and saturated"))
            blocks.append(render("quantize_input.cc.tmpl", index=i, about=_about(t),
                                 formula=formula, field=DATA_FIELD[t.dtype], scale=scale,
                                 zero_point=zero_point))
        else:
            kind = "quantized per axis" if t.quantization else t.dtype
            message = c_string(f"Input {i} ({kind}) is not filled by this example; "
                               "fill it in loop().")
            notes.append(f"  MicroPrintf({message});\n")
    chunk = ("  // ReadInput gives kChunk values at a time, quantized into the tensor, so\n"
             "  // no float copy of a whole input needs RAM.\n"
             "  constexpr int kChunk = 32;\n"
             "  float chunk[kChunk];\n") if any("kChunk" in b for b in blocks) else ""
    return chunk + "\n".join(blocks), "".join(notes)


def _report_output(model: TFLiteModel, labels) -> str:
    """loop()'s code that prints output 0's top class, dequantized."""
    t = model.tensors[model.outputs[0]]
    if t.dtype == "float32":
        score, why = "scores[top]", ""
    elif t.dtype in _INTEGER_IO and _per_tensor(t):
        score = "(scores[top] - kOutput0ZeroPoint) * kOutput0Scale"
        why = ";\n  // the scale is positive, so that is the largest quantized value as well"
    elif t.dtype in _INTEGER_IO and t.quantization is None:
        score, why = "static_cast<float>(scores[top])", ""
    else:
        kind = "quantized per axis" if t.quantization else t.dtype
        message = c_string(f"Output 0 ({kind}) is not read by this example; read it in loop().")
        return f"  MicroPrintf({message});\n"
    classes = ("kLabelCount" if labels is not None
               else "kOutput0Dims[kOutput0Rank - 1]" if t.shape else "1")
    message = ('"Top class: %d %s, score %d/1000", top, kLabels[top]' if labels is not None
               else '"Top class: %d, score %d/1000", top')
    return render("top_class.cc.tmpl", about=_about(t), why=why, field=DATA_FIELD[t.dtype],
                  classes=classes, score=score, message=message)


def app_text(model: TFLiteModel, array: str, labels) -> str:
    """The example application (``setup()`` and ``loop()``) every entry point wraps.

    ``loop()`` fills the inputs, times ``Invoke()`` (printing
    ``edgedistill: invoke_us=N arena_used=M``) and prints output 0's top class.
    """
    fill_inputs, setup_notes = _fill_inputs(model)
    return render("app.cc.tmpl", array=array, fill_inputs=fill_inputs, setup_notes=setup_notes,
                  report_output=_report_output(model, labels))


def firmware_texts(texts: dict[str, str], model: TFLiteModel, name: str, array: str,
                   labels) -> dict[str, str]:
    """``main.cc``, the timer header, ``CMakeLists.txt`` and the Arduino sketch, with its
    copies of ``texts``.

    Args:
        texts: the bundle's other files by name; the sketch copies some.
        model: the parsed model.
        name: the model's file name, for the leading comments.
        array: the C name of the model's array.
        labels: the checked class labels (see ``check_labels``), or None.

    Example:
        >>> sorted(firmware_texts(texts, model, "m.tflite", "g_m_data", None))  # doctest: +SKIP
        ['CMakeLists.txt', 'arduino/edgedistill_model/edgedistill_model.ino', ...]
    """
    app = app_text(model, array, labels)
    texts = {**texts, "edgedistill_timer.h": render("edgedistill_timer.h.tmpl")}
    return {
        "main.cc": render("main.cc.tmpl", model_name=name, app=app),
        "edgedistill_timer.h": texts["edgedistill_timer.h"],
        "CMakeLists.txt": render("CMakeLists.txt.tmpl", model_name=name),
        f"{SKETCH_DIR}/{SKETCH}.ino": render("sketch.ino.tmpl", model_name=name, app=app),
        **{f"{SKETCH_DIR}/{copy}": texts[source] for source, copy in SKETCH_COPIES.items()},
    }
