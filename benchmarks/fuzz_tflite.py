"""Mutated MLPerf Tiny models through the .tflite reader and the profile, counted.

Each batch of mutants runs in a child process (tests/tflite_mutants.py) with
a per-mutant time limit; a batch that crashes is counted as such. Counts of
refused, sane, escaped, hung and absurd results go to RESULTS.md.

Usage (from the repository root):
    python benchmarks/fuzz_tflite.py [--mutants 100000] [--batch 2500]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _results import preamble, prepend

ROOT = Path(__file__).resolve().parent.parent
HELPER = ROOT / "tests" / "tflite_mutants.py"
MLPERF_DIR = Path(os.environ.get("EDGEDISTILL_MLPERF_DIR",
                                  ROOT.parent / "shared" / "models" / "mlperf-tiny"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_500)
    args = parser.parse_args()
    models = sorted(MLPERF_DIR.glob("*.tflite"))
    if not models:
        sys.exit(f"no .tflite models in {MLPERF_DIR}; set EDGEDISTILL_MLPERF_DIR")

    started = time.perf_counter()
    totals: collections.Counter = collections.Counter()
    per_model: dict[str, collections.Counter] = {}
    escapes: collections.Counter = collections.Counter()
    batches = -(-args.mutants // args.batch)
    for index in range(batches):
        model = models[index % len(models)]
        count = min(args.batch, args.mutants - index * args.batch)
        child = subprocess.run([sys.executable, str(HELPER), str(model), str(count), str(index)],
                               capture_output=True, text=True, timeout=count * 6)
        if child.returncode != 0:
            tally = {"crashed batches": 1}
            escapes[f"batch {index} on {model.name} exited {child.returncode}"] += 1
        else:
            tally = json.loads(child.stdout.strip().splitlines()[-1])
            escapes.update(tally.pop("escapes"))
        counts = {k: v for k, v in tally.items() if isinstance(v, int) and k not in
                  ("count", "seed")}
        totals.update(counts)
        per_model.setdefault(model.name, collections.Counter()).update(counts)
        print(f"batch {index + 1}/{batches}: {model.name} {counts}", file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - started) / 60

    columns = ("refused", "sane", "escaped", "hung", "absurd", "crashed batches")
    lines = [
        f"## .tflite fuzzing: {args.mutants:,} mutants through read_tflite and profile",
        "",
        *preamble("fuzz_tflite.py"),
        f"- mutants: 1 to 4 edits each (random byte, boundary 32-bit word, bit flip, cut), "
        f"seeded per batch of {args.batch:,}; {len(models)} MLPerf Tiny models in turn; "
        f"{minutes:.1f} min",
        "",
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, counts in [*per_model.items(), ("**all**", totals)]:
        lines.append(f"| {name} | " + " | ".join(f"{counts.get(c, 0):,}" for c in columns)
                     + " |")
    if escapes:
        lines += ["", "Escapes: " + "; ".join(f"{k} ({v})" for k, v in escapes.most_common())]
    section = "\n".join(lines) + "\n"
    prepend(section)
    print(section)


if __name__ == "__main__":
    main()
