"""Two decl processes (two "machines": two state directories) applying one project to the same
host over SSH: the second is refused with the holder named; the lock drops when the holder
finishes or dies (the connection closes)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from decl.connections.hostlock import HostLock
from decl.connections.ssh import SshConnection
from decl.errors import LockHeldError
from decl.manifest.model import Host
from tests.e2e.crash_helpers import processes_mentioning, wait_for_no_tools
from tests.e2e.venv_helpers import CLEAN_PIP_ENV
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.backend("sshd")

SLOW_PYTHON = f"""#!/bin/sh
# A Python that takes its time to make a venv, so that the first apply holds the host lock.
case " $* " in *" -m venv "*) sleep "${{SLOW_SECONDS:-6}}";; esac
exec {sys.executable} "$@"
"""


@pytest.fixture
def box(tmp_path, sshd_factory):  # noqa: F811
    remote_state = tmp_path / "remote-state"
    server = sshd_factory(env={"DECL_STATE_DIR": str(remote_state)})
    return server, remote_state


def _manifest(tmp_path: pathlib.Path, server) -> str:
    slow = tmp_path / "slowpython"
    slow.write_text(SLOW_PYTHON)
    slow.chmod(0o755)
    path = tmp_path / "decl.yaml"
    path.write_text(json.dumps({
        "version": 1, "project": "hostlock", "hosts": {"box": server.manifest_host()},
        "venvs": {"v": {"host": "box", "path": str(tmp_path / "venv"), "python": str(slow),
                        "backend": "venv", "pip": False,
                        # the slow wrapper is not the venv's interpreter: only a means to wait
                        "lifecycle": {"ignore_changes": ["python"]}}}}))
    return str(path)


def _decl(args: list[str], state: pathlib.Path) -> subprocess.Popen[str]:
    env = {**os.environ, **CLEAN_PIP_ENV, "DECL_STATE_DIR": str(state), "NO_COLOR": "1"}
    env = {k: v for k, v in env.items() if v != "" or not k.startswith(("PIP_", "UV_"))}
    return subprocess.Popen([sys.executable, "-m", "decl", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_holder(lock_file: pathlib.Path, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_file.exists() and lock_file.read_text().strip():
            return json.loads(lock_file.read_text())
        time.sleep(0.05)
    raise AssertionError("the first apply never took the host lock")


def _apply_once_the_lock_is_free(start, manifest: str, state: pathlib.Path, project: str,
                                 within: float) -> tuple[int, str, str]:
    """`decl apply` from `state` (started by `start`, a `_decl`), again every 0.5 s while it
    is refused because the host is locked for `project`, for `within` seconds: the last
    return code and output."""
    deadline = time.monotonic() + within
    while True:
        second = start(["apply", "-y", "-f", manifest], state)
        out, err = second.communicate(timeout=180)
        if second.returncode == 0 or time.monotonic() > deadline:
            return second.returncode, out, err
        assert f"is locked for project {project}" in err, out + err
        time.sleep(0.5)


def test_second_machine_is_refused_with_the_holder_named(tmp_path, box):
    server, remote_state = box
    manifest = _manifest(tmp_path, server)
    lock_file = remote_state / "locks" / "hostlock.lock"
    first = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-a")
    try:
        holder = _wait_for_holder(lock_file)
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        second = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-b")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 1, out + err
        assert (f"host box is locked for project hostlock by pid {first.pid} on "
                f"{socket.gethostname()} since {holder['started']} (decl apply -y -f "
                f"{manifest}); wait for it to finish") in err
        assert "Traceback" not in err
        out, err = first.communicate(timeout=180)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
    assert lock_file.read_text() == ""  # released: the holder is cleared
    third = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-b")
    out, err = third.communicate(timeout=180)
    assert third.returncode == 0 and "No changes." in out, out + err


def test_the_lock_drops_when_the_holder_is_killed(tmp_path, box):
    server, remote_state = box
    manifest = _manifest(tmp_path, server)
    first = _decl(["apply", "-y", "-f", manifest], tmp_path / "machine-a")
    _wait_for_holder(remote_state / "locks" / "hostlock.lock")
    # The remote `python -m venv` has started (it sleeps first): it must not outlive decl.
    deadline = time.monotonic() + 30
    while not processes_mentioning(f"{tmp_path}/slowpython") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_mentioning(f"{tmp_path}/slowpython")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert wait_for_no_tools(f"{tmp_path}/slowpython") == []
    assert not (tmp_path / "venv").exists()
    time.sleep(7)  # the remote command slept 6 s before making the venv: it never does
    assert not (tmp_path / "venv").exists()
    # The connection closed with decl: sshd ends the session, the lock holder exits.
    code, out, err = _apply_once_the_lock_is_free(_decl, manifest, tmp_path / "machine-b",
                                                  "hostlock", within=20)
    assert code == 0, out + err


@pytest.mark.parametrize(("first", "second"), [("auto", "perl"), ("perl", "auto"),
                                               ("perl", "perl")])
def test_flock_and_perl_holders_exclude_each_other(box, first, second):
    server, remote_state = box
    one = SshConnection.open("box", Host(**server.manifest_host()))
    two = SshConnection.open("box", Host(**server.manifest_host()))
    try:
        holder = {"pid": 1, "host": "machine-a", "started": "then", "command": "decl apply"}
        held = HostLock(one, "p", holder, method=first)
        held.acquire()
        assert json.loads((remote_state / "locks" / "p.lock").read_text()) == holder
        with pytest.raises(LockHeldError,
                           match=r"host box is locked for project p by pid 1 on machine-a "
                                 r"since then \(decl apply\)"):
            HostLock(two, "p", {"pid": 2}, method=second).acquire()
        held.release()
        again = HostLock(two, "p", {"pid": 2, "host": "b", "started": "now", "command": "x"},
                         method=second)
        again.acquire()
        again.release()
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize("method", ["auto", "perl"])
def test_the_holder_kills_remote_commands_when_the_connection_drops(box, tmp_path, method):
    server, _ = box
    conn = SshConnection.open("box", Host(**server.manifest_host()))
    marker = str(tmp_path / "still-running")
    held = HostLock(conn, "p", {"pid": 1, "host": "a", "started": "t", "command": "c"},
                    method=method)
    held.acquire()
    import threading

    worker = threading.Thread(target=lambda: _quietly(conn.run, [
        "sh", "-c", f"sleep 5; touch {marker}"]), daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while not processes_mentioning(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_mentioning(marker)
    conn._transport.sock.close()  # the connection drops, as when decl is killed
    assert wait_for_no_tools(marker) == []
    time.sleep(6)
    assert not os.path.exists(marker)
    conn.close()


def _quietly(function, *args):
    try:
        function(*args)
    except Exception:  # noqa: BLE001 - the connection is dropped on purpose
        pass


def test_a_host_whose_state_dir_cannot_be_made_locks_in_its_temporary_dir(
        tmp_path, sshd_factory):  # noqa: F811
    temp = tmp_path / "remote-tmp"
    temp.mkdir()
    server = sshd_factory(env={"DECL_STATE_DIR": "/proc/decl-cannot-be-here",
                               "TMPDIR": str(temp)})
    one = SshConnection.open("box", Host(**server.manifest_host()))
    two = SshConnection.open("box", Host(**server.manifest_host()))
    try:
        held = HostLock(one, "p", {"pid": 1, "host": "a", "started": "t", "command": "c"})
        held.acquire()
        lock_dir = temp / f"decl-{os.getuid()}" / "locks"
        assert (lock_dir / "p.lock").exists()
        assert oct(os.stat(lock_dir.parent).st_mode & 0o777) == "0o700"
        with pytest.raises(LockHeldError, match="by pid 1 on a since t"):
            HostLock(two, "p", {"pid": 2}).acquire()
        held.release()
    finally:
        one.close()
        two.close()


def test_release_all_lets_every_host_go_before_it_returns(tmp_path, sshd_factory):  # noqa: F811
    """The locks of an apply are released together: each holder is told, then awaited, so
    that when release_all returns every lock file is cleared and free to take."""
    from decl.connections.hostlock import release_all

    hosts = []
    for name in ("a", "b", "c"):
        state = tmp_path / f"state-{name}"
        server = sshd_factory(env={"DECL_STATE_DIR": str(state)})
        hosts.append((SshConnection.open(name, Host(**server.manifest_host())), state))
    holder = {"pid": os.getpid(), "host": "this", "started": "now", "command": "test"}
    try:
        locks = [HostLock(conn, "many", holder) for conn, _ in hosts]
        for lock in locks:
            lock.acquire()
        for _, state in hosts:
            assert json.loads((state / "locks" / "many.lock").read_text()) == holder
        release_all(locks)
        for _, state in hosts:
            assert (state / "locks" / "many.lock").read_text() == ""
        other = {**holder, "pid": os.getpid() + 1}
        again = [HostLock(conn, "many", other) for conn, _ in hosts]
        for lock in again:
            lock.acquire()  # free: no LockHeldError
        release_all(again)
    finally:
        for conn, _ in hosts:
            conn.close()


def test_a_host_locked_by_another_decl_stops_the_apply_and_frees_the_others(
        tmp_path, sshd_factory):  # noqa: F811
    """Hosts are locked in parallel after the first: one found held fails the apply with its
    holder named, and the locks taken on the other hosts are released, nothing changed."""
    hosts, states = {}, {}
    for name in ("a", "b", "c"):
        states[name] = tmp_path / f"state-{name}"
        server = sshd_factory(env={"DECL_STATE_DIR": str(states[name])})
        hosts[name] = server.manifest_host()
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({
        "version": 1, "project": "fleetlock", "hosts": hosts,
        "venvs": {f"v{name}": {"host": name, "path": str(tmp_path / f"venv-{name}"),
                               "python": sys.executable, "backend": "venv", "pip": False}
                  for name in hosts}}))
    held_by = {"pid": 1, "host": "machine-x", "started": "then", "command": "decl apply"}
    conn = SshConnection.open("b", Host(**hosts["b"]))
    held = HostLock(conn, "fleetlock", held_by)
    held.acquire()
    try:
        run = _decl(["apply", "-y", "-f", str(manifest)], tmp_path / "machine-a")
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, out + err
        assert ("host b is locked for project fleetlock by pid 1 on machine-x since then "
                "(decl apply)") in err
        for name in ("a", "c"):
            assert (states[name] / "locks" / "fleetlock.lock").read_text() == ""
        assert not any((tmp_path / f"venv-{name}").exists() for name in hosts)
    finally:
        held.release()
        conn.close()
    run = _decl(["apply", "-y", "-f", str(manifest)], tmp_path / "machine-a")
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, out + err
    assert all((tmp_path / f"venv-{name}").is_dir() for name in hosts)


def test_a_lock_whose_holder_on_this_machine_has_ended_is_waited_for(box):
    """`apply` then `destroy` in a row: the first decl has exited but its host side has not
    let go yet. A holder naming a decl of this machine whose process has ended is waited for
    (the lock is taken once it drops); a holder that still runs is refused at once."""
    server, _ = box
    one = SshConnection.open("box", Host(**server.manifest_host()))
    two = SshConnection.open("box", Host(**server.manifest_host()))
    ended = subprocess.Popen(["true"])
    ended.wait()
    try:
        held = HostLock(one, "p", {"pid": ended.pid, "host": socket.gethostname(),
                                   "started": "t", "command": "decl apply"})
        held.acquire()
        running = HostLock(two, "p", {"pid": 2, "host": "b", "started": "t", "command": "c"})
        started = time.monotonic()
        with pytest.raises(LockHeldError):
            running.acquire(ended=lambda pid: False)  # its holder still runs: no waiting
        assert time.monotonic() - started < 10
        import threading

        threading.Timer(1.0, held.release).start()
        running.acquire()  # the holder has ended: waited for until the lock dropped
        running.release()
    finally:
        one.close()
        two.close()
