"""The model as a C++ byte array (``model_data.cc`` / ``model_data.h``).

TFLM reads the flatbuffer in place from flash, so the array is ``const`` and
aligned to 16 bytes: the flatbuffer's own alignment guarantees (and TFLM's
checks on buffer alignment) assume the model starts at an aligned address.
The array is named from the model (``g_kws_ref_model_data``), so that the
bundles of two models link into one firmware.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

BYTES_PER_LINE = 12
HEADER_NAME = "model_data.h"
# What `convert` names every model it writes; its folder says more.
_GENERIC_STEM = "model"

# "0xNN, " for every byte value, as a (256, 6) table of ASCII codes.
_ITEM = 6


def _lookup() -> np.ndarray:
    return np.frombuffer(
        "".join(f"0x{i:02x}, " for i in range(256)).encode("ascii"), dtype=np.uint8
    ).reshape(256, _ITEM)


def c_array_body(data: bytes) -> str:
    """The initializer lines of a byte array: ``  0x1c, 0x00, ...`` (12 per line).

    Vectorised with numpy: a table lookup turns every byte into its 6-character
    item at once, so a 1 MB model takes milliseconds rather than the seconds a
    per-byte Python loop needs.

    Example:
        >>> c_array_body(bytes([0, 255]))
        '  0x00, 0xff,\\n'
    """
    items = _lookup()[np.frombuffer(data, dtype=np.uint8)]
    full = len(data) // BYTES_PER_LINE * BYTES_PER_LINE
    rows = items[:full].reshape(-1, BYTES_PER_LINE * _ITEM)
    # Each row gets two leading spaces, and its trailing space becomes a newline.
    lines = np.empty((rows.shape[0], rows.shape[1] + 2), dtype=np.uint8)
    lines[:, :2] = ord(" ")
    lines[:, 2:] = rows
    lines[:, -1] = ord("\n")
    text = lines.tobytes().decode("ascii")
    if full < len(data):
        text += "  " + items[full:].tobytes().decode("ascii")[:-1] + "\n"
    return text


def array_name(model_path) -> str:
    """The C name of a model's array: ``g_<file name>_data``, from the folder's name
    when the file has the generic name ``model.tflite``; its length adds ``_len``.

    Example:
        >>> array_name("mlperf/kws_ref_model.tflite"), array_name("runs/student-int8/model.tflite")
        ('g_kws_ref_model_data', 'g_student_int8_data')
    """
    path = Path(model_path)
    stem = path.parent.name if path.stem == _GENERIC_STEM and path.parent.name else path.stem
    ident = re.sub(r"[^0-9a-z]+", "_", stem.lower()).strip("_") or _GENERIC_STEM
    return f"g_{ident}_data"


def model_data_cc(data: bytes, source: str, array: str) -> str:
    """Text of ``model_data.cc``: the model bytes, 16-byte aligned, and their count.

    Args:
        data: the .tflite file's bytes.
        source: where they came from, written into the leading comment.
        array: the array's C name (see ``array_name``).

    Example:
        >>> print(model_data_cc(b"TFL3", "m.tflite", "g_m_data").splitlines()[-3])
          0x54, 0x46, 0x4c, 0x33,
    """
    return (
        f"// The TFLite model {source} ({len(data)} bytes), written by edgedistill.\n"
        f'#include "{HEADER_NAME}"\n\n'
        "// TFLM reads the flatbuffer in place; 16-byte alignment keeps its tensors aligned.\n"
        f"alignas(16) const unsigned char {array}[] = {{\n"
        f"{c_array_body(data)}"
        "};\n"
        f"const unsigned int {array}_len = {len(data)};\n"
    )


def model_data_h(array: str) -> str:
    """Text of ``model_data.h``: include guard and the extern declarations.

    Example:
        >>> "extern const unsigned char g_m_data[];" in model_data_h("g_m_data")
        True
    """
    guard = f"EDGEDISTILL_{array.upper()}_H_"
    return (
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"// The model flatbuffer, for tflite::GetModel({array}).\n"
        f"extern const unsigned char {array}[];\n"
        f"extern const unsigned int {array}_len;\n\n"
        f"#endif  // {guard}\n"
    )
