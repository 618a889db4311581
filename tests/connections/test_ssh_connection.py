"""SshConnection against a real sshd on 127.0.0.1 (tests/sshd.py)."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time
from pathlib import Path

import pytest

from decl.connections.base import CommandTimeout
from decl.connections.pool import ConnectionPool
from decl.connections.probe import ping
from decl.connections.ssh import SshConnection
from decl.errors import ConnectionFailed
from decl.manifest.model import Host
from tests.sshd import keygen, sshd, sshd_factory, start_sshd, write_known_hosts  # noqa: F401

pytestmark = pytest.mark.backend("sshd")


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    """Only the keys a test names are offered (no agent of the developer's)."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("DECL_SSH_CONFIG", "")


@pytest.fixture(scope="module")
def conn(sshd):  # noqa: F811
    connection = SshConnection.open("box", Host(**sshd.manifest_host()))
    yield connection
    connection.close()


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie (nobody may reap it in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def accepted_logins(server) -> int:
    return server.log().count("Accepted publickey")


# -- commands ---------------------------------------------------------------------------------


def test_exit_code_and_streams_are_kept_apart(conn):
    result = conn.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert conn.run(["false"]).returncode == 1
    missing = conn.run(["decl-no-such-program"])
    assert missing.returncode == 127 and b"not found" in missing.stderr


def test_input_and_large_output(conn):
    data = os.urandom(3_000_000)
    result = conn.run(["cat"], input=data)
    assert result.ok and result.stdout == data


def test_hostile_values_reach_the_command_intact_and_run_nothing(conn, tmp_path):
    canary = tmp_path / "canary"
    values = [
        "with space", "it's", 'dq "x"', f"$(touch {canary})", f"`touch {canary}`",
        f"; touch {canary}", f"&& touch {canary}", "line1\nline2", "$HOME", "*", "~", "",
        "\u2019curly\u2019", "-e",
    ]
    result = conn.run(["printf", "%s\\0", *values])
    assert result.ok, result.err
    assert result.stdout.split(b"\0")[:-1] == [v.encode() for v in values]
    odd_dir = tmp_path / "d 'q' $(touch canary) `touch canary` ;x"
    odd_dir.mkdir()
    result = conn.run(["sh", "-c", 'pwd; printf "%s" "$V"'], cwd=str(odd_dir),
                      env={"V": f"`touch {canary}`\n$(x)"})
    assert result.out == f"{odd_dir}\n`touch {canary}`\n$(x)"
    assert not canary.exists() and not (odd_dir / "canary").exists()


def test_commands_run_in_the_c_locale_unless_told_otherwise(conn):
    assert conn.run(["sh", "-c", 'echo "$LC_ALL"']).out == "C\n"
    assert conn.run(["sh", "-c", 'echo "$LC_ALL"'], env={"LC_ALL": "C.UTF-8"}).out == "C.UTF-8\n"


def test_a_timeout_kills_the_remote_command_and_its_children(conn, tmp_path):
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match="did not finish within 0.5 s on host box"):
        conn.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=0.5)
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    for _ in range(50):
        if not running(child):
            break
        time.sleep(0.05)
    assert not running(child), "the remote sleep survived the timeout"
    assert conn.run(["echo", "still usable"]).out == "still usable\n"


def test_many_threads_share_one_connection(sshd, conn):  # noqa: F811
    before = accepted_logins(sshd)
    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda i: conn.run(["sh", "-c", f"sleep 0.2; echo {i}"]),
                                range(24)))
    assert [r.out for r in results] == [f"{i}\n" for i in range(24)]
    assert accepted_logins(sshd) == before  # no new login: the transport was reused


# -- files ------------------------------------------------------------------------------------


def test_files_over_sftp(conn, tmp_path):
    target = tmp_path / "a b" / "c" / "file.txt"
    conn.makedirs(str(target.parent))
    conn.makedirs(str(target.parent))  # exists: fine
    conn.write_file(str(target), b"one", mode=0o640)
    assert target.read_bytes() == b"one"
    assert target.stat().st_mode & 0o777 == 0o640
    conn.write_file(str(target), b"two")
    assert conn.read_file(str(target)) == b"two"
    assert sorted(os.listdir(target.parent)) == ["file.txt"]  # no temporary left behind
    assert conn.exists(str(target)) and not conn.exists(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError):
        conn.read_file(str(tmp_path / "nope"))
    local = tmp_path / "local.bin"
    local.write_bytes(os.urandom(200_000))
    conn.upload(str(local), str(tmp_path / "up.bin"))
    conn.download(str(tmp_path / "up.bin"), str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == local.read_bytes()
    conn.remove(str(target))
    conn.remove(str(target))  # absent: fine
    assert not target.exists()


def test_expand_user_asks_the_remote_home(conn):
    home = os.path.expanduser("~")  # the tests log in as themselves
    assert conn.expand_user("~") == home
    assert conn.expand_user("~/.venvs/x") == os.path.join(home, ".venvs/x")
    assert conn.expand_user("/abs/~") == "/abs/~"
    assert conn.which("sh") and conn.which("decl-no-such-program") is None


# -- host keys --------------------------------------------------------------------------------


def test_unknown_host_key_is_refused_with_how_to_trust_it(sshd, tmp_path):  # noqa: F811
    known = tmp_path / "known_hosts"
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**sshd.manifest_host(known_hosts=str(known))))
    error = caught.value
    assert error.kind == "host key unknown"
    assert f"[127.0.0.1]:{sshd.port}" in error.detail
    assert "SHA256:" in error.detail and "accept_new_host_key: true" in error.detail
    assert "ssh-keygen -lf" in error.detail
    assert not known.exists()


def test_accept_new_host_key_records_it_then_checks_it(sshd, tmp_path):  # noqa: F811
    known = tmp_path / "sub" / "known_hosts"
    first = SshConnection.open(
        "box", Host(**sshd.manifest_host(known_hosts=str(known), accept_new_host_key=True)))
    assert first.run(["true"]).ok
    first.close()
    keytype, key = sshd.host_public_key.split()[:2]
    assert known.read_text() == f"[127.0.0.1]:{sshd.port} {keytype} {key}\n"
    again = SshConnection.open("box", Host(**sshd.manifest_host(known_hosts=str(known))))
    assert again.run(["true"]).ok
    again.close()
    assert known.read_text().count("\n") == 1


def test_a_changed_host_key_is_always_refused(sshd_factory, tmp_path):  # noqa: F811
    server = sshd_factory()
    known = tmp_path / "known_hosts"
    SshConnection.open("box", Host(**server.manifest_host(
        known_hosts=str(known), accept_new_host_key=True))).close()
    recorded = known.read_text()
    port = server.port
    server.stop()
    impostor = sshd_factory(port=port, client_key=server.identity_file)  # new host key
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**impostor.manifest_host(
            known_hosts=str(known), accept_new_host_key=True)))
    assert caught.value.kind == "host key mismatch"
    assert "HOST KEY HAS CHANGED" in caught.value.detail
    assert f"ssh-keygen -R '[127.0.0.1]:{port}'" in caught.value.detail
    assert known.read_text() == recorded  # nothing added or replaced


def test_a_key_of_another_type_counts_as_a_change(sshd, tmp_path):  # noqa: F811
    ecdsa = tmp_path / "ecdsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True)
    keytype, key = ecdsa.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {keytype} {key}\n")
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**sshd.manifest_host(
            known_hosts=str(known), accept_new_host_key=True)))
    assert caught.value.kind == "host key mismatch"


# -- authentication ---------------------------------------------------------------------------


def test_a_wrong_client_key_is_refused_clearly(sshd, tmp_path):  # noqa: F811
    wrong = keygen(tmp_path / "wrong")
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**sshd.manifest_host(identity_file=str(wrong))))
    error = caught.value
    assert error.kind == "authentication failed"
    assert str(wrong) in error.detail and "authorized_keys" in error.detail
    assert str(error).startswith("host box: authentication failed: ")


def test_a_missing_identity_file_is_named(sshd, tmp_path):  # noqa: F811
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**sshd.manifest_host(
            identity_file=str(tmp_path / "absent"))))
    assert caught.value.kind == "authentication failed"
    assert f"identity file {tmp_path / 'absent'} not found" in caught.value.detail


def test_an_encrypted_key_with_its_passphrase_from_the_environment(
        sshd_factory, tmp_path, monkeypatch):  # noqa: F811
    secret = "s3cret pass'phrase"
    key = keygen(tmp_path / "locked", passphrase=secret)
    server = sshd_factory(client_key=key)
    host = server.manifest_host(identity_passphrase_env="DECL_TEST_KEY_PASS")
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**host))
    assert caught.value.kind == "authentication failed"
    assert "DECL_TEST_KEY_PASS" in caught.value.detail and "not set" in caught.value.detail
    monkeypatch.setenv("DECL_TEST_KEY_PASS", "wrong")
    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("box", Host(**host))
    assert "wrong passphrase" in caught.value.detail and "wrong" not in caught.value.host
    monkeypatch.setenv("DECL_TEST_KEY_PASS", secret)
    connection = SshConnection.open("box", Host(**host))
    assert connection.run(["true"]).ok
    connection.close()
    assert secret not in caught.value.detail


def test_many_hosts_read_the_key_and_known_hosts_once(sshd_factory, tmp_path,  # noqa: F811
                                                      monkeypatch):
    """An encrypted key costs ~0.2 s of CPU to load and a big known_hosts ~70 ms per 1000
    lines to parse: N hosts of one run load each file once, not N times."""
    import paramiko

    key = keygen(tmp_path / "locked", passphrase="pass")
    server = sshd_factory(client_key=key)
    known = tmp_path / "known_hosts"
    known.write_text(Path(server.known_hosts).read_text())
    monkeypatch.setenv("DECL_TEST_KEY_PASS", "pass")
    loads, parses = [], []
    from_path, load = paramiko.PKey.from_path, paramiko.HostKeys.load
    monkeypatch.setattr(paramiko.PKey, "from_path",
                        staticmethod(lambda *a, **k: loads.append(a[0]) or from_path(*a, **k)))
    monkeypatch.setattr(paramiko.HostKeys, "load",
                        lambda self, name: parses.append(name) or load(self, name))
    hosts = [Host(**server.manifest_host(known_hosts=str(known),
                                         identity_passphrase_env="DECL_TEST_KEY_PASS"))
             for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as workers:
        connections = list(workers.map(lambda h: SshConnection.open("box", h), hosts))
    assert all(c.run(["true"]).ok for c in connections)
    for connection in connections:
        connection.close()
    assert (loads, parses) == ([str(key)], [str(known)])
    # A file that changes is read again: a new line in known_hosts (another host's key).
    with open(known, "a") as handle:
        handle.write("other.example ssh-ed25519 " + server.host_public_key.split()[1] + "\n")
    SshConnection.open("box", hosts[0]).close()
    assert parses == [str(known)] * 2 and len(loads) == 1


# -- reaching the host ------------------------------------------------------------------------


def test_a_closed_port_is_unreachable(sshd):  # noqa: F811
    from tests.sshd import free_port

    with pytest.raises(ConnectionFailed) as caught:
        SshConnection.open("gone", Host(**sshd.manifest_host(port=free_port())))
    assert caught.value.kind == "unreachable"
    assert "refused" in caught.value.detail.lower()


def test_through_a_jump_host(sshd, sshd_factory, tmp_path):  # noqa: F811
    inner = sshd_factory(client_key=sshd.identity_file)
    known = tmp_path / "known_hosts"
    known.write_text(Path(sshd.known_hosts).read_text() + Path(inner.known_hosts).read_text())
    host = Host(**inner.manifest_host(known_hosts=str(known),
                                      proxy_jump=f"{sshd.user}@127.0.0.1:{sshd.port}"))
    before = accepted_logins(sshd)
    connection = SshConnection.open("inner", host)
    assert connection.run(["echo", "hi"]).out == "hi\n"
    connection.close()
    assert accepted_logins(sshd) == before + 1
    assert "direct-tcpip" in sshd.log() or "Connection from" in inner.log()


def test_hosts_behind_one_jump_host_share_one_login_on_it(sshd, sshd_factory, tmp_path):  # noqa: F811
    """Six hosts discovered at once through one bastion: one login there (not six, which
    would meet sshd's MaxStartups), a channel per host; the last host's close ends it."""
    from decl.connections.ssh_jumps import JUMPS

    inner = sshd_factory(client_key=sshd.identity_file)
    known = tmp_path / "known_hosts"
    known.write_text(Path(sshd.known_hosts).read_text() + Path(inner.known_hosts).read_text())
    host = Host(**inner.manifest_host(known_hosts=str(known),
                                      proxy_jump=f"{sshd.user}@127.0.0.1:{sshd.port}"))
    jump_before, inner_before = accepted_logins(sshd), accepted_logins(inner)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        connections = list(pool.map(lambda i: SshConnection.open(f"inner{i}", host), range(6)))
        outputs = list(pool.map(lambda c: c.run(["echo", "hi"]).out, connections))
    assert outputs == ["hi\n"] * 6
    assert accepted_logins(sshd) == jump_before + 1
    assert accepted_logins(inner) == inner_before + 6
    assert JUMPS.open_count() == 1
    for connection in connections[:-1]:
        connection.close()
    assert connections[-1].run(["echo", "still"]).out == "still\n"  # the bastion stays up
    connections[-1].close()
    assert JUMPS.open_count() == 0
    again = SshConnection.open("inner-again", host)  # a later host logs in there anew
    assert again.run(["true"]).ok
    again.close()
    assert accepted_logins(sshd) == jump_before + 2


def test_the_users_ssh_config_is_read(sshd, tmp_path, monkeypatch):  # noqa: F811
    config = tmp_path / "ssh_config"
    config.write_text(f"Host labbox\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
                      f"  User {sshd.user}\n  IdentityFile {sshd.identity_file}\n")
    monkeypatch.setenv("DECL_SSH_CONFIG", str(config))
    connection = SshConnection.open("labbox", Host(known_hosts=sshd.known_hosts))
    assert connection.run(["true"]).ok
    connection.close()


def test_a_dropped_connection_fails_the_command_then_reconnects(sshd_factory, tmp_path):  # noqa: F811
    server = sshd_factory()
    connection = SshConnection.open("box", Host(**server.manifest_host()))
    port, key, host_key = server.port, server.identity_file, server.host_key
    futures = concurrent.futures.ThreadPoolExecutor(1)
    running = futures.submit(connection.run, ["sleep", "30"])
    time.sleep(0.3)
    server.kill_sessions()
    with pytest.raises(ConnectionFailed) as caught:
        running.result(timeout=10)
    assert caught.value.kind == "unreachable" and "lost" in caught.value.detail
    with pytest.raises(ConnectionFailed) as caught:
        connection.run(["true"])
    assert caught.value.kind == "unreachable"
    back = sshd_factory(port=port, client_key=key, host_key=host_key)
    write_known_hosts(back, server.known_hosts)
    assert connection.run(["echo", "back"]).out == "back\n"
    connection.close()
    futures.shutdown()


# -- pool and ping ----------------------------------------------------------------------------


def test_pool_keeps_one_connection_per_host_and_ping_reports_each(sshd, sshd_factory):  # noqa: F811
    second = sshd_factory()
    from tests.sshd import free_port

    hosts = {
        "one": Host(**sshd.manifest_host()),
        "two": Host(**second.manifest_host()),
        "down": Host(**sshd.manifest_host(port=free_port())),
    }
    pool = ConnectionPool(hosts)
    try:
        assert pool.get("one") is pool.get("one")
        results = {r.host: r for r in ping(pool, ["one", "two", "down", "local"])}
        assert results["one"].reachable and results["two"].reachable
        assert results["one"].target == f"{sshd.user}@127.0.0.1:{sshd.port}"
        assert results["one"].os and results["one"].os.startswith("Linux")
        assert results["one"].python and results["one"].python[0] == "3"
        assert results["one"].rtt_ms is not None
        assert not results["down"].reachable and results["down"].kind == "unreachable"
        assert results["local"].reachable
        with pytest.raises(ConnectionFailed):
            pool.get("down")
    finally:
        pool.close()


def test_start_sshd_helper_writes_a_usable_known_hosts(tmp_path):
    server = start_sshd(tmp_path / "s", extra_config=["MaxSessions 3"])
    try:
        keytype = server.host_public_key.split()[0]
        assert Path(server.known_hosts).read_text().startswith(
            f"[127.0.0.1]:{server.port} {keytype} ")
        assert server.manifest_host()["port"] == server.port
        assert "MaxSessions 3" in (server.directory / "sshd_config").read_text()
    finally:
        server.stop()
    assert not server.alive()
