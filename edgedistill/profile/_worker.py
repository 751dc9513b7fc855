"""Vela and LiteRT on the user's model, in a child process that may crash without harm.

Both parse the model in native code, and a malformed file our reader accepts
can crash them (the .tflite fuzz test finds such files). So
:func:`call` sends each job to one long-lived child (started on first use,
kept for the life of the process, so its imports are paid once) and reads the
answer; a child that dies or stalls becomes an
:class:`~edgedistill.errors.EdgeDistillError` naming the job, and the next
call starts a fresh one.

Run as ``python -m edgedistill.profile._worker``, the child answers one JSON
line per JSON line on stdin, with everything Vela and LiteRT print silenced.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import subprocess
import sys
from typing import Any

from edgedistill.errors import EdgeDistillError

# A job that runs this long is stuck (Vela loops on some malformed operator options).
JOB_TIMEOUT_S = 120

_child: subprocess.Popen | None = None


def call(job: str, timeout_s: float = JOB_TIMEOUT_S, **args: Any) -> dict:
    """Runs ``job`` (``vela`` or ``measure``) in the child and returns its answer.

    Raises:
        EdgeDistillError: the job failed (the child's message), the child
            crashed, or it took longer than ``timeout_s``.
    """
    global _child
    if _child is None or _child.poll() is not None:
        _child = subprocess.Popen([sys.executable, "-m", "edgedistill.profile._worker"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        atexit.register(_stop, _child)
    child = _child
    try:
        child.stdin.write(json.dumps({"job": job, "args": args}) + "\n")
        child.stdin.flush()
        line = _read_line(child, timeout_s)
    except BaseException:
        # A half-finished exchange (a timeout, an interrupt) leaves an answer in the pipe.
        _stop(child)
        _child = None
        raise
    if line is None:
        code = child.wait()
        _child = None
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        raise EdgeDistillError(f"{args.get('model', 'the model')}: {job} crashed on it ({how}); "
                               "the file may be malformed")
    answer = json.loads(line)
    if "error" in answer:
        raise EdgeDistillError(answer["error"])
    return answer["result"]


def _read_line(child: subprocess.Popen, timeout_s: float) -> str | None:
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise EdgeDistillError(f"the profiling child took longer than {timeout_s:.3g} s "
                                   "on one job; it was stopped")
    return child.stdout.readline() or None


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()


def _serve() -> None:
    from edgedistill.profile.measure import measure_litert
    from edgedistill.profile.vela import compile_here

    jobs = {"vela": compile_here,
            "measure": lambda **a: measure_litert(**a).to_dict()}
    answers = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"result": jobs[request["job"]](**request["args"])}
        except EdgeDistillError as exc:
            answer = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - any failure is the job's answer
            answer = {"error": f"{request['job']} failed: {type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()
