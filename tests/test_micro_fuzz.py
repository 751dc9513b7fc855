"""Mutated MLPerf Tiny models through ``edgedistill micro``: refused, or a bundle that holds up.

Each mutant runs the real command in a child process with a time limit, so
the TFLM interpreter, the arena search and the LiteRT check all meet it.
"""

import json
import random
import subprocess
import sys

import pytest
from conftest import bundle_files, mlperf_model, strict_json
from tflite_mutants import mutate

from edgedistill.micro.bundle import FILES

SECONDS_PER_MUTANT = 120


def _outcome(mutant, out):
    child = subprocess.run(
        [sys.executable, "-m", "edgedistill.cli", "micro", str(mutant), "--out", str(out)],
        capture_output=True, text=True, timeout=SECONDS_PER_MUTANT)
    errors = child.stderr.strip().splitlines()
    assert "Traceback" not in child.stderr + child.stdout, child.stderr
    if child.returncode == 2:
        assert len(errors) == 1 and errors[0].startswith("Error: "), child.stderr
        assert not out.exists()
        assert list(out.parent.glob(f".{out.name}.*")) == []
        return "refused"
    assert bundle_files(out) == sorted(FILES)
    manifest = strict_json((out / "manifest.json").read_text())
    arena = manifest["arena"]
    assert 0 < arena["measured_bytes"] <= arena["recommended_bytes"] < 2**31
    if child.returncode == 1:  # written, but its own check failed: it says so
        assert len(errors) == 1 and "TFLM and LiteRT disagree" in errors[0], child.stderr
        assert not manifest["parity"]["passed"] and manifest["parity"]["disagreement"]
        return "disagrees"
    assert child.returncode == 0, child.stderr
    assert manifest["parity"]["passed"]
    return "bundled"


# 50 mutants of two int8 models; every outcome must be one of three.
@pytest.mark.parametrize(("name", "seed"), [("kws_ref_model.tflite", 11),
                                            ("ad01_int8.tflite", 12)])
def test_micro_mutants_are_refused_or_bundled_and_checked(tmp_path, name, seed):
    source = mlperf_model(name).read_bytes()
    rng = random.Random(seed)
    outcomes = []
    for i in range(25):
        mutant = tmp_path / f"mutant{i}.tflite"
        mutant.write_bytes(mutate(source, rng))
        outcomes.append(_outcome(mutant, tmp_path / f"out{i}"))
    assert set(outcomes) <= {"refused", "bundled", "disagrees"}
    assert outcomes.count("refused") >= 3 and outcomes.count("bundled") >= 3, outcomes


def test_mutated_manifests_are_refused_or_give_a_sane_arena(tmp_path):
    from edgedistill.errors import EdgeDistillError
    from edgedistill.micro.bundle import MAX_ARENA_BYTES, bundle_arena_bytes

    sha = "ab" * 32
    manifest = json.dumps({"model": {"file": "m.tflite", "sha256": sha, "bytes": 1000},
                           "arena": {"measured_bytes": 1e3, "margin_bytes": 200,
                                     "recommended_bytes": 1200}}, indent=2).encode()
    rng = random.Random(5)
    outcomes = {"refused": 0, "read": 0}
    for i in range(500):
        if i % 2:
            mutant = mutate(manifest, rng)
        else:  # one edit that keeps it text: numbers grow, signs flip, strings break
            mutant = bytearray(manifest)
            mutant[rng.randrange(len(mutant))] = ord(rng.choice('0123456789-.e"{}[],: '))
        (tmp_path / "manifest.json").write_bytes(bytes(mutant))
        try:
            arena = bundle_arena_bytes(tmp_path, sha)
        except EdgeDistillError as e:
            assert "\n" not in str(e) and "manifest.json" in str(e)
            outcomes["refused"] += 1
        else:
            assert type(arena) is int and 0 < arena <= MAX_ARENA_BYTES
            outcomes["read"] += 1
    assert outcomes["refused"] > 50 and outcomes["read"] > 50, outcomes
