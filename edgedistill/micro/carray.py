"""The model as a C++ byte array (``model_data.cc`` / ``model_data.h``).

TFLM reads the flatbuffer in place from flash, so the array is ``const`` and
aligned to 16 bytes: the flatbuffer's own alignment guarantees (and TFLM's
checks on buffer alignment) assume the model starts at an aligned address.
"""

from __future__ import annotations

import numpy as np

BYTES_PER_LINE = 12
ARRAY_NAME = "g_model_data"
LENGTH_NAME = "g_model_data_len"
HEADER_NAME = "model_data.h"
_GUARD = "EDGEDISTILL_MODEL_DATA_H_"

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


def model_data_cc(data: bytes, source: str) -> str:
    """Text of ``model_data.cc``: the model bytes, 16-byte aligned, and their count.

    Args:
        data: the .tflite file's bytes.
        source: where they came from, written into the leading comment.

    Example:
        >>> print(model_data_cc(b"TFL3", "m.tflite").splitlines()[-3])
          0x54, 0x46, 0x4c, 0x33,
    """
    return (
        f"// The TFLite model {source} ({len(data)} bytes), written by edgedistill.\n"
        f'#include "{HEADER_NAME}"\n\n'
        "// TFLM reads the flatbuffer in place; 16-byte alignment keeps its tensors aligned.\n"
        f"alignas(16) const unsigned char {ARRAY_NAME}[] = {{\n"
        f"{c_array_body(data)}"
        "};\n"
        f"const unsigned int {LENGTH_NAME} = {len(data)};\n"
    )


def model_data_h() -> str:
    """Text of ``model_data.h``: include guard and the extern declarations.

    Example:
        >>> "extern const unsigned char g_model_data[];" in model_data_h()
        True
    """
    return (
        f"#ifndef {_GUARD}\n#define {_GUARD}\n\n"
        "// The model flatbuffer, for tflite::GetModel(g_model_data).\n"
        f"extern const unsigned char {ARRAY_NAME}[];\n"
        f"extern const unsigned int {LENGTH_NAME};\n\n"
        f"#endif  // {_GUARD}\n"
    )
