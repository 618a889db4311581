"""A QMP client: JSON lines over a VM's unix socket.

The protocol: the server greets (`{"QMP": ...}`), the client sends `qmp_capabilities`, then
each command gets one `{"return": ...}` or `{"error": ...}` line; asynchronous
`{"event": ...}` lines may come in between and are skipped.

The same code serves a local VM (in this process) and a VM on a host reached over SSH,
where it runs as `python3 -c SOURCE SOCKET COMMANDS_JSON` (the socket path and commands are
argv items, never pasted into the program text).
"""

from __future__ import annotations

import json
from typing import Any

from decl.connections.base import Connection
from decl.errors import ProviderError

# Runs as it is on the VM's host; depends on nothing but the standard library.
SOURCE = r'''
import json, os, socket, sys, time

def qmp_exchange(path, commands, timeout=10.0):
    """Send commands over QMP; a list of {"return": ...} or {"error": ...}."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    dirfd = None
    try:
        target = path
        if len(path.encode()) > 100:
            dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
            target = "/proc/self/fd/%d/%s" % (dirfd, os.path.basename(path))
        sock.connect(target)
        stream = sock.makefile("rwb")

        def receive():
            while True:
                line = stream.readline()
                if not line:
                    raise ConnectionError("QMP connection closed")
                message = json.loads(line)
                if "event" in message:
                    continue
                return message

        def send(name, arguments=None):
            payload = {"execute": name}
            if arguments:
                payload["arguments"] = arguments
            stream.write(json.dumps(payload).encode() + b"\n")
            stream.flush()
            return receive()

        greeting = receive()
        if "QMP" not in greeting:
            raise ConnectionError("not a QMP server")
        ready = send("qmp_capabilities")
        if "error" in ready:
            raise ConnectionError(str(ready["error"]))
        replies = []
        for command in commands:
            name, arguments = command[0], (command[1] if len(command) > 1 else None)
            try:
                replies.append(send(name, arguments))
            except ConnectionError:
                if name == "quit":
                    replies.append({"return": {}})
                    break
                raise
        return replies
    finally:
        sock.close()
        if dirfd is not None:
            os.close(dirfd)

if __name__ == "__main__":
    try:
        result = qmp_exchange(sys.argv[1], json.loads(sys.argv[2]))
    except (OSError, ValueError, ConnectionError) as exc:
        sys.stderr.write("QMP: %s: %s\n" % (type(exc).__name__, exc))
        sys.exit(3)
    sys.stdout.write(json.dumps(result))
'''

_namespace: dict[str, Any] = {"__name__": "decl_qmp"}
exec(compile(SOURCE, "<decl qmp>", "exec"), _namespace)  # noqa: S102 - our own constant
_exchange = _namespace["qmp_exchange"]

Command = tuple[str, dict[str, Any] | None]


class QmpError(ProviderError):
    """QMP did not answer, or a command failed."""


def execute(conn: Connection, socket_path: str, commands: list[Command],
            timeout: float = 10.0) -> list[dict[str, Any]]:
    """Run QMP commands against a VM on the connection's host; one reply per command."""
    wire = [[name, arguments] for name, arguments in commands]
    if conn.is_local:
        try:
            return list(_exchange(socket_path, wire, timeout))
        except (OSError, ValueError, ConnectionError) as exc:
            raise QmpError(f"QMP at {socket_path}: {type(exc).__name__}: {exc}") from None
    python = getattr(conn.config, "python", None) or "python3"
    result = conn.run([python, "-c", SOURCE, socket_path, json.dumps(wire)],
                      timeout=timeout + 20)
    if not result.ok:
        raise QmpError(f"QMP at {socket_path} on host {conn.host}: "
                       f"{result.err.strip() or result.out.strip()}")
    try:
        return list(json.loads(result.out))
    except ValueError:
        raise QmpError(f"QMP at {socket_path} on host {conn.host}: unreadable reply") from None


def value(reply: dict[str, Any], what: str) -> Any:
    """The `return` of a reply; QmpError with QMP's words when it is an error."""
    if "error" in reply:
        error = reply["error"]
        raise QmpError(f"QMP {what} failed: {error.get('desc', error)}")
    return reply.get("return")
