"""The host lock on a Windows host over SSH (`shell: powershell`): two decl processes (two
"machines", two state directories) apply one project to the same host through the tests'
sshd, whose ForceCommand plays Windows OpenSSH and runs the fake PowerShell. The lock is an
exclusive open (FileShare.None) held by a waiting PowerShell: the second decl is refused with
the holder named; the lock is free again when the first ends or is killed."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from decl.connections.hostlock import HostLock
from decl.connections.ssh import SshConnection
from decl.errors import LockHeldError
from decl.manifest.model import Host
from tests.e2e.test_host_lock import _apply_once_the_lock_is_free, _wait_for_holder
from tests.fakes.windows.harness import FAKES_BIN, FakeWindows
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.backend("sshd")

SHIM = os.path.join(FAKES_BIN, "pwsh-sshd-shim")
LOCAL_APP_DATA = "C:\\Users\\lab\\AppData\\Local"


@pytest.fixture
def winbox(tmp_path, sshd_factory):  # noqa: F811
    """(fake Windows host, manifest host entry, the holder file as the fake keeps it)."""
    fake = FakeWindows(tmp_path / "remote-windows.json")
    env = {"DECL_FAKE_WINDOWS_STATE": str(fake.path), "PATH": f"{FAKES_BIN}:/usr/bin:/bin",
           "LOCALAPPDATA": LOCAL_APP_DATA, "USERPROFILE": "C:\\Users\\lab",
           # each PowerShell call takes as long as a real one's start-up: the apply lasts
           "DECL_FAKE_WINDOWS_LATENCY": "0.3"}
    command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    server = sshd_factory(force_command=f"{command} {shlex.quote(SHIM)}")
    holder = (Path(str(fake.path) + ".d") / "drives" / "c" / "users" / "lab" / "appdata" /
              "local" / "decl" / "locks" / "lab.holder")
    return fake, server.manifest_host(shell="powershell"), holder


def _manifest(tmp_path: Path, host: dict) -> str:
    path = tmp_path / "decl.yaml"
    path.write_text(json.dumps({
        "version": 1, "project": "lab", "hosts": {"winbox": host},
        "vms": {"web": {"provider": "hyperv", "host": "winbox", "cpus": 2, "memory": "1GiB",
                        "disks": [{"size": "2GiB"}]}}}))
    return str(path)


def _decl(args: list[str], state: Path) -> subprocess.Popen[str]:
    """decl on this machine, which has no PowerShell: only the SSH side has one."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FAKES_BIN]
    env = {**os.environ, "DECL_STATE_DIR": str(state), "NO_COLOR": "1",
           "PATH": os.pathsep.join(path), "DECL_FAKE_WINDOWS_STATE": "/nonexistent"}
    return subprocess.Popen([sys.executable, "-m", "decl", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_second_decl_is_refused_with_the_holder_named(tmp_path, winbox):
    fake, host, holder_file = winbox
    manifest = _manifest(tmp_path, host)
    first = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-a")
    try:
        holder = _wait_for_holder(holder_file, timeout=60)
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        second = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-b")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 1, out + err
        assert (f"host winbox is locked for project lab by pid {first.pid} on "
                f"{socket.gethostname()} since {holder['started']} (decl apply -y -f "
                f"{manifest}); wait for it to finish") in err, err
        assert "Traceback" not in err
        out, err = first.communicate(timeout=180)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
    assert [vm["Name"] for vm in fake.load()["hyperv"]["vms"]] == ["web"]  # made once
    assert holder_file.read_text() == ""  # released: the holder is cleared
    third = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-b")
    out, err = third.communicate(timeout=180)
    assert third.returncode == 0 and "No changes." in out, out + err


def test_the_lock_is_free_once_the_holder_is_killed(tmp_path, winbox):
    fake, host, holder_file = winbox
    manifest = _manifest(tmp_path, host)
    first = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-a")
    _wait_for_holder(holder_file, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    # The connection closed with decl: sshd ends the session, the waiting PowerShell ends,
    # and with it its handle: the exclusive open is gone.
    code, out, err = _apply_once_the_lock_is_free(_decl, manifest, tmp_path / "machine-b",
                                                  "lab", within=30)
    assert code == 0, out + err
    assert [vm["Name"] for vm in fake.load()["hyperv"]["vms"]] == ["web"]


def test_holder_connections_exclude_each_other(winbox):
    """Two connections, HostLock directly: refused while held, free after release."""
    _, host, holder_file = winbox
    one = SshConnection.open("winbox", Host(**host))
    two = SshConnection.open("winbox", Host(**host))
    try:
        holder = {"pid": 1, "host": "machine-a", "started": "then",
                  "command": "decl apply -f 'o\"neil'.yaml"}
        held = HostLock(one, "lab", holder)
        held.acquire()
        assert json.loads(holder_file.read_text()) == holder  # quotes passed unchanged
        with pytest.raises(LockHeldError,
                           match=r"host winbox is locked for project lab by pid 1 on "
                                 r"machine-a since then \(decl apply"):
            HostLock(two, "lab", {"pid": 2}).acquire()
        held.release()
        assert holder_file.read_text() == ""
        again = HostLock(two, "lab", {"pid": 2, "host": "b", "started": "now", "command": "x"})
        again.acquire()
        assert json.loads(holder_file.read_text())["pid"] == 2
        again.release()
    finally:
        one.close()
        two.close()
