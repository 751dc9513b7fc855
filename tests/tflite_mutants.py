"""Seeded mutants of a .tflite file, profiled one by one: the fuzzer behind the reader's tests.

Run as a child process (so a crash cannot take the caller down):

    python tests/tflite_mutants.py MODEL COUNT SEED

It prints one JSON line: how many mutants were refused cleanly
(EdgeDistillError), profiled to sane figures, escaped as another exception
(with where), hung past the per-mutant limit, or gave a figure the model
cannot mean (negative, above 1e12, parameters larger than the file).
"""

from __future__ import annotations

import collections
import json
import random
import signal
import sys
import traceback
from pathlib import Path

# Values that break readers: zero, one, sign bits, all ones, large dimensions.
_WORDS = (0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 262_146, 1 << 20)
SECONDS_PER_MUTANT = 5


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four edits: a random byte, a 32-bit word from ``_WORDS``, a bit flip or a cut."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out) - 4)
        kind = rng.random()
        if kind < 0.4:
            out[pos] = rng.randrange(256)
        elif kind < 0.8:
            out[pos:pos + 4] = rng.choice(_WORDS).to_bytes(4, "little")
        elif kind < 0.9:
            del out[rng.randrange(8, len(out)):]
        else:
            out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def absurd_figures(report: dict) -> list[str]:
    """Figures of a profile report that no model can mean."""
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                if "headroom" not in key and "zero_point" not in key:
                    walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, where)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not 0 <= value <= 1e12:
                found.append(f"{where}={value}")

    for key in ("totals", "ops", "memory", "targets"):
        walk(report[key], key)
    if report["totals"]["param_bytes"] > report["totals"]["flash_bytes"]:
        found.append("parameters larger than the file")
    return found


def run(model: Path, count: int, seed: int, work: Path) -> dict:
    from edgedistill import targets
    from edgedistill.errors import EdgeDistillError
    from edgedistill.profile import profile_model

    def timeout(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, timeout)
    every_target = targets.list_targets()
    rng = random.Random(seed)
    source = model.read_bytes()
    tally: collections.Counter = collections.Counter()
    escapes: collections.Counter = collections.Counter()
    mutant = work / f"mutant-{seed}.tflite"
    for _ in range(count):
        mutant.write_bytes(mutate(source, rng))
        signal.alarm(SECONDS_PER_MUTANT)
        try:
            report = profile_model(mutant, every_target).to_dict()
            json.dumps(report, allow_nan=False)
            bad = absurd_figures(report)
            tally["absurd" if bad else "sane"] += 1
            if bad:
                escapes[f"absurd: {bad[0]}"] += 1
        except EdgeDistillError:
            tally["refused"] += 1
        except TimeoutError:
            tally["hung"] += 1
        except Exception as exc:  # noqa: BLE001 - counting escapes is the point
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            escapes[f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"] += 1
            tally["escaped"] += 1
        finally:
            signal.alarm(0)
    mutant.unlink(missing_ok=True)
    return {"model": model.name, "count": count, "seed": seed, **tally,
            "escapes": dict(escapes.most_common(10))}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(tmp))))
