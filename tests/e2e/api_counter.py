"""A counting proxy for the Docker Engine API: a unix socket that forwards every byte to the
engine's socket and records the request line of every HTTP request that goes through.

Point DOCKER_HOST at `proxy.url` for the process under test only: the other tests' calls
(and the test's own checks) go to the engine directly and are not counted.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
from collections import Counter

_ID = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"^/v\d+\.\d+")


def route(method: str, target: str) -> str:
    """'POST /v1.45/containers/<64 hex>/start?x=1' -> 'POST /containers/{id}/start'."""
    path = _VERSION.sub("", target.split("?", 1)[0])
    path = _ID.sub("{id}", path)
    return f"{method} {path}"


class _RequestParser:
    """Finds request lines in a client's byte stream (keep-alive, Content-Length or chunked
    bodies), without changing a byte."""

    def __init__(self, record) -> None:
        self.record = record
        self.buffer = b""
        self.body_left = 0
        self.chunked = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.body_left:
                taken = min(self.body_left, len(self.buffer))
                self.buffer = self.buffer[taken:]
                self.body_left -= taken
                if self.body_left:
                    return
            if self.chunked:
                line_end = self.buffer.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(self.buffer[:line_end].split(b";")[0] or b"0", 16)
                self.buffer = self.buffer[line_end + 2:]
                if size == 0:
                    self.chunked = False
                    self.body_left = 2  # the empty trailer line
                else:
                    self.body_left = size + 2
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            self.buffer = self.buffer[end + 4:]
            method, target = head[0].split(" ")[:2]
            self.record(route(method, target))
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in head[1:])}
            self.body_left = int(headers.get("content-length") or 0)
            self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"


class ApiCounter:
    """A unix-socket proxy to a Docker engine that counts the requests through it."""

    def __init__(self, engine_socket: str) -> None:
        self.engine_socket = engine_socket
        self.directory = tempfile.mkdtemp(prefix="decl-api-", dir="/tmp")
        self.path = os.path.join(self.directory, "proxy.sock")
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(128)
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """DOCKER_HOST for the process whose calls are counted."""
        return f"unix://{self.path}"

    def reset(self) -> Counter[str]:
        """The calls counted so far (the counter starts again from zero)."""
        with self._lock:
            calls, self.calls = self.calls, Counter()
        return calls

    def _record(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine_socket)
            parser = _RequestParser(self._record)
            threading.Thread(target=self._pump, args=(client, upstream, parser),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None),
                             daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, parser: _RequestParser | None) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if parser is not None:
                    parser.feed(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()  # each socket is the source of one pump: closed once

    def close(self) -> None:
        """Stop accepting and remove the socket."""
        self._stopped = True
        self._server.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.directory)
        except OSError:
            pass
