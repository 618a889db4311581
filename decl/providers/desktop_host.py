"""Facts of a desktop hypervisor's host that the VirtualBox and VMware providers share: its
operating system and where a tool is (on PATH, else its install location)."""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Callable, Mapping
from typing import Any


def system_from_uname(text: str) -> str:
    """platform.system()'s word from `uname -s` output (Darwin, Linux...)."""
    word = text.strip().splitlines()[0].strip() if text.strip() else ""
    if word.startswith(("CYGWIN", "MINGW", "MSYS")):
        return "Windows"
    return word or "Linux"


class HostSystems:
    """The OS of each host, asked once per connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str], Any] = {}

    def _cached(self, conn: Any, key: str, compute: Callable[[], Any]) -> Any:
        slot = (id(conn), key)
        with self._lock:
            if slot in self._cache:
                return self._cache[slot]
        value = compute()
        with self._lock:
            self._cache[slot] = value
        return value

    def system(self, conn: Any) -> str:
        """Windows, Darwin or Linux (platform.system()'s words) of the connection's host."""
        def compute() -> str:
            if getattr(conn, "shell", "posix") == "powershell":
                return "Windows"
            if getattr(conn, "is_local", False):
                return platform.system()
            result = conn.run(["uname", "-s"], timeout=30)
            return system_from_uname(result.out) if result.ok else "Linux"
        return str(self._cached(conn, "system", compute))

    def tool(self, conn: Any, name: str,
             locations: Callable[[str, Mapping[str, str]], list[str]]) -> str | None:
        """A tool's path: on PATH, else the first of its install locations that exists."""
        def compute() -> str | None:
            found = conn.which(name)
            if found:
                return str(found)
            system = self.system(conn)
            env: Mapping[str, str] = os.environ if getattr(conn, "is_local", False) else {}
            for path in locations(system, env):
                if conn.exists(path):
                    return path
            return None
        return self._cached(conn, "tool:" + name, compute)  # type: ignore[no-any-return]
