"""Child process that runs the tflite-micro interpreter for the parent.

``python -m edgedistill.micro._probe REQUEST.json`` runs one task and appends
JSON lines to the request's log file: ``{"try": n}`` before each arena size it
attempts and ``{"arena": n, "ok": ...}`` after. tflite-micro can segfault when
the arena is tiny, so the interpreter never runs in the parent process: a
``try`` without its result tells the parent which size crashed.

Tasks:
    search: binary search for the smallest arena (multiple of ``ARENA_STEP``)
        that allocates and invokes, from the state ``lo`` (fails) / ``hi``
        (works, or null when none is known yet).
    probe: each size in ``arenas``; with ``allocations`` true, the recording
        allocator's report of each that works goes to stdout.
    run: invoke at ``arenas[0]`` on every sample, save the outputs of TFLM
        and of LiteRT (reference and default kernels) to the ``outputs`` .npz
        file, or log ``{"litert_error": ...}`` when LiteRT cannot run the model.

The inputs file holds one array per model input with the samples along a new
first axis; the arena is searched and probed with the first sample.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgedistill.micro._search import next_arena


def _interpreter(model: bytes, arena: int, inputs: list[np.ndarray]):
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
        for i, x in enumerate(inputs):
            interpreter.set_input(x, i)
        interpreter.invoke()
    except (RuntimeError, ValueError) as e:
        return None, str(e)
    return interpreter, ""


def _attempt(log, model: bytes, arena: int, inputs: list[np.ndarray]):
    log.write(json.dumps({"try": arena}) + "\n")
    log.flush()
    interpreter, error = _interpreter(model, arena, inputs)
    log.write(json.dumps({"arena": arena, "ok": interpreter is not None, "error": error}) + "\n")
    log.flush()
    return interpreter


def _litert_outputs(model: bytes, samples: list[np.ndarray], resolver: str) -> list[np.ndarray]:
    """Every output for every sample, stacked along a new first axis."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model, experimental_op_resolver_type=getattr(OpResolverType, resolver))
    interpreter.allocate_tensors()
    outputs = []
    for k in range(len(samples[0])):
        for detail, x in zip(interpreter.get_input_details(), samples, strict=True):
            interpreter.set_tensor(detail["index"], x[k])
        interpreter.invoke()
        outputs.append([interpreter.get_tensor(d["index"])
                        for d in interpreter.get_output_details()])
    return [np.stack(column) for column in zip(*outputs, strict=True)]


def _tflm_outputs(interpreter, samples: list[np.ndarray], count: int) -> list[np.ndarray]:
    """Like ``_litert_outputs``, in an interpreter that already ran the first sample."""
    outputs = [[interpreter.get_output(i) for i in range(count)]]
    for k in range(1, len(samples[0])):
        for i, x in enumerate(samples):
            interpreter.set_input(x[k], i)
        interpreter.invoke()
        outputs.append([interpreter.get_output(i) for i in range(count)])
    return [np.stack(column) for column in zip(*outputs, strict=True)]


def main(argv: list[str]) -> int:
    """Runs the task described by the JSON file ``argv[1]``."""
    request = json.loads(Path(argv[1]).read_text())
    model = Path(request["model"]).read_bytes()
    with np.load(request["inputs"]) as npz:
        samples = [npz[f"input{i}"] for i in range(len(npz.files))]
    inputs = [x[0] for x in samples]
    with open(request["log"], "a", encoding="utf-8") as log:
        if request["task"] == "search":
            lo, hi = request["lo"], request["hi"]
            while (arena := next_arena(lo, hi)) is not None:
                if _attempt(log, model, arena, inputs) is None:
                    lo = arena
                else:
                    hi = arena
        elif request["task"] == "probe":
            for arena in request["arenas"]:
                interpreter = _attempt(log, model, arena, inputs)
                if interpreter is not None and request.get("allocations"):
                    sys.stdout.flush()
                    interpreter.print_allocations()
        else:
            interpreter = _attempt(log, model, request["arenas"][0], inputs)
            if interpreter is None:
                return 0
            try:
                reference = _litert_outputs(model, samples, "BUILTIN_REF")
                optimized = _litert_outputs(model, samples, "AUTO")
            except (RuntimeError, ValueError) as e:  # LiteRT refuses what TFLM accepted
                log.write(json.dumps({"litert_error": str(e)}) + "\n")
                return 0
            np.savez(
                request["outputs"],
                **{f"tflm{i}": y for i, y in enumerate(
                    _tflm_outputs(interpreter, samples, len(reference)))},
                **{f"ref{i}": y for i, y in enumerate(reference)},
                **{f"opt{i}": y for i, y in enumerate(optimized)},
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
