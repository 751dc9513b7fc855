"""How far the per-target latency estimates land from real latencies, and how fast profiling is.

1. NUCLEO-L4R5ZI: each runtime's estimate of the four MLPerf Tiny models
   against the published latencies its constants were fitted to
   (benchmarks/_published.py FIT): in-sample errors, three constants for
   four models.
2. Other boards and builds (_published.CHECK): the same constants, the
   board's own clock, against results never used in a fit.
3. The host target: estimate against the LiteRT median measured here, in
   five fresh processes (probes, then the models), medians of the five.
4. Time to profile the four models on every built-in target: a fresh
   process (imports, Vela, the LiteRT measurement on the host), then the
   same calls again in that process.

Goals (issue 16): within +-20% of published per model on the L4R5ZI, the
host estimate within +-25% of measured, all four on all targets under 2 s.

Run from the repository root: ``python benchmarks/profile_targets.py``
(``--no-write`` prints without touching RESULTS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from _published import CHECK, FIT, MODELS, Published  # noqa: E402
from _results import preamble, prepend  # noqa: E402
from conftest import MLPERF_DIR  # noqa: E402

from edgedistill import targets  # noqa: E402
from edgedistill.profile import profile_model  # noqa: E402
from edgedistill.profile.analysis import analyze  # noqa: E402
from edgedistill.profile.latency import estimate_latency  # noqa: E402
from edgedistill.tflite_file import read_tflite  # noqa: E402

FIT_GOAL, HOST_GOAL, TIME_GOAL_S = 0.20, 0.25, 2.0
HOST_RUNS, HOST_ROUNDS = 200, 5

# One round of the host comparison in a fresh process: its probes (the host target's
# constants), then each model's estimate and LiteRT measurement.
_HOST_ROUND = """
import json, sys
from edgedistill import targets
from edgedistill.profile.analysis import analyze
from edgedistill.profile.latency import estimate_latency
from edgedistill.profile.measure import measure_litert
from edgedistill.tflite_file import read_tflite
host, runs = targets.get("host"), int(sys.argv[1])
out = {"host": [host.processor, host.clock_hz, host.latency.threads]}
for path in sys.argv[2:]:
    m = measure_litert(path, host.latency.threads, runs=runs)
    out[path] = [estimate_latency(host, analyze(read_tflite(path))).total_ms, m.median_ms,
                 m.min_ms, m.p90_ms, m.warmup, m.version]
print(json.dumps(out))
"""

# A fresh interpreter: what `edgedistill profile` pays, imports included.
_TIMED = """
import json, sys, time
start = time.perf_counter()
from edgedistill import targets
from edgedistill.profile import profile_model
chosen = targets.select(["all"])
paths = sys.argv[1:]
first = time.perf_counter()
for path in paths:
    profile_model(path, chosen)
cold = time.perf_counter() - start
again = time.perf_counter()
for path in paths:
    profile_model(path, chosen)
print(json.dumps({"cold_s": cold, "imports_s": first - start,
                  "warm_s": time.perf_counter() - again, "targets": len(chosen),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def _target(published: Published) -> targets.Target:
    """The board's target at the submission's clock, set to the submission's runtime."""
    name = published.board.split()[0]
    base = targets.get(name) if name in targets.target_files() else \
        dataclasses.replace(targets.get("nucleo-l4r5zi"), name=name)
    return dataclasses.replace(base.with_runtime(published.runtime), clock_hz=published.clock_hz)


def latency_rows(entries, ops_by_model) -> tuple[list[str], list[float]]:
    """Markdown rows of estimate against published latency, and the relative errors."""
    rows, errors = [], []
    for published in entries:
        target = _target(published)
        for name in MODELS:
            est = estimate_latency(target, ops_by_model[name]).total_ms
            pub = published.ms[name]
            errors.append(est / pub - 1)
            rows.append(f"| {published.runtime} | {published.board} | {name} | {pub:.2f} | "
                        f"{est:.2f} | {est / pub - 1:+.1%} | `{published.source_of(name)}` |")
    return rows, errors


def host_rows() -> tuple[list[str], list[float], str]:
    """Per model, medians over HOST_ROUNDS fresh processes: on a shared machine one round's
    probes or measurement can land in a slow spell and be off twofold."""
    paths = [str(MLPERF_DIR / name) for name in MODELS]
    rounds = [json.loads(subprocess.run(
        [sys.executable, "-c", _HOST_ROUND, str(HOST_RUNS), *paths], capture_output=True,
        text=True, cwd=REPO, check=True).stdout.strip().splitlines()[-1])
        for _ in range(HOST_ROUNDS)]
    rows, errors = [], []
    for name, path in zip(MODELS, paths, strict=True):
        est, median, least, p90 = (statistics.median(r[path][i] for r in rounds)
                                   for i in range(4))
        each = sorted(r[path][0] / r[path][1] - 1 for r in rounds)
        errors.append(statistics.median(each))
        rows.append(f"| {name} | {median:.4f} | {least:.4f} | {p90:.4f} | {est:.4f} | "
                    f"{errors[-1]:+.1%} | {each[0]:+.0%} to {each[-1]:+.0%} |")
    processor, clock_hz, threads = rounds[0]["host"]
    warmup, version = rounds[0][paths[0]][4:]
    setup = (f"{processor}, {clock_hz / 1e9:.2f} GHz as the kernel reports it, "
             f"{threads} LiteRT thread{'s' if threads > 1 else ''}, {warmup} warm-up + "
             f"{HOST_RUNS} timed invokes, {version}; medians of {HOST_ROUNDS} rounds, each a "
             f"fresh process measuring the probes then the models; load average "
             f"{os.getloadavg()[0]:.1f} at the end")
    return rows, errors, setup


def timing() -> dict:
    paths = [str(MLPERF_DIR / name) for name in MODELS]
    run = subprocess.run([sys.executable, "-c", _TIMED, *paths], capture_output=True, text=True,
                         cwd=REPO, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="Do not touch RESULTS.md.")
    args = parser.parse_args()
    ops_by_model = {name: analyze(read_tflite(MLPERF_DIR / name)) for name in MODELS}
    fit_rows, fit_errors = latency_rows(FIT, ops_by_model)
    default_errors = fit_errors[:len(MODELS)]
    check_rows, check_errors = latency_rows(CHECK, ops_by_model)
    host, host_errors, host_setup = host_rows()
    times = timing()
    vela = profile_model(MLPERF_DIR / MODELS[0], [targets.get("alif-ensemble-e7-hp")]).targets[0]
    header = "| runtime | board | model | published ms | estimate ms | error | source |"
    rule = "|---|---|---|---:|---:|---:|---|"
    worst_fit = max(abs(e) for e in fit_errors)
    lines = [
        "## Latency estimates against published and measured latencies (issue 16 §3)", "",
        *preamble("profile_targets.py"),
        f"- vela: {vela.vela.version if vela.vela else 'not installed: ' + vela.notes[0]}",
        "",
        "Published latencies on the NUCLEO-L4R5ZI, each runtime against the results its "
        "constants were fitted to (in-sample: three cycles-per-MAC constants, four models):",
        "", header, rule, *fit_rows, "",
        "Other boards and builds, never fitted (the constants of the runtime on the L4R5ZI, "
        "the board's clock):", "", header, rule, *check_rows, "",
        f"Host ({host_setup}):", "",
        "| model | measured median ms | min ms | p90 ms | estimate ms | error (median) "
        "| error (range) |",
        "|---|---:|---:|---:|---:|---:|---:|", *host, "",
        f"Profiling the four models on all {times['targets']} built-in targets: "
        f"{times['cold_s']:.2f} s in a fresh process ({times['imports_s']:.2f} s of it "
        f"imports and loading the targets, the host's LiteRT probes included; then Vela "
        f"compiles for the Ethos-U target and LiteRT times each model on the host), "
        f"{times['warm_s']:.2f} s again in the same process; TensorFlow imported: "
        f"{times['tensorflow']}.", "",
        "Goals:", "",
        f"- within ±20% of published on each model on the L4R5ZI: default runtime "
        f"(tflm-cmsis-nn-2020) worst {max(abs(e) for e in default_errors):.1%}, "
        f"{_verdict(max(abs(e) for e in default_errors) <= FIT_GOAL)}; all fitted runtimes "
        f"worst {worst_fit:.1%}, {_verdict(worst_fit <= FIT_GOAL)} (in-sample).",
        f"- other boards (validation, no goal set): worst {max(abs(e) for e in check_errors):.1%}"
        f", mean |error| {sum(abs(e) for e in check_errors) / len(check_errors):.1%}.",
        f"- host within ±25% of measured: worst {max(abs(e) for e in host_errors):.1%}, "
        f"{_verdict(max(abs(e) for e in host_errors) <= HOST_GOAL)} (each model's median "
        f"over {HOST_ROUNDS} rounds).",
        f"- all four models on all targets under 2 s: {times['cold_s']:.2f} s cold, "
        f"{_verdict(times['cold_s'] < TIME_GOAL_S)}.", "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        prepend(section)


if __name__ == "__main__":
    main()
