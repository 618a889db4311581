"""What decl reads from a local file, read once per run while the file stays the same.

Opening a connection to each of N hosts reads the same files N times: known_hosts (parsing
a big one costs ~70 ms per 1000 entries), the private keys (an encrypted one costs ~0.2 s of
CPU in its key derivation), ~/.ssh/config. A FileCache keeps each value with the file's
identity (inode, size, modification time): a file that changed since (a host key appended
by `accept_new_host_key`, a key replaced) is read again. One thread computes a value while
the others asking for the same key wait for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

Stamp = tuple[int, int, int] | None


def stamp(path: str) -> Stamp:
    """The file's identity now: (inode, size, mtime in ns), or None when it is not there."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


class FileCache:
    """Values computed from files, by key; each recomputed when its file changes."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._values: dict[Hashable, tuple[Stamp, Any]] = {}

    def get(self, key: Hashable, path: str, compute: Callable[[], Any]) -> Any:
        """The value for `key` computed from `path` (compute() is called again when the
        file's stamp differs from the one the kept value was computed with)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            now = stamp(path)
            kept = self._values.get(key)
            if kept is not None and now is not None and kept[0] == now:
                return kept[1]
            value = compute()
            self._values[key] = (now, value)
            return value

    def clear(self) -> None:
        """Forget every value."""
        with self._guard:
            self._values.clear()
