"""flash over SSH, end to end, against a real sshd on 127.0.0.1 with throwaway keys.

The "device" is this machine: sshd (Debian's openssh-server, which CI installs)
runs as the test user on a free port, with its own host key and an authorized
key made here, and the runner on the device uses this Python, which has
ai_edge_litert. ssh is pointed at a config file of its own (``-F``), so the
user's ~/.ssh is never read or written.
"""

from __future__ import annotations

import getpass
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import mlperf_model, strict_json
from report_checks import assert_matches_schema, check_every_format

from edgedistill.cli import main
from edgedistill.errors import EdgeDistillError
from edgedistill.flash import flash
from edgedistill.flash.commands import Runner
from edgedistill.flash.ssh import MODEL_NAME, RUNNER_NAME, SshSession, runner_source
from edgedistill.reports.flash import flash_report

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh")),
                                reason="needs openssh-server and openssh-client")
MODEL = mlperf_model("kws_ref_model.tflite")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f",
                    str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


class Device:
    """A running sshd and the ssh config that reaches it as host ``device``."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, _free_port()
        self.host_key = _keygen(root / "host_key")
        _keygen(root / "user_key")
        (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nPermitRootLogin prohibit-password\n")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                                        stderr=open(root / "sshd.log", "wb"))
        self.known_hosts = root / "known_hosts"
        self.trust(self.host_key)
        self.config = root / "ssh_config"
        self.config.write_text(
            f"Host device\n  HostName 127.0.0.1\n  Port {self.port}\n  User {getpass.getuser()}\n"
            f"  IdentityFile {root / 'user_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  StrictHostKeyChecking yes\n"
            f"  GlobalKnownHostsFile /dev/null\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()}")

    def trust(self, key: str) -> None:
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {key}\n")

    def target(self, extra: str = "") -> Path:
        path = self.root / "test-pi.yaml"
        python = json.dumps(sys.executable)
        path.write_text(f"name: test-pi\nextends: raspberry-pi-4\n"
                        f"flash: {{method: ssh, device: device, python: {python}}}\n" + extra)
        return path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    d = Device(tmp_path_factory.mktemp("device"))
    yield d
    d.stop()


def _work_dirs() -> set[str]:
    return set(glob.glob("/tmp/edgedistill.*"))


def test_flash_times_the_model_on_the_device_and_cleans_up(device):
    before = _work_dirs()
    result = flash(MODEL, device.target(), ssh_config=device.config, runs=5, warmup=1)
    m = result.measured
    assert m is not None and m.runtime == "ai_edge_litert on device" and m.runs == 5
    assert 0 < m.min_ms <= m.median_ms <= m.p90_ms and m.threads == 4
    assert result.peak_rss_bytes > result.model_rss_bytes > 0
    assert result.fit.measured == m and result.estimate_error > -1
    assert [c.what.split()[0] for c in result.commands] == ["make", "copy", "copy", "time",
                                                            "remove"]
    assert _work_dirs() == before
    out = check_every_format(flash_report(result), "flash")
    data = json.loads(out["json"])
    assert data["measured"]["median_ms"] == m.median_ms and data["kept_dir"] is None
    assert "estimate" in out["md"] and "above the measurement" in out["md"] or \
        "below the measurement" in out["md"]


def test_keep_leaves_the_model_and_runner(device):
    result = flash(MODEL, device.target(), ssh_config=device.config, runs=2, warmup=0,
                   keep=True)
    kept = Path(result.kept_dir)
    try:
        assert (kept / MODEL_NAME).read_bytes() == MODEL.read_bytes()
        assert (kept / RUNNER_NAME).read_bytes() == runner_source().read_bytes()
    finally:
        shutil.rmtree(kept)


def test_a_damaged_copy_is_detected(device):
    session = SshSession("device", Runner(), ssh_config=device.config)
    work = Path(session.make_work_dir())
    try:
        session.upload(runner_source(), RUNNER_NAME)
        session.upload(MODEL, MODEL_NAME)
        with open(work / MODEL_NAME, "r+b") as f:  # one byte flipped on the "device"
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 1]))
        sha = __import__("hashlib").sha256(MODEL.read_bytes()).hexdigest()
        with pytest.raises(EdgeDistillError, match=r"^device: the model on the device has "
                                                   r"sha256 [0-9a-f]{64}, not " + sha):
            session.time_model(sha, sys.executable, 1, 0, 1)
    finally:
        session.cleanup()
    assert not work.exists()


def test_a_wrong_host_key_is_refused(device, tmp_path):
    other = _keygen(tmp_path / "other")
    device.trust(other)
    try:
        with pytest.raises(EdgeDistillError, match="host key is not the one in known_hosts"):
            flash(MODEL, device.target(), ssh_config=device.config, runs=1)
        result = CliRunner().invoke(main, ["flash", str(MODEL), "--target",
                                           str(device.target()), "--ssh-config",
                                           str(device.config)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "host key is not the one in known_hosts" in result.stderr
        device.known_hosts.write_text("")
        with pytest.raises(EdgeDistillError, match="host key is not in known_hosts"):
            flash(MODEL, device.target(), ssh_config=device.config, runs=1)
    finally:
        device.trust(device.host_key)


def test_a_hostile_file_name_is_passed_safely(device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hostile = tmp_path / "a b;$(touch PWNED)`touch PWNED2`'\"x\n.tflite"
    shutil.copy(MODEL, hostile)
    result = flash(hostile, device.target(), ssh_config=device.config, runs=2, warmup=0)
    assert result.measured.runs == 2
    home = Path.home()
    for place in (tmp_path, home, Path("/tmp")):
        assert not list(place.glob("PWNED*")), place


def test_a_device_that_does_not_answer_times_out(device):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    config = device.root / "silent_config"
    config.write_text(f"Host silent\n  HostName 127.0.0.1\n  Port {silent.getsockname()[1]}\n")
    start = time.monotonic()
    try:
        with pytest.raises(EdgeDistillError, match=r"^silent: .*(no answer within|timed out)"):
            flash(MODEL, device.target(), device="silent", ssh_config=config, timeout_s=2)
    finally:
        silent.close()
    assert time.monotonic() - start < 15


def test_a_model_that_does_not_fit_is_refused_unless_forced(device):
    # 1 KiB of RAM left beside the 1 GiB the base reserves: kws's arena does not fit.
    small = device.target("memory: {dram_bytes: {value: 1073742848, source: test}}\n")
    with pytest.raises(EdgeDistillError, match=r"will not fit on test-pi \(ram: .*short by"):
        flash(MODEL, small, ssh_config=device.config)
    result = flash(MODEL, small, ssh_config=device.config, force=True, dry_run=True)
    assert result.dry_run and result.measured is None
    assert_matches_schema("flash", strict_json(flash_report(result).render("json")))


def test_dry_run_prints_every_command_and_runs_none(tmp_path):
    hostile = tmp_path / "my model;rm -rf ~.tflite"
    shutil.copy(MODEL, hostile)
    printed = []
    result = flash(hostile, "raspberry-pi-4", device="pi@nowhere.invalid", dry_run=True,
                   echo=printed.append)
    assert result.measured is None and len(result.commands) == 5
    text = "\n".join(printed)
    assert "ssh -o BatchMode=yes" in text and "pi@nowhere.invalid" in text
    # Host keys are checked as the user's configuration says: never turned off.
    assert "StrictHostKeyChecking" not in text and "UserKnownHostsFile" not in text
    assert f"< '{hostile}'" in text  # quoted as one argument
    cli = CliRunner().invoke(main, ["flash", str(hostile), "--target", "raspberry-pi-4",
                                    "--device", "pi@nowhere.invalid", "--dry-run"])
    assert cli.exit_code == 0, cli.output
    assert "mktemp -d" in cli.output and "rm -rf --" in cli.output


def test_cli_flash_reports_the_measurement_beside_the_estimate(device, tmp_path):
    report = tmp_path / "flash.json"
    result = CliRunner().invoke(main, ["flash", str(MODEL), "--target", str(device.target()),
                                       "--ssh-config", str(device.config), "--runs", "3",
                                       "--warmup", "1", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "measured" in result.stdout and "estimate" in result.stdout
    data = json.loads(report.read_text())
    assert data["measured"]["runs"] == 3 and data["estimate_error"] is not None
    assert data["profile"]["targets"][0]["measured"]["median_ms"] == data["measured"]["median_ms"]
