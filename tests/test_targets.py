"""Hardware targets: built-in files, validation errors, user directories, packaging."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from edgedistill import targets
from edgedistill.errors import EdgeDistillError
from edgedistill.reports.targets import target_report, targets_report

REPO = Path(__file__).resolve().parent.parent
REQUIRED = {
    "pixel-4": "phone",
    "pixel-4a": "phone",
    "pixel-8": "phone",
    "raspberry-pi-zero-2-w": "sbc",
    "raspberry-pi-3b": "sbc",
    "raspberry-pi-4": "sbc",
    "raspberry-pi-5": "sbc",
    "nano-33-ble-sense": "mcu",
    "nucleo-l4r5zi": "mcu",
    "nucleo-h7a3zi-q": "mcu",
    "stm32f746g-disco": "mcu",
    "nrf5340-dk": "mcu",
    "esp32-s3-devkitc-1": "mcu",
    "raspberry-pi-pico": "mcu",
    "alif-ensemble-e7-hp": "mcu",
    "host": "host",
}


@pytest.fixture(autouse=True)
def _no_user_targets(monkeypatch):
    monkeypatch.delenv(targets.ENV_VAR, raising=False)


def _leaves(data, prefix: str = ""):
    """(dotted path, value) of every leaf, list items as ``cores[0].count`` like ``sources``."""
    items = data.items() if isinstance(data, dict) else (
        (f"[{i}]", v) for i, v in enumerate(data))
    for key, value in items:
        path = f"{prefix}{key}" if str(key).startswith("[") or not prefix else f"{prefix}.{key}"
        if isinstance(value, dict) and set(value) != {"value", "source"} or \
                isinstance(value, list) and value and isinstance(value[0], dict):
            yield from _leaves(value, path)
        else:
            yield path, value


def _deep_merge(base: dict, child: dict) -> dict:
    out = dict(base)
    for key, value in child.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict) and "value" not in value
        out[key] = _deep_merge(out[key], value) if nested else value
    return out


def _valid_yaml() -> dict:
    """The NUCLEO-L4R5ZI written out in full: its file merged over its base by hand."""
    base = yaml.safe_load((REPO / "targets" / "_cortex-m4f.yaml").read_text())
    own = yaml.safe_load((REPO / "targets" / "nucleo-l4r5zi.yaml").read_text())
    own.pop("extends")
    return _deep_merge(base, own)


def _write(tmp_path: Path, data, name: str = "board") -> Path:
    path = tmp_path / f"{name}.yaml"
    if isinstance(data, dict):
        data = copy.deepcopy(data)
        data["name"] = data.get("name") if data.get("name") != "nucleo-l4r5zi" else name
        path.write_text(yaml.safe_dump(data))
    else:
        path.write_text(data)
    return path


def test_builtin_targets_load_with_expected_kinds():
    found = {t.name: t for t in targets.list_targets()}
    assert set(found) == set(REQUIRED)
    for name, kind in REQUIRED.items():
        assert found[name].kind == kind
        assert Path(found[name].path).stem == name
    assert found["nucleo-l4r5zi"].clock_hz == 120_000_000
    assert found["nano-33-ble-sense"].clock_hz == 64_000_000


def test_every_number_of_every_builtin_has_a_source():
    for target in targets.list_targets():
        data = target.to_dict()
        sources = data.pop("sources")
        data.pop("path")
        for field, value in _leaves(data):
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert sources.get(field, "").strip(), f"{target.name}: {field} has no source"
    for path in sorted((REPO / "targets").glob("*.yaml")):
        for field, value in _leaves(yaml.safe_load(path.read_text())):
            if isinstance(value, dict):
                assert value["source"].strip(), f"{path.name}: {field} has an empty source"
            assert not isinstance(value, int | float), f"{path.name}: {field} is a bare number"


def test_estimated_and_derived_numbers_say_so():
    """Only the L4R5ZI, Pixel 4 and Pi 4 are fitted, the host measured; the rest is argued."""
    calibrated = {"nucleo-l4r5zi", "nano-33-ble-sense", "pixel-4", "raspberry-pi-4"}
    for target in targets.list_targets():
        conv = target.sources["latency.cycles_per_mac.conv"]
        if target.name not in calibrated and target.name != "esp32-s3-devkitc-1":
            prefixes = ("measured at load:",) if target.name == "host" else ("estimate:",
                                                                            "derived:")
            assert conv.startswith(prefixes), (target.name, conv)


def test_to_dict_is_json_ready_and_capacities_are_consistent():
    for target in targets.list_targets():
        json.dumps(target.to_dict())
        assert 0 < target.model_flash_bytes <= target.flash_bytes
        assert 0 < target.model_ram_bytes <= target.ram_bytes


def test_calibrated_m4_boards_share_cycle_counts():
    nucleo, nano = targets.get("nucleo-l4r5zi"), targets.get("nano-33-ble-sense")
    assert nucleo.latency == nano.latency
    assert nucleo.sources["latency.cycles_per_mac.conv"].startswith("calibrated:")


def _set(data: dict, dotted: str, value) -> dict:
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return data


def _drop(data: dict, dotted: str) -> dict:
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    del node[last]
    return data


INVALID = [
    ("missing field", lambda d: _drop(d, "latency.float_slowdown"),
     "latency.float_slowdown: missing field"),
    ("unknown field", lambda d: _set(d, "latency.turbo", 1), "latency.turbo: unknown field"),
    (
        "wrong type",
        lambda d: _set(d, "latency.cycles_per_mac.conv", {"value": "fast", "source": "me"}),
        "latency.cycles_per_mac.conv: expected a positive number, got 'fast'",
    ),
    (
        "non-positive",
        lambda d: _set(d, "clock_hz", {"value": 0, "source": "x"}),
        "clock_hz: expected a positive integer, got 0",
    ),
    (
        "negative reserved",
        lambda d: _set(d, "memory.reserved_ram_bytes", {"value": -1, "source": "x"}),
        "memory.reserved_ram_bytes: expected a non-negative integer, got -1",
    ),
    (
        "fractional int",
        lambda d: _set(d, "memory.sram_bytes", {"value": 1.5, "source": "x"}),
        "memory.sram_bytes: expected a positive integer, got 1.5",
    ),
    (
        "bool as number",
        lambda d: _set(d, "latency.threads", {"value": True, "source": "x"}),
        "latency.threads: expected a positive integer, got True",
    ),
    (
        "string exponent",
        lambda d: _set(d, "clock_hz", {"value": "1.2e8", "source": "x"}),
        "exponents as 1.5e+9",
    ),
    ("bare number", lambda d: _set(d, "clock_hz", 120000000), "clock_hz: expected {value"),
    (
        "missing source",
        lambda d: _set(d, "clock_hz", {"value": 120000000}),
        "clock_hz.source: missing source",
    ),
    (
        "empty source",
        lambda d: _set(d, "latency.float_slowdown", {"value": 4.0, "source": "  "}),
        "latency.float_slowdown.source: missing source",
    ),
    (
        "extra key in value",
        lambda d: _set(d, "clock_hz", {"value": 1, "source": "x", "unit": "Hz"}),
        "clock_hz.unit: unknown field",
    ),
    ("bad kind", lambda d: _set(d, "kind", "laptop"), "kind: expected one of mcu, sbc, phone"),
    ("name mismatch", lambda d: _set(d, "name", "other"), "name: is 'other' but must equal"),
    (
        "latency not a mapping",
        lambda d: _set(d, "latency", [1, 2]),
        "latency: expected a mapping",
    ),
    ("huge integer", lambda d: _set(d, "clock_hz", {"value": 10**400, "source": "x"}),
     "clock_hz: expected a positive integer"),
    ("unknown ISA feature", lambda d: _set(d, "isa", ["dsp", "warp"]),
     "isa[1]: unknown 'warp'; expected one of: fpu, dsp"),
    ("unknown runtime", lambda d: _set(d, "runtime.name", "onnx"),
     "runtime.name: expected one of tflm, litert, vela"),
    ("unknown kernels", lambda d: _set(d, "runtime.kernels", "mkl"),
     "runtime.kernels: expected one of reference, cmsis-nn"),
    ("no arena memory", lambda d: _drop(d, "memory.sram_bytes"),
     "memory: give sram_bytes or dram_bytes"),
    ("reserved beyond capacity",
     lambda d: _set(d, "memory.reserved_flash_bytes", {"value": 2**22, "source": "x"}),
     "memory.reserved_flash_bytes: 4194304 is more than the 2097152 bytes there are"),
    ("auto where nothing is measured",
     lambda d: _set(d, "memory.sram_bytes", {"value": "auto", "source": "x"}),
     "memory.sram_bytes: cannot be 'auto'"),
    ("zero cores", lambda d: _set(d, "cores", [{"core": "M4", "count": {"value": 0,
                                                                      "source": "x"}}]),
     "cores[0].count: expected a positive integer, got 0"),
    ("unknown core field", lambda d: _set(d, "cores", [{"core": "M4", "mhz": 1}]),
     "cores[0].mhz: unknown field"),
    ("empty core list", lambda d: _set(d, "cores", []), "cores: expected a non-empty list"),
    ("more threads than cores",
     lambda d: _set(d, "latency.threads", {"value": 2, "source": "x"}),
     "latency.threads: 2 threads on the 1 cores listed"),
    ("extends not a name", lambda d: _set(d, "extends", 5), "extends: expected the name"),
]


@pytest.mark.parametrize("mutate,message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_target_file_names_file_and_field(tmp_path, mutate, message):
    path = _write(tmp_path, mutate(_valid_yaml()))
    with pytest.raises(EdgeDistillError) as err:
        targets.load_target_file(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_invalid_yaml_and_non_mapping_and_missing_file(tmp_path):
    bad = _write(tmp_path, "name: [unclosed\n", "bad")
    with pytest.raises(EdgeDistillError, match=r"bad\.yaml: invalid YAML at line \d+"):
        targets.load_target_file(bad)
    listing = _write(tmp_path, "- 1\n- 2\n", "listing")
    with pytest.raises(EdgeDistillError, match=r"listing\.yaml: expected a mapping"):
        targets.load_target_file(listing)
    with pytest.raises(EdgeDistillError, match="no such target file"):
        targets.load_target_file(tmp_path / "absent.yaml")


def test_unknown_name_lists_known_targets():
    with pytest.raises(EdgeDistillError) as err:
        targets.get("pixel-99")
    text = str(err.value)
    assert "unknown target 'pixel-99'" in text
    for name in REQUIRED:
        assert name in text


def test_get_accepts_a_yaml_path(tmp_path):
    path = _write(tmp_path, _valid_yaml(), "my-board")
    target = targets.get(str(path))
    assert target.name == "my-board" and target.path == str(path)


def test_user_directories_extend_and_override(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    custom = _valid_yaml()
    _write(second, custom, "my-board")
    override = copy.deepcopy(custom)
    override["name"] = "nucleo-l4r5zi"
    override["clock_hz"] = {"value": 80_000_000, "source": "my board runs at 80 MHz"}
    (first / "nucleo-l4r5zi.yaml").write_text(yaml.safe_dump(override))
    shadowed = copy.deepcopy(override)
    shadowed["clock_hz"]["value"] = 1_000_000
    (second / "nucleo-l4r5zi.yaml").write_text(yaml.safe_dump(shadowed))

    monkeypatch.setenv(targets.ENV_VAR, os.pathsep.join([str(first), str(second)]))
    names = [t.name for t in targets.list_targets()]
    assert "my-board" in names and "pixel-4" in names
    assert names.count("nucleo-l4r5zi") == 1
    assert targets.get("nucleo-l4r5zi").clock_hz == 80_000_000
    assert targets.get("my-board").path == str(second / "my-board.yaml")

    monkeypatch.setenv(targets.ENV_VAR, str(second))
    assert targets.get("nucleo-l4r5zi").clock_hz == 1_000_000
    monkeypatch.delenv(targets.ENV_VAR)
    assert targets.get("nucleo-l4r5zi").clock_hz == 120_000_000
    with pytest.raises(EdgeDistillError, match="unknown target 'my-board'"):
        targets.get("my-board")


def test_user_directory_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.setenv(targets.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(EdgeDistillError, match="EDGEDISTILL_TARGETS_PATH: .*nowhere: not a dir"):
        targets.list_targets()


def test_edited_file_is_reloaded(tmp_path):
    path = _write(tmp_path, _valid_yaml(), "board")
    assert targets.get(str(path)).clock_hz == 120_000_000
    data = yaml.safe_load(path.read_text())
    data["clock_hz"]["value"] = 64_000_000
    path.write_text(yaml.safe_dump(data))
    os.utime(path, ns=(1, 1))
    assert targets.get(str(path)).clock_hz == 64_000_000


def test_report_renders_every_field_with_its_source():
    console = Console(width=400, record=True)
    for renderable in targets_report(targets.list_targets()).renderables():
        console.print(renderable)
    table = console.export_text()
    for name in REQUIRED:
        assert name in table
    assert "120 MHz" in table and "640 KiB" in table
    console = Console(width=400, record=True)
    for renderable in target_report(targets.get("nucleo-l4r5zi")).renderables():
        console.print(renderable)
    details = console.export_text()
    assert "latency.cycles_per_mac.depthwise" in details
    assert "ST STM32L4R5xx datasheet DS12023" in details
    assert "calibrated: benchmarks/calibrate_latency.py" in details


def test_builtin_targets_recipes_and_report_schema_ship_in_the_wheel(tmp_path):
    wheel_dir, site, src = tmp_path / "wheel", tmp_path / "site", tmp_path / "src"
    # Built from a copy: pip builds in-tree and would leave build/ in the checkout.
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    for name in ("edgedistill", "targets", "recipes"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(wheel_dir)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheel_dir.glob("edgedistill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in [*REQUIRED, "_cortex-m4f", "_cortex-m7", "_raspberry-pi", "_android-phone"]:
        assert f"edgedistill/targets/builtin/{name}.yaml" in names
    assert "edgedistill/recipes/builtin/prune-pqat.yaml" in names
    assert "edgedistill/reports/schema.json" in names
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), wheel],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    probe = (
        "import importlib.resources as r, edgedistill.targets as t;"
        "root = r.files('edgedistill.targets.builtin');"
        "print(sorted(p.name for p in root.iterdir() if p.name.endswith('.yaml')));"
        "print(t.get('pixel-4').path);"
        "print(t.get('stm32f746g-disco').extends[-1].endswith('_cortex-m4f.yaml'));"
        "from edgedistill import recipes;"
        "print(recipes.builtin_recipes()['qad']);"
        "print(recipes.get('prune-pqat').stages[-1].name);"
        "from edgedistill.reports import json_schema;"
        "print('profile' in json_schema()['$defs'])"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop(targets.ENV_VAR, None)
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    listed, pixel_path, inherited, qad_path, last_stage, schema = run.stdout.splitlines()
    assert inherited == "True"
    assert all(f"{name}.yaml" in listed for name in REQUIRED)
    assert pixel_path.startswith(str(site)) and qad_path.startswith(str(site))
    assert last_stage == "4-int8" and schema == "True"
