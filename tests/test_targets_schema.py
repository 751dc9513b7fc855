"""Target files beyond one board: extends, abstract bases, user directories, auto, fuzzing."""

from __future__ import annotations

import os
import random
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import mlperf_model

from edgedistill import targets
from edgedistill.errors import EdgeDistillError
from edgedistill.targets import _host, schema
from edgedistill.targets._check import Items, Keyed, Num, Section, Text, Unmeasurable, Words
from edgedistill.targets.loader import resolve

REPO = Path(__file__).resolve().parent.parent
BUILTIN = REPO / "targets"
NUMBER = '{value: %s, source: "test"}'


@pytest.fixture(autouse=True)
def _no_user_targets(monkeypatch):
    monkeypatch.delenv(targets.ENV_VAR, raising=False)


def _file(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _one_line_error(path_or_name, *fragments: str) -> str:
    with pytest.raises(EdgeDistillError) as err:
        targets.get(str(path_or_name))
    text = str(err.value)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text, text
    return text


# --- extends -----------------------------------------------------------------


def test_extends_merges_sections_and_replaces_values_and_lists(tmp_path):
    path = _file(tmp_path, "fast-nucleo", f"""\
        name: fast-nucleo
        extends: nucleo-l4r5zi
        clock_hz: {NUMBER % 80000000}
        isa: [dsp]
        memory:
          sram_bytes: {NUMBER % 131072}
        latency:
          cycles_per_mac:
            conv: {NUMBER % 5.0}
        """)
    base, mine = targets.get("nucleo-l4r5zi"), targets.get(str(path))
    assert mine.name == "fast-nucleo" and mine.title == base.title
    assert mine.clock_hz == 80_000_000 and mine.sources["clock_hz"] == "test"
    assert mine.isa == ("dsp",)
    # Sections merge key by key: the rest of memory and latency is inherited with its sources.
    assert mine.memory.sram_bytes == 131072
    assert mine.memory.flash_bytes == base.memory.flash_bytes
    assert mine.sources["memory.flash_bytes"] == base.sources["memory.flash_bytes"]
    assert mine.latency.cycles_per_mac == {**base.latency.cycles_per_mac, "conv": 5.0}
    assert mine.latency.threads == base.latency.threads
    assert mine.runtime == base.runtime and mine.cores == base.cores
    assert mine.extends == (str(BUILTIN / "nucleo-l4r5zi.yaml"),
                            str(BUILTIN / "_cortex-m4f.yaml"))


def test_runtimes_merge_id_by_id_and_keep_the_targets_other_constants(tmp_path):
    path = _file(tmp_path, "my-nucleo", f"""\
        name: my-nucleo
        extends: nucleo-l4r5zi
        runtimes:
          microtvm-cmsis-nn-2022:
            latency:
              cycles_per_mac:
                conv: {NUMBER % 3.0}
          tflm-cmsis-nn-2024:
            name: tflm
            kernels: cmsis-nn
            version: {{value: "TFLM 2024", source: "my build"}}
            latency:
              cycles_per_op: {NUMBER % 500}
        """)
    mine, base = targets.get(str(path)), targets.get("nucleo-l4r5zi")
    assert mine.runtime_ids == ("tflm-cmsis-nn-2020", "microtvm-cmsis-nn-2022",
                                "onnc-cmsis-nn-2023", "tflm-cmsis-nn-2024")
    tvm = mine.runtimes["microtvm-cmsis-nn-2022"]
    assert tvm.runtime == base.runtimes["microtvm-cmsis-nn-2022"].runtime
    assert tvm.latency.cycles_per_mac == {**base.runtimes["microtvm-cmsis-nn-2022"].latency
                                          .cycles_per_mac, "conv": 3.0}
    new = mine.with_runtime("tflm-cmsis-nn-2024")
    assert new.latency.cycles_per_op == 500 and new.sources["latency.cycles_per_op"] == "test"
    assert new.latency.cycles_per_mac == base.latency.cycles_per_mac
    assert new.sources["latency.cycles_per_mac.conv"] == base.sources["latency.cycles_per_mac.conv"]
    assert new.runtime.version == "TFLM 2024" and new.sources["runtime.version"] == "my build"


@pytest.mark.parametrize("entry, fragments", [
    ("Bad_Id: {name: tflm}", ["runtimes.Bad_Id", "lower-case"]),
    ("x: {name: tflm, latency: {bogus: 1}}", ["runtimes.x.latency.bogus", "unknown field"]),
    ("x: {name: tflm, latency: {cycles_per_op: 5}}", ["runtimes.x.latency.cycles_per_op",
                                                     "without a source"]),
    ("x: {kernels: cmsis-nn}", ["runtimes.x.name", "missing field"]),
    ("tflm-cmsis-nn-2020: {name: tflm}", ["runtimes.tflm-cmsis-nn-2020", "runtime: itself"]),
])
def test_bad_runtimes_entries_name_the_field(tmp_path, entry, fragments):
    path = _file(tmp_path, "odd", f"name: odd\nextends: nucleo-l4r5zi\nruntimes: {{{entry}}}\n")
    _one_line_error(path, *fragments)


def test_a_value_with_its_source_is_replaced_whole(tmp_path):
    path = _file(tmp_path, "b", """\
        name: b
        extends: nucleo-l4r5zi
        clock_hz: {value: 80000000}
        """)
    # The base's source must not stick to a value it never described.
    _one_line_error(path, f"{path}: clock_hz.source: missing source")


def test_name_is_not_inherited(tmp_path):
    path = _file(tmp_path, "nameless", "extends: nucleo-l4r5zi\n")
    _one_line_error(path, f"{path}: name: missing field")


def test_an_error_inside_a_base_names_the_base(tmp_path):
    _file(tmp_path, "_base", f"""\
        extends: nucleo-l4r5zi
        latency:
          turbo: {NUMBER % 1}
        """)
    path = _file(tmp_path, "board", "name: board\nextends: _base\n")
    _one_line_error(path, f"{tmp_path / '_base.yaml'}: latency.turbo: unknown field")
    _file(tmp_path, "_base", "extends: nucleo-l4r5zi\nkind: laptop\n")
    _one_line_error(path, f"{tmp_path / '_base.yaml'}: kind: expected one of mcu")


def test_missing_field_names_the_extending_file(tmp_path):
    path = _file(tmp_path, "half", "name: half\nextends: _cortex-m4f\ntitle: Half a board\n")
    _one_line_error(path, f"{path}: processor: missing field")


@pytest.mark.parametrize("extends, fragment", [
    ("nowhere-board", "extends: no target or base named 'nowhere-board' (looked in"),
    ("../absent.yaml", "extends: no such file"),
    ("[1, 2]", "extends: expected the name of a target or base"),
])
def test_missing_base(tmp_path, extends, fragment):
    path = _file(tmp_path, "board", f"name: board\nextends: {extends}\n")
    _one_line_error(path, f"{path}: {fragment}")


def test_extends_cycles(tmp_path):
    a = _file(tmp_path, "a", "name: a\nextends: b\n")
    _file(tmp_path, "b", "name: b\nextends: c.yaml\n")
    _file(tmp_path, "c", "name: c\nextends: a\n")
    _one_line_error(a, f"{tmp_path / 'c.yaml'}: extends: cycle: {a} -> ", "-> " + str(a))
    itself = _file(tmp_path, "self", "name: self\nextends: ./self.yaml\n")
    _one_line_error(itself, f"{itself}: extends: cycle: {itself} -> ")


def test_abstract_bases_are_not_targets(tmp_path, monkeypatch):
    names = targets.target_files()
    assert not [n for n in names if n.startswith("_")]
    assert (BUILTIN / "_cortex-m4f.yaml").is_file()
    _one_line_error(BUILTIN / "_cortex-m4f.yaml", "an abstract base (its name starts with _)")
    _one_line_error("_cortex-m4f", "unknown target '_cortex-m4f'")
    _file(tmp_path, "_mine", "kind: mcu\n")
    monkeypatch.setenv(targets.ENV_VAR, str(tmp_path))
    assert "_mine" not in targets.target_files()


def test_user_directory_file_extends_a_builtin_base_and_target(tmp_path, monkeypatch):
    _file(tmp_path, "my-m4", f"""\
        name: my-m4
        extends: _cortex-m4f
        title: My Cortex-M4F board
        processor: STM32F411
        clock_hz: {NUMBER % 100000000}
        memory:
          sram_bytes: {NUMBER % 131072}
          flash_bytes: {NUMBER % 524288}
          reserved_flash_bytes: {NUMBER % 65536}
          reserved_ram_bytes: {NUMBER % 16384}
        """)
    _file(tmp_path, "my-pi", f"name: my-pi\nextends: raspberry-pi-4\nclock_hz: {NUMBER % 1.8e9}\n")
    monkeypatch.setenv(targets.ENV_VAR, str(tmp_path))
    names = [t.name for t in targets.list_targets()]
    assert {"my-m4", "my-pi", "nucleo-l4r5zi"} <= set(names)
    m4, pi = targets.get("my-m4"), targets.get("my-pi")
    assert m4.latency == targets.get("nucleo-l4r5zi").latency and m4.runtime.kernels == "cmsis-nn"
    assert pi.clock_hz == 1_800_000_000 and pi.kind == "sbc"
    assert pi.latency == targets.get("raspberry-pi-4").latency


def test_a_user_file_can_extend_the_builtin_it_shadows(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _file(first, "pixel-4", f"name: pixel-4\nextends: pixel-4\nclock_hz: {NUMBER % 2.84e9}\n")
    _file(second, "pixel-4", f"""\
        name: pixel-4
        extends: pixel-4
        latency:
          threads: {NUMBER % 2}
        """)
    monkeypatch.setenv(targets.ENV_VAR, os.pathsep.join([str(first), str(second)]))
    pixel = targets.get("pixel-4")
    # first -> second -> built-in, each lookup starting after the file's own directory.
    assert pixel.clock_hz == 2_840_000_000 and pixel.latency.threads == 2
    assert pixel.latency.cycles_per_mac["conv"] == 0.0851
    assert pixel.extends[0] == str(second / "pixel-4.yaml")
    # Given by path, a file outside every directory also finds the next one of its name.
    lone = _file(tmp_path, "pixel-4", "name: pixel-4\nextends: pixel-4\n")
    assert targets.get(str(lone)).extends[0] == str(first / "pixel-4.yaml")


def test_resolve_tells_which_file_set_each_field():
    data, origins, bases = resolve(BUILTIN / "nano-33-ble-sense.yaml")
    assert origins["latency.cycles_per_mac.conv"] == str(BUILTIN / "_cortex-m4f.yaml")
    assert origins["clock_hz"] == str(BUILTIN / "nano-33-ble-sense.yaml")
    assert origins["runtime.version"] == str(BUILTIN / "nano-33-ble-sense.yaml")
    assert data["runtime"]["kernels"] == "cmsis-nn" and "extends" not in data
    assert bases == (str(BUILTIN / "_cortex-m4f.yaml"),)


# --- defaults and auto -------------------------------------------------------


def test_optional_fields_take_their_defaults(tmp_path):
    path = _file(tmp_path, "minimal", f"""\
        name: minimal
        title: A board with only the required fields
        kind: mcu
        processor: Cortex-M4F
        clock_hz: {NUMBER % 48000000}
        memory:
          sram_bytes: {NUMBER % 65536}
          flash_bytes: {NUMBER % 262144}
          reserved_flash_bytes: {NUMBER % 0}
          reserved_ram_bytes: {NUMBER % 0}
        runtime: {{name: tflm}}
        latency:
          cycles_per_mac: {{conv: {NUMBER % 7}, depthwise: {NUMBER % 27},
                            fully_connected: {NUMBER % 5}}}
          cycles_per_element: {NUMBER % 54}
          cycles_per_op: {NUMBER % 1000}
          float_slowdown: {NUMBER % 4.6}
        """)
    t = targets.get(str(path))
    assert t.cores == () and t.core_count is None and t.isa == () and t.npu is None
    assert t.runtime == targets.Runtime("tflm", "reference", None)
    assert t.latency.threads == 1 and t.sources["latency.threads"] == "default: one thread"
    assert t.memory.dram_bytes is None and t.ram_bytes == 65536
    assert t.flash is None


def test_flash_section_is_inherited_and_checked(tmp_path):
    pi = targets.get("raspberry-pi-4")
    assert pi.flash == targets.FlashSetup("ssh", "raspberrypi.local", "python3")
    mine = _file(tmp_path, "my-pi", "name: my-pi\nextends: raspberry-pi-4\n"
                                    "flash: {device: pi@10.0.0.7}\n")
    assert targets.get(str(mine)).flash == targets.FlashSetup("ssh", "pi@10.0.0.7", "python3")
    assert targets.get(str(mine)).to_dict()["flash"]["device"] == "pi@10.0.0.7"
    odd = _file(tmp_path, "odd", "name: odd\nextends: raspberry-pi-4\nflash: {method: ftp}\n")
    _one_line_error(odd, f"{odd}: flash.method", "ftp")
    extra = _file(tmp_path, "extra", "name: extra\nextends: raspberry-pi-4\n"
                                     "flash: {password: hunter2}\n")
    _one_line_error(extra, f"{extra}: flash.password", "unknown")


def _walk(fields, prefix=""):
    for key, spec in fields.items():
        here = f"{prefix}.{key}" if prefix else key
        if isinstance(spec, Section):
            yield from _walk(spec.fields, here)
        elif isinstance(spec, Items):
            yield from _walk(spec.fields, here + "[]")
        elif isinstance(spec, Keyed):
            yield from _walk(spec.fields, here + ".<id>")
        else:
            yield here, spec


def test_every_auto_field_has_a_measurer_and_the_host_measures():
    auto = {field for field, spec in _walk(schema.SCHEMA) if getattr(spec, "auto", False)}
    assert auto == set(_host.MEASURES)
    assert all(isinstance(s, Num | Text | Words) for _, s in _walk(schema.SCHEMA))
    host = targets.get("host")
    assert host.kind == "host" and host.clock_hz > 0 and host.ram_bytes > 0
    assert host.latency.threads == 1 <= host.core_count
    assert _host.measure("latency.threads")[0] == len(os.sched_getaffinity(0))
    assert host.sources["clock_hz"].startswith("measured at load: ")
    assert 0 <= host.model_ram_bytes <= host.ram_bytes


ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b
"""


def test_auto_reads_an_arm_cpuinfo(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text(ARM_CPUINFO)
    (tmp_path / "cpu0" / "cpufreq").mkdir(parents=True)
    (tmp_path / "cpu0" / "cpufreq" / "cpuinfo_max_freq").write_text("2400000\n")
    monkeypatch.setattr(_host, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(_host, "CPUFREQ", tmp_path)
    assert _host.measure("isa")[0] == ["dotprod", "fp16", "fpu", "neon"]
    assert _host.measure("clock_hz")[0] == 2_400_000_000
    assert "part 0xd0b" in _host.measure("processor")[0]


def test_auto_that_cannot_be_measured_is_a_clean_error(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\n")
    monkeypatch.setattr(_host, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(_host, "CPUFREQ", tmp_path / "none")
    with pytest.raises(Unmeasurable, match="no cpufreq"):
        _host.measure("clock_hz")
    text = _one_line_error("host", "host.yaml: processor: 'auto' cannot be measured on this "
                                   "machine", "write the value in a copy of this file")
    assert text.startswith(str(BUILTIN / "host.yaml"))


def test_all_leaves_out_a_host_it_cannot_measure(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgedistill.cli import main

    monkeypatch.setattr(_host, "CPUINFO", tmp_path / "no-proc" / "cpuinfo")
    with pytest.warns(UserWarning, match=r"target host left out: .*host.yaml: processor: "
                                         r"'auto' cannot be measured .*no-proc/cpuinfo"):
        chosen = targets.select(["all"])
    assert "host" not in {t.name for t in chosen} and "nucleo-l4r5zi" in {t.name for t in chosen}
    with pytest.raises(EdgeDistillError, match="cannot be measured"), pytest.warns(UserWarning):
        targets.select(["all", "host"])
    for args in (["targets", "list"],
                 ["profile", "--target", "all", str(mlperf_model("ad01_int8.tflite"))]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "Note: target host left out: " in result.stderr
        assert "nucleo-l4r5zi" in result.stdout and "host" not in result.stdout.split()


# --- fuzzing -----------------------------------------------------------------

JUNK = [None, True, 0, -1, 1.5, float("nan"), 10**30, "", "auto", "x\ny", [], [1], {}, {"value": 1},
        {"value": "auto", "source": "s"}, {"value": 2, "source": ""}, {"source": "s"},
        "1e9", {"value": [], "source": "s"}, ["dsp", "dsp"], {"extends": "x"}]


def _nodes(data, path=()):
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _nodes(value, (*path, i))


def _mutate(data, rng: random.Random):
    paths = [p for p in _nodes(data) if p]
    if not paths:
        return rng.choice(JUNK)
    *parents, last = rng.choice(paths)
    node = data
    for key in parents:
        node = node[key]
    action = rng.random()
    if action < 0.3 and isinstance(node, dict):
        del node[last]
    elif action < 0.4 and isinstance(node, dict):
        node[rng.choice(["turbo", 7, "name", "extends", "npu", "value"])] = rng.choice(JUNK)
    else:
        node[last] = rng.choice(JUNK)
    return data


def _text_mutation(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    choice = rng.random()
    if choice < 0.3:
        del lines[i]
    elif choice < 0.5:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif choice < 0.7:
        cut = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:cut] + rng.choice(["{", "}", ":", "- ", "&a", "*a", "'", "\t", "#"])
    else:
        lines[i] = lines[i].replace(rng.choice("0123456789"), rng.choice(["", "9" * 40, "-"]))
    return "\n".join(lines) + "\n"


def test_fuzzed_target_files_load_or_fail_in_one_line(tmp_path):
    """Mutations of every shipped file: a Target or a one-line EdgeDistillError, nothing else."""
    rng = random.Random(16)
    files = sorted(BUILTIN.glob("*.yaml"))
    outcomes = {"loaded": 0, "refused": 0}
    for n in range(600):
        source = rng.choice(files)
        text = source.read_text()
        if n % 2:
            data = yaml.safe_load(text)
            for _ in range(rng.randint(1, 3)):
                data = _mutate(data, rng)
            text = yaml.safe_dump(data) if not isinstance(data, float) else "nan\n"
        else:
            text = _text_mutation(text, rng)
        # Kept beside the built-ins' names so extends: _cortex-m4f and friends resolve.
        path = tmp_path / source.name.lstrip("_")
        path.write_text(text)
        try:
            targets.load_target_file(path)
            outcomes["loaded"] += 1
        except EdgeDistillError as exc:
            message = str(exc)
            assert message and "\n" not in message and len(message) < 2000, message
            assert "Traceback" not in message
            outcomes["refused"] += 1
    assert outcomes["loaded"] > 20 and outcomes["refused"] > 200, outcomes


def test_deeply_nested_yaml_is_refused_in_one_line(tmp_path):
    path = _file(tmp_path, "deep", "name: deep\nextends: nucleo-l4r5zi\ncores: "
                 + "[" * 3000 + "]" * 3000 + "\n")
    _one_line_error(path, f"{path}: nested too deeply for a target file")
