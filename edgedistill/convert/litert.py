"""Running a .tflite on arrays with LiteRT, batched, for verification.

Imports only ai-edge-litert and NumPy, never TensorFlow.
"""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Float inputs to the integer type of a quantized input tensor."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def predict(tflite_model: bytes, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float outputs of the model's first output for every row of ``x``.

    Quantized inputs are quantized and quantized outputs dequantized with the
    tensors' own scale and zero point, so results compare with the Keras model.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edgedistill._native_log import native_stderr_discarded

    with native_stderr_discarded():
        return _predict(Interpreter(model_content=tflite_model, num_threads=1), x, batch_size)


def _predict(interpreter, x: np.ndarray, batch_size: int) -> np.ndarray:
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    results = []
    current = None
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        if current != len(batch):
            interpreter.resize_tensor_input(inp["index"], [len(batch), *inp["shape"][1:]])
            interpreter.allocate_tensors()
            current = len(batch)
        if np.issubdtype(inp["dtype"], np.integer):
            batch = quantize(batch, inp["dtype"], in_scale, in_zero)
        interpreter.set_tensor(inp["index"], batch.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if np.issubdtype(y.dtype, np.integer) and out_scale:
            y = (y.astype(np.float32) - out_zero) * out_scale
        results.append(y)
    return np.concatenate(results)
