"""A command's EOF or signal that reaches sshd after the channel's CLOSE would make sshd drop
the whole connection ("ieof packet referred to nonexistent channel N"), failing every other
command on it. These tests force that interleaving (which load makes happen now and then:
paramiko's transport thread answers the server's CLOSE while a decl thread is between
building its EOF and sending it) and check that every command still succeeds on the same
connection. Against a real sshd on 127.0.0.1 (tests/sshd.py)."""

from __future__ import annotations

import concurrent.futures
import logging
import struct
import threading
import time

import pytest
from paramiko.common import MSG_CHANNEL_CLOSE, MSG_CHANNEL_EOF

from decl.connections.ssh import SshConnection
from decl.connections.ssh_channels import send_signal
from decl.manifest.model import Host
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.backend("sshd")


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("DECL_SSH_CONFIG", "")


@pytest.fixture
def server(sshd_factory):  # noqa: F811 - a fixture of its own per test: its log is checked
    return sshd_factory()


def close_handled_events(transport) -> dict[int, threading.Event]:
    """Set, per local channel id, once the transport thread has handled the server's CLOSE."""
    events: dict[int, threading.Event] = {}
    table = dict(type(transport)._channel_handler_table)
    handler = table[MSG_CHANNEL_CLOSE]

    def handled(channel, message):
        handler(channel, message)
        events.setdefault(channel.chanid, threading.Event()).set()

    table[MSG_CHANNEL_CLOSE] = handled
    transport._channel_handler_table = table  # this transport only
    return events


def hold_eof_until_close_handled(transport, events: dict[int, threading.Event]) -> list[int]:
    """Send each channel's EOF only after the transport thread handled the server's CLOSE of
    that channel (the interleaving that load produces by chance); returns the held ids."""
    original = transport._send_user_message
    held: list[int] = []

    def send(message):
        data = message.asbytes()
        if data[0] == MSG_CHANNEL_EOF:
            remote_id = struct.unpack(">I", data[1:5])[0]
            local = [c.chanid for c in list(transport._channels.values())
                     if c.remote_chanid == remote_id]
            if local:
                held.append(local[0])
                events.setdefault(local[0], threading.Event()).wait(5)
        return original(message)

    transport._send_user_message = send
    return held


def test_an_eof_late_after_the_servers_close_keeps_the_connection(server):
    conn = SshConnection.open("box", Host(**server.manifest_host()))
    try:
        transport = conn._transport
        events = close_handled_events(transport)
        held = hold_eof_until_close_handled(transport, events)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            slow = pool.submit(conn.run, ["sh", "-c", "sleep 1.5; echo slow"])
            time.sleep(0.3)
            # Not a bare `echo`: under load sshd could answer EOF, exit and CLOSE before this
            # thread built its EOF, and then no EOF is sent at all (send_eof's other case),
            # so the interleaving this test forces would not happen for this channel.
            quick = conn.run(["sh", "-c", "sleep 0.4; echo quick"])
            slow_result = slow.result(timeout=30)
        assert (quick.returncode, quick.stdout) == (0, b"quick\n"), quick
        assert (slow_result.returncode, slow_result.stdout) == (0, b"slow\n"), slow_result
        assert len(held) == 2 and all(events[i].is_set() for i in held)
        after = conn.run(["echo", "after"])
        assert after.stdout == b"after\n"
        assert conn._transport is transport and transport.is_active()
    finally:
        conn.close()
    assert "nonexistent channel" not in server.log(), server.log()


def test_a_signal_for_a_closed_channel_is_not_sent(server):
    conn = SshConnection.open("box", Host(**server.manifest_host()))
    try:
        transport = conn._transport
        channel = transport.open_session(timeout=5)
        channel.exec_command("true")
        channel.shutdown_write()
        deadline = time.monotonic() + 10
        while not channel.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert channel.closed
        send_signal(channel, "TERM")  # sshd reads in order: before the next command's open
        assert conn.run(["echo", "ok"]).stdout == b"ok\n"
        assert conn._transport is transport and transport.is_active()
    finally:
        conn.close()
    assert "unknown channel" not in server.log(), server.log()


class _Refusals(logging.Handler):
    """Counts the channel opens the server refused (paramiko logs each one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "open FAILED" in record.getMessage():
            self.count += 1


def test_more_sessions_than_the_hosts_max_sessions_all_succeed(sshd_factory,  # noqa: F811
                                                              tmp_path):
    server = sshd_factory(extra_config=["MaxSessions 3"])  # stream, SFTP, one more
    refusals = _Refusals()
    logging.getLogger("paramiko").addHandler(refusals)
    conn = SshConnection.open("box", Host(**server.manifest_host()))
    try:
        stream = conn.exec_stream(["sh", "-c", "cat >/dev/null"])  # holds one session
        target = str(tmp_path / "written")
        with concurrent.futures.ThreadPoolExecutor(max_workers=7) as pool:
            runs = [pool.submit(conn.run, ["sh", "-c", f"sleep 0.3; echo {i}"])
                    for i in range(6)]
            write = pool.submit(conn.write_file, target, b"data")
            results = [run.result(timeout=60) for run in runs]
            write.result(timeout=60)
        assert [(r.returncode, r.stdout) for r in results] == [
            (0, f"{i}\n".encode()) for i in range(6)]
        assert conn.read_file(target) == b"data"
        stream.close()
    finally:
        conn.close()
        logging.getLogger("paramiko").removeHandler(refusals)
    assert refusals.count > 0  # the host did refuse sessions: its limit was in force
