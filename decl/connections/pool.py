"""One connection per host, opened on first use and shared by every provider."""

from __future__ import annotations

import threading
from typing import Any

from decl.connections.base import Connection
from decl.connections.local import LocalConnection
from decl.errors import ConnectionFailed


class ConnectionPool:
    """Connections by host name; `local` is always there. A failed host stays failed."""

    def __init__(self, hosts: dict[str, Any] | None = None) -> None:
        self.hosts = dict(hosts or {})
        self._connections: dict[str, Connection] = {}
        self._failures: dict[str, ConnectionFailed] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, host: str) -> Connection:
        """The connection to `host`, opening it on first use (ConnectionFailed if it can't)."""
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:
            if host in self._connections:
                return self._connections[host]
            if host in self._failures:
                raise self._failures[host]
            try:
                connection = self._open(host)
            except ConnectionFailed as exc:
                self._failures[host] = exc
                raise
            self._connections[host] = connection
            return connection

    def _open(self, host: str) -> Connection:
        config = self.hosts.get(host)
        if host == "local":
            shell = getattr(config, "shell", "posix") if config is not None else "posix"
            connection = LocalConnection("local", shell)
            connection.config = config
            return connection
        try:
            from decl.connections.ssh import SshConnection
        except ImportError as exc:  # pragma: no cover - ssh module ships with decl
            raise ConnectionFailed(host, "unavailable", f"SSH support failed to load: {exc}") \
                from None
        return SshConnection.open(host, config)

    def close(self) -> None:
        """Close every open connection."""
        for connection in self._connections.values():
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._connections.clear()
