"""Seeded mutants of a tf_keras model file, loaded one by one: the fuzzer behind the model tests.

Run as a child process (a crash of h5py or TensorFlow cannot take the caller down):

    python tests/model_mutants.py MODEL COUNT SEED

It prints one JSON line: how many mutants were refused cleanly
(EdgeDistillError on one line naming the file), loaded to a model whose
outputs on zeros are finite and of the original shape, escaped as another
exception, hung past the per-mutant limit, or loaded to outputs the model
cannot mean.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import sys
import tempfile
from pathlib import Path

from tflite_mutants import mutate

SECONDS_PER_MUTANT = 20


def run(model: Path, count: int, seed: int, work: Path) -> dict:
    import numpy as np

    from edgedistill.errors import EdgeDistillError
    from edgedistill.models import load_keras_model

    def timeout(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, timeout)
    original = load_keras_model(model)
    x = np.zeros((1, *original.input_shape[1:]), np.float32)
    shape = original(x).shape
    rng = random.Random(seed)
    source = model.read_bytes()
    tally: collections.Counter = collections.Counter()
    escapes: collections.Counter = collections.Counter()
    for i in range(count):
        mutant = work / f"mutant-{i}{model.suffix}"
        mutant.write_bytes(mutate(source, rng))
        signal.alarm(SECONDS_PER_MUTANT)
        try:
            out = np.asarray(load_keras_model(mutant)(x))
            sane = out.shape == shape and np.isfinite(out).all()
            tally["loaded" if sane else "absurd"] += 1
        except EdgeDistillError as e:
            one_line = "\n" not in str(e) and str(mutant) in str(e)
            tally["refused" if one_line else "messy"] += 1
        except TimeoutError:
            tally["hung"] += 1
        except Exception as exc:  # noqa: BLE001 - counting escapes is the point
            escapes[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            tally["escaped"] += 1
        finally:
            signal.alarm(0)
        mutant.unlink()
    return {"model": model.name, "count": count, "seed": seed, **tally,
            "escapes": dict(escapes.most_common(5))}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(tmp))))
