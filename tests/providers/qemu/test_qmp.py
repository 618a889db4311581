"""The QMP client against a scripted QMP server on a unix socket (events in between)."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading

import pytest

from decl.connections.local import LocalConnection
from decl.providers.qemu import qmp


def serve(path: str, answers: dict, seen: list) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        stream = conn.makefile("rwb")
        stream.write(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
        stream.flush()
        for line in stream:
            command = json.loads(line)
            seen.append(command)
            name = command["execute"]
            stream.write(b'{"event": "RESUME", "timestamp": {}}\r\n')
            stream.write(json.dumps(answers.get(name, {"return": {}})).encode() + b"\r\n")
            stream.flush()
            if name == "quit":
                break
        conn.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_commands_and_replies_skip_events():
    directory = tempfile.mkdtemp(prefix="qmp-", dir="/tmp")
    path = os.path.join(directory, "qmp.sock")
    seen: list = []
    serve(path, {"query-status": {"return": {"status": "running", "running": True}},
                 "query-kvm": {"return": {"enabled": False, "present": True}},
                 "cont": {"error": {"class": "GenericError", "desc": "nope"}}}, seen)
    replies = qmp.execute(LocalConnection(), path, [("query-status", None), ("query-kvm", None),
                                                    ("block_resize", {"device": "vda",
                                                                      "size": 5}),
                                                    ("cont", None)])
    assert qmp.value(replies[0], "query-status")["status"] == "running"
    assert replies[1]["return"]["enabled"] is False
    assert seen[0] == {"execute": "qmp_capabilities"}
    assert seen[3] == {"execute": "block_resize", "arguments": {"device": "vda", "size": 5}}
    with pytest.raises(qmp.QmpError, match="nope"):
        qmp.value(replies[3], "cont")


def test_long_socket_paths_are_reached_through_the_directory():
    directory = tempfile.mkdtemp(prefix="qmp-", dir="/tmp")
    deep = os.path.join(directory, "d" * 60, "e" * 60)
    os.makedirs(deep)
    path = os.path.join(deep, "qmp.sock")
    cwd = os.getcwd()
    os.chdir(deep)
    try:
        seen: list = []
        serve("qmp.sock", {}, seen)
    finally:
        os.chdir(cwd)
    assert len(path) > 108
    replies = qmp.execute(LocalConnection(), path, [("query-status", None)])
    assert replies == [{"return": {}}]


def test_no_server_is_a_clear_error():
    with pytest.raises(qmp.QmpError, match="QMP at /nonexistent/qmp.sock"):
        qmp.execute(LocalConnection(), "/nonexistent/qmp.sock", [("query-status", None)])


class RemoteLike(LocalConnection):
    """A local connection that says it is remote: QMP then runs as `python3 -c SOURCE`."""

    is_local = False


def test_remote_hosts_run_the_same_client_as_a_program():
    directory = tempfile.mkdtemp(prefix="qmp-", dir="/tmp")
    path = os.path.join(directory, "qmp.sock")
    seen: list = []
    serve(path, {"query-status": {"return": {"status": "paused"}}}, seen)
    replies = qmp.execute(RemoteLike(), path, [("query-status", None)])
    assert replies == [{"return": {"status": "paused"}}]
    with pytest.raises(qmp.QmpError, match="on host local"):
        qmp.execute(RemoteLike(), "/nonexistent/qmp.sock", [("query-status", None)])
