"""Times a .tflite model on a Linux device; copied there and run by ``edgedistill flash``.

This file runs on the device, with the device's Python 3 and no edgedistill:
it imports only the standard library, NumPy and whichever TFLite runtime the
device has, tried in order: ``ai_edge_litert``, ``tflite_runtime``,
``tensorflow.lite``. It first checks the model's sha256 against the one
given (the copy arrived whole), then loads the model, runs ``--warmup``
untimed and ``--runs`` timed invokes on a fixed random input, and prints one
JSON object on stdout::

    {"runtime": "ai_edge_litert", "version": "2.3.0", "threads": 4, "warmup": 10,
     "runs": 50, "median_ms": 12.1, "mean_ms": 12.2, "min_ms": 11.8, "p90_ms": 12.9,
     "peak_rss_bytes": 71958528, "model_rss_bytes": 9125888}

``peak_rss_bytes`` is the process's peak resident memory; ``model_rss_bytes``
is how much of it came after the runtime was imported (the model, the
interpreter, its arena). Failures print ``{"error": kind, "message": ...}``
and exit with status 3 (checksum mismatch), 4 (no runtime) or 5 (the runtime
could not run the model).

Usage:
    python3 device_runner.py MODEL --sha256 HEX [--runs 50] [--warmup 10] [--threads 1]
"""

import argparse
import hashlib
import json
import resource
import statistics
import sys
import time

EXIT_CHECKSUM, EXIT_NO_RUNTIME, EXIT_RUN = 3, 4, 5


def _fail(kind, message, status):
    print(json.dumps({"error": kind, "message": message}))
    sys.exit(status)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rss_bytes():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _interpreter_class():
    """The first runtime found: its name, version and Interpreter class."""
    try:
        from importlib.metadata import version

        from ai_edge_litert import interpreter as litert
        return "ai_edge_litert", version("ai-edge-litert"), litert.Interpreter
    except ImportError:
        pass
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as tflite
        return "tflite_runtime", getattr(tflite_runtime, "__version__", "?"), tflite.Interpreter
    except ImportError:
        pass
    try:
        import tensorflow as tf
        return "tensorflow.lite", tf.__version__, tf.lite.Interpreter
    except ImportError:
        _fail("no-runtime", "no TFLite runtime on this device: pip install ai-edge-litert "
                            "(or tflite-runtime, or tensorflow)", EXIT_NO_RUNTIME)


def _random_input(np, rng, detail):
    shape, dtype = detail["shape"], np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("give --runs and --threads of at least 1 and --warmup of at least 0")

    found = _sha256(args.model)
    if found != args.sha256:
        _fail("checksum", f"the model on the device has sha256 {found}, not {args.sha256}: "
                          "the copy was damaged or changed", EXIT_CHECKSUM)
    name, version, interpreter_class = _interpreter_class()
    import numpy as np

    before_model = _rss_bytes()
    try:
        interpreter = interpreter_class(model_path=args.model, num_threads=args.threads)
        interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], _random_input(np, rng, detail))
        for _ in range(args.warmup):
            interpreter.invoke()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000.0)
    except (RuntimeError, ValueError) as exc:
        _fail("run", f"{name} could not run the model: {str(exc).splitlines()[0][:200]}",
              EXIT_RUN)
    times.sort()
    peak = _rss_bytes()
    print(json.dumps({
        "runtime": name, "version": version, "threads": args.threads, "warmup": args.warmup,
        "runs": len(times), "median_ms": statistics.median(times),
        "mean_ms": statistics.fmean(times), "min_ms": times[0],
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
        "peak_rss_bytes": peak, "model_rss_bytes": max(peak - before_model, 0)}))


if __name__ == "__main__":
    main()
