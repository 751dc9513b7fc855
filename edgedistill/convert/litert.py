"""Running a .tflite on arrays with LiteRT, batched, for verification.

Imports only ai-edge-litert and NumPy, never TensorFlow.
"""

from __future__ import annotations

import numpy as np

from edgedistill.tflite_file import quantize


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


def kernel_statistics(tflite_path: str) -> tuple[dict, ...]:
    """The zeros and distinct values of every weight kernel (constant of rank 2 or more),
    read from the .tflite itself: what pruning and clustering left after conversion.

    ``distinct_values`` counts per output channel for per-channel quantized
    kernels (each channel has its own scale) and takes the largest.

    Example:
        >>> [k["zeros"] for k in kernel_statistics("pruned.tflite")]
        [0.5, 0.5]
    """
    from ai_edge_litert.interpreter import Interpreter

    from edgedistill._native_log import native_stderr_discarded
    from edgedistill.tflite_file import read_tflite

    model = read_tflite(tflite_path)
    with native_stderr_discarded():
        interpreter = Interpreter(model_path=str(tflite_path), num_threads=1)
        interpreter.allocate_tensors()
    statistics = []
    for tensor in model.tensors:
        if not tensor.is_constant or len(tensor.shape) < 2 or tensor.dtype not in (
                "int8", "float32", "float16"):
            continue
        values = interpreter.get_tensor(tensor.index)
        q = tensor.quantization
        axis = q.axis if q is not None and len(q.scales) > 1 else None
        channels = [values] if axis is None else np.moveaxis(values, axis, 0)
        statistics.append({"name": tensor.name, "elements": int(values.size),
                           "zeros": float(np.mean(values == 0)),
                           "distinct_values": max(len(np.unique(c)) for c in channels)})
    return tuple(statistics)
