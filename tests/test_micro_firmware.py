"""The bundle in a firmware project: its sources compile, for the host and for a
Cortex-M4, the model array keeps its size and 16-byte alignment in the object,
model_settings.h describes every tensor and holds the labels, the CMake
library links, and main.cc and the Arduino sketch are one application.

main.cc and the sketch include tflite-micro headers, which CI does not have:
they are checked here for what they use from the bundle's own headers.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import MLPERF_INT8, bundle_files, mlperf_model, one_op_model

from edgedistill.errors import EdgeDistillError
from edgedistill.micro import write_micro_bundle
from edgedistill.micro.bundle import FILES
from edgedistill.micro.carray import array_name
from edgedistill.micro.firmware import SKETCH, SKETCH_COPIES, SKETCH_DIR, c_string
from edgedistill.tflite_file import read_tflite

# The MLPerf Tiny keyword-spotting classes, in the order of its output.
KWS_LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
              "silence", "unknown")
# Quotes, a backslash, UTF-8, a trigraph, a newline and a trailing digit after
# an escaped byte: each breaks a naively quoted C string.
ODD_LABELS = ('say "hi"', "back\\slash", "café ☕", "what??=", "two\nlines\x01" + "7")
# Per compiler: the C++ compiler, its binutils, and its flags. -fdata-sections,
# which firmware builds use to drop unused data, gives the array a section of
# its own, whose size and alignment the object then states exactly.
COMPILERS = {
    "host": ("g++", "readelf", "objcopy", []),
    "cortex-m4": ("arm-none-eabi-g++", "arm-none-eabi-readelf", "arm-none-eabi-objcopy",
                  ["-mcpu=cortex-m4", "-mthumb"]),
}
# C++ element types of the model_settings.h aliases: bytes, floating, signed.
ELEMENT = {"int8": (1, False, True), "uint8": (1, False, False), "int16": (2, False, True),
           "int32": (4, False, True), "float32": (4, True, True)}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Bundles of two one-RELU models: int8 [1, 5] with odd labels, float32 [1, 4]."""
    root = tmp_path_factory.mktemp("small")
    (root / "relu_int8.tflite").write_bytes(
        one_op_model(dtype=schema.TensorType.INT8, shape=(1, 5), scale=0.25))
    (root / "relu_float.tflite").write_bytes(one_op_model())
    return {"relu_int8": write_micro_bundle(root / "relu_int8.tflite", root / "int8",
                                            labels=ODD_LABELS),
            "relu_float": write_micro_bundle(root / "relu_float.tflite", root / "float")}


@pytest.fixture(scope="module")
def mlperf(tmp_path_factory):
    """Bundles of the MLPerf Tiny int8 models; the keyword spotter's with its labels."""
    root = tmp_path_factory.mktemp("mlperf")
    return {name: write_micro_bundle(mlperf_model(name), root / name,
                                     labels=KWS_LABELS if name.startswith("kws") else None)
            for name in MLPERF_INT8}


@pytest.fixture(params=[*MLPERF_INT8, "relu_int8", "relu_float"])
def bundle(request):
    """Each bundle in turn; the MLPerf ones skip when the models are absent."""
    if request.param.startswith("relu"):
        return request.getfixturevalue("small")[request.param]
    return request.getfixturevalue("mlperf")[request.param]


def _run(*command, cwd=None) -> str:
    return subprocess.run([str(c) for c in command], check=True, capture_output=True,
                          text=True, cwd=cwd).stdout


def _tools(kind: str):
    tools = COMPILERS[kind]
    missing = [tool for tool in tools[:3] if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: gcc-arm-none-eabi, g++, "
                    "binutils)")
    return tools


def _symbols(readelf: str, obj: Path) -> dict[str, tuple[int, int, str, int]]:
    """Name -> (value, size, binding, section index) of an object's defined symbols."""
    found = {}
    for line in _run(readelf, "-sW", obj).splitlines():
        fields = line.split()
        if len(fields) == 8 and fields[0].endswith(":") and fields[6].isdigit():
            found[fields[7]] = (int(fields[1], 16), int(fields[2], 0), fields[4],
                                int(fields[6]))
    return found


def _sections(readelf: str, obj: Path) -> dict[int, tuple[str, int, int]]:
    """Index -> (name, size, alignment) of an object's sections."""
    found = {}
    for match in re.finditer(r"^\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+"
                             r"([0-9a-f]+)\s.*\s(\d+)$", _run(readelf, "-SW", obj), re.M):
        found[int(match[1])] = (match[2], int(match[3], 16), int(match[4]))
    return found


@pytest.mark.parametrize("kind", COMPILERS)
def test_model_data_compiles_to_the_model_aligned(bundle, kind, tmp_path):
    cxx, readelf, objcopy, flags = _tools(kind)
    out = Path(bundle.out_dir)
    obj = tmp_path / "model_data.o"
    _run(cxx, *flags, "-std=c++17", "-Os", "-Wall", "-Werror", "-fdata-sections", "-c",
         out / "model_data.cc", "-o", obj)
    _run(cxx, *flags, "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", "-x", "c++",
         out / "model_settings.h")
    symbols, sections = _symbols(readelf, obj), _sections(readelf, obj)
    array = bundle.array  # named from the model, so two models link into one firmware
    assert array == array_name(bundle.model_path)
    value, size, binding, index = symbols[array]
    assert binding == "GLOBAL" and size == bundle.model_bytes
    name, section_bytes, alignment = sections[index]
    assert (name, section_bytes) == (f".rodata.{array}", bundle.model_bytes)
    assert alignment >= 16 and value % 16 == 0
    # The object holds the model's very bytes, and their count.
    for section in (f".rodata.{array}", f".rodata.{array}_len"):
        _run(objcopy, "-O", "binary", f"--only-section={section}", obj, tmp_path / section)
    data = (tmp_path / f".rodata.{array}").read_bytes()
    assert hashlib.sha256(data).hexdigest() == bundle.model_sha256
    assert symbols[f"{array}_len"][2] == "GLOBAL"
    assert int.from_bytes((tmp_path / f".rodata.{array}_len").read_bytes(),
                          "little") == bundle.model_bytes


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_two_models_link_into_one_program(small, tmp_path):
    # Each array is named from its model, so two bundles do not collide.
    int8, floats = small["relu_int8"], small["relu_float"]
    assert (int8.array, floats.array) == ("g_relu_int8_data", "g_relu_float_data")
    objects = []
    for bundle in (int8, floats):
        objects.append(tmp_path / f"{bundle.array}.o")
        _run("g++", "-std=c++17", "-c", Path(bundle.out_dir) / "model_data.cc", "-o",
             objects[-1])
    (tmp_path / "both.cc").write_text(
        "#include <cstdio>\n"
        "extern const unsigned char g_relu_int8_data[];\n"
        "extern const unsigned int g_relu_int8_data_len, g_relu_float_data_len;\n"
        'int main() { std::printf("%u %u %c", g_relu_int8_data_len, g_relu_float_data_len, '
        "g_relu_int8_data[4]); }\n")
    _run("g++", "-std=c++17", tmp_path / "both.cc", *objects, "-o", tmp_path / "both")
    assert _run(tmp_path / "both") == f"{int8.model_bytes} {floats.model_bytes} T"


def test_without_alignas_the_check_fails(small, tmp_path):
    # The alignment check above is not vacuous: the same array without alignas
    # lands in a section aligned to less than 16 bytes.
    cxx, readelf, _, flags = _tools("cortex-m4")
    source = (Path(small["relu_int8"].out_dir) / "model_data.cc").read_text()
    plain = tmp_path / "plain.cc"
    plain.write_text(source.replace("alignas(16) ", ""))
    _run(cxx, *flags, "-Os", "-fdata-sections", "-I", small["relu_int8"].out_dir, "-c", plain,
         "-o", tmp_path / "plain.o")
    index = _symbols(readelf, tmp_path / "plain.o")[small["relu_int8"].array][3]
    assert _sections(readelf, tmp_path / "plain.o")[index][2] < 16


def _settings_program(model, labels: bool) -> str:
    """C++ that prints what model_settings.h says about every tensor, and the labels."""
    lines = ['#include <cstdio>', '#include <type_traits>', '#include "model_settings.h"',
             "int main() {", '  std::printf("%d %d %d\\n", kTensorArenaSize, kNumInputs, '
             "kNumOutputs);"]
    for kind, indices in (("Input", model.inputs), ("Output", model.outputs)):
        for i, index in enumerate(indices):
            k, t = f"k{kind}{i}", f"{kind}{i}Type"
            lines += [
                f'  std::printf("{kind}{i} %d %d %d %zu %d %d", {k}Rank, {k}ElementCount, '
                f"{k}Bytes, sizeof({t}), int(std::is_floating_point<{t}>::value), "
                f"int(std::is_signed<{t}>::value));",
                f'  for (int d : {k}Dims) std::printf(" %d", d);',
            ]
            if model.tensors[index].quantization is not None:
                lines.append(f'  std::printf(" q %.9g %d", double({k}Scale), {k}ZeroPoint);')
            lines.append('  std::printf("\\n");')
    if labels:
        lines += ['  std::printf("labels %d\\n", kLabelCount);',
                  "  for (const char* label : kLabels) {",
                  '    for (const char* c = label; *c; ++c) std::printf("%02x", *c & 0xff);',
                  '    std::printf("\\n");', "  }"]
    return "\n".join([*lines, "}", ""])


def _expected_settings(model, manifest: dict) -> list[str]:
    lines = [f"{manifest['arena']['recommended_bytes']} {len(model.inputs)} {len(model.outputs)}"]
    for kind, indices in (("Input", model.inputs), ("Output", model.outputs)):
        for i, index in enumerate(indices):
            t = model.tensors[index]
            size, floating, signed = ELEMENT[t.dtype]
            line = (f"{kind}{i} {len(t.shape)} {int(np.prod(t.shape))} {t.nbytes} {size} "
                    f"{int(floating)} {int(signed)} " + " ".join(map(str, t.shape)))
            if t.quantization is not None:
                line += f" q {np.float32(t.quantization.scales[0]):.9g} " \
                        f"{t.quantization.zero_points[0]}"
            lines.append(line)
    if manifest["labels"] is not None:
        lines += [f"labels {len(manifest['labels'])}",
                  *(label.encode("utf-8").hex() for label in manifest["labels"])]
    return lines


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_model_settings_describe_every_tensor_and_the_labels(bundle, tmp_path):
    out = Path(bundle.out_dir)
    model = read_tflite(bundle.model_path)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    program = tmp_path / "settings.cc"
    program.write_text(_settings_program(model, manifest["labels"] is not None))
    # C++11 with trigraphs on: the labels' escaping must hold there too.
    _run("g++", "-std=c++11", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-I", out, program,
         "-o", tmp_path / "settings")
    report = _run(tmp_path / "settings").splitlines()
    assert [line.strip() for line in report] == _expected_settings(model, manifest)


def test_labels_go_into_the_manifest_and_headers(small):
    int8_dir = Path(small["relu_int8"].out_dir)
    assert json.loads((int8_dir / "manifest.json").read_text(encoding="utf-8"))[
        "labels"] == list(ODD_LABELS)
    settings = (int8_dir / "model_settings.h").read_text()
    assert "constexpr int kLabelCount = 5;" in settings
    assert all(f"    {c_string(label)}," in settings for label in ODD_LABELS)
    assert json.loads((Path(small["relu_float"].out_dir) / "manifest.json").read_text())[
        "labels"] is None
    assert "kLabel" not in (Path(small["relu_float"].out_dir) / "model_settings.h").read_text()


@pytest.mark.parametrize(("labels", "message"), [
    (("a", "b"), r"^labels: 2 given, but output 0 of \S+relu_int8.tflite has 5 classes "
                 r"\(the last dimension of its shape \[1, 5\]\); pass one label per class$"),
    (("a",) * 6, r"^labels: 6 given, but output 0 .* has 5 classes"),
    ("abcde", r"^labels: got one str; pass one name per class, as a list$"),
    (("a", "b", 3, "d", "e"), r"^labels\[2\]: 3 is not a class name"),
    (("a", "b\0", "c", "d", "e"), r"^labels\[1\]: 'b\\x00' is not a class name"),
    (("a", "\udc80", "c", "d", "e"), r"^labels\[1\]: .* is not a class name"),
])
def test_wrong_labels_are_refused_before_any_work(tmp_path, labels, message):
    model = tmp_path / "relu_int8.tflite"
    model.write_bytes(one_op_model(dtype=schema.TensorType.INT8, shape=(1, 5), scale=0.25))
    with pytest.raises(EdgeDistillError, match=message) as refused:
        write_micro_bundle(model, tmp_path / "b", labels=labels)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "b").exists()


def test_every_written_file_is_listed(small):
    for bundle in small.values():
        out = Path(bundle.out_dir)
        assert bundle_files(out) == sorted(FILES) == sorted(bundle.files)
        assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))[
            "files"] == list(FILES)


def _app(text: str) -> str:
    """The application shared by main.cc and the sketch: from its includes to loop()'s end."""
    start = text.index("#include <algorithm>")
    end = text.index("\n}\n", text.index("void loop()")) + 3
    return text[start:end]


def test_main_cc_and_the_sketch_are_one_application(bundle):
    out = Path(bundle.out_dir)
    main = (out / "main.cc").read_text()
    sketch = (out / SKETCH_DIR / f"{SKETCH}.ino").read_text()
    assert _app(main) == _app(sketch)
    assert re.search(r"^#include <TensorFlowLite.h>$", sketch, re.M)
    assert "int main()" in main and "int main()" not in sketch
    assert "alignas(16) static uint8_t tensor_arena[kTensorArenaSize];" in main
    for call in ("tflite::InitializeTarget();", f"tflite::GetModel({bundle.array})",
                 "RegisterModelOps(resolver) != kTfLiteOk",
                 "static_interpreter.AllocateTensors() != kTfLiteOk",
                 "interpreter->arena_used_bytes()", "interpreter->Invoke() != kTfLiteOk",
                 "__attribute__((weak)) void ReadInput(int index, int offset, float* values,"):
        assert call in main, call
    for copy, original in SKETCH_COPIES.items():
        assert (out / SKETCH_DIR / original).read_bytes() == (out / copy).read_bytes()


def test_the_application_uses_only_what_the_headers_define(bundle):
    # main.cc cannot be compiled without tflite-micro; every bundle name it
    # uses must at least be one that model_settings.h or op_resolver.h defines.
    out = Path(bundle.out_dir)
    main = (out / "main.cc").read_text()
    defined = set(re.findall(r"(?:constexpr \S+(?: \S+)?|using) (\w+)",
                             (out / "model_settings.h").read_text() +
                             (out / "op_resolver.h").read_text() + main))
    used = set(re.findall(r"\b(k(?:Input|Output)\d+\w*|k(?:Label|Tensor|Num)\w*|"
                          r"(?:In|Out)put\d+Type|kChunk|ModelOpResolver)\b", main))
    assert used and used <= defined, used - defined


def test_the_application_quantizes_int8_io_with_the_models_parameters(mlperf):
    out = Path(mlperf["kws_ref_model.tflite"].out_dir)
    assert json.loads((out / "manifest.json").read_text())["labels"] == list(KWS_LABELS)
    kws = (out / "main.cc").read_text()
    assert ("input0[offset + i] = tflite::FloatToQuantizedType<Input0Type>(\n"
            "          chunk[i], kInput0Scale, kInput0ZeroPoint);") in kws
    assert "interpreter->input(0)->data.int8;" in kws
    assert "const float score = (scores[top] - kOutput0ZeroPoint) * kOutput0Scale;" in kws
    assert ('MicroPrintf("Top class: %d %s, score %d/1000", top, kLabels[top], '
            "static_cast<int>(thousandths));") in kws


def test_the_application_uses_float_io_as_it_is(small):
    relu = (Path(small["relu_float"].out_dir) / "main.cc").read_text()
    assert "ReadInput(0, 0, interpreter->input(0)->data.f, kInput0ElementCount);" in relu
    assert "kChunk" not in relu and "kInput0Scale" not in relu
    assert "const float score = scores[top];" in relu
    assert "for (int i = 1; i < kOutput0Dims[kOutput0Rank - 1]; ++i)" in relu
    assert ('MicroPrintf("Top class: %d, score %d/1000", top, '
            "static_cast<int>(thousandths));") in relu


def _documented_cmake_lines(readme: str) -> list[str]:
    block = re.search(r"```cmake\n(.*?)```", readme, re.S)[1]
    return block.strip().splitlines()


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None,
                    reason="needs cmake and g++")
def test_the_documented_cmake_lines_link_the_model(small, tmp_path):
    # A firmware project made of the README's two lines, built and run on the host.
    out = Path(small["relu_int8"].out_dir)
    lines = _documented_cmake_lines((out / "README.md").read_text())
    assert lines == ["add_subdirectory(path/to/this/bundle edgedistill_model)",
                     "target_link_libraries(your_firmware PRIVATE edgedistill_model)"]
    project = tmp_path / "firmware"
    project.mkdir()
    (project / "CMakeLists.txt").write_text("\n".join([
        "cmake_minimum_required(VERSION 3.13)", "project(firmware CXX)",
        "add_executable(your_firmware app.cc)",
        *(line.replace("path/to/this/bundle", out.as_posix()) for line in lines), ""]))
    (project / "app.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        '#include "model_settings.h"\n'
        "int main() {\n"
        "  uint64_t hash = 1469598103934665603ull;  // FNV-1a\n"
        "  for (unsigned i = 0; i < g_relu_int8_data_len; ++i) {\n"
        "    hash = (hash ^ g_relu_int8_data[i]) * 1099511628211ull;\n"
        "  }\n"
        '  std::printf("%u %u %llu %s\\n", g_relu_int8_data_len,\n'
        "              unsigned(reinterpret_cast<uintptr_t>(g_relu_int8_data) % 16),\n"
        "              static_cast<unsigned long long>(hash), kLabels[kLabelCount - 1]);\n"
        "}\n")
    _run("cmake", "-S", project, "-B", project / "build")
    _run("cmake", "--build", project / "build")
    data = Path(small["relu_int8"].model_path).read_bytes()
    hash_ = 1469598103934665603
    for byte in data:
        hash_ = ((hash_ ^ byte) * 1099511628211) % 2**64
    assert _run(project / "build" / "your_firmware").split("\n", 1)[0] == (
        f"{len(data)} 0 {hash_} {ODD_LABELS[-1].splitlines()[0]}")
