"""`decl ping`: is each host reachable, how fast does it answer, what does it run.

Hosts are probed in parallel through the shared pool, so a probe also opens the connection
that later work reuses. An unreachable host gives its reason (the ConnectionFailed kind:
unreachable, timeout, authentication failed, host key unknown, host key mismatch).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from decl.connections.base import Connection
from decl.errors import ConnectionFailed, DeclError

PROBE_TIMEOUT = 15.0
_PY_VERSION = "import platform; print(platform.python_version())"


@dataclass(frozen=True)
class PingResult:
    """One host's answer (or why there was none)."""

    host: str
    reachable: bool
    target: str = ""
    kind: str | None = None
    detail: str = ""
    connect_ms: float | None = None
    rtt_ms: float | None = None
    os: str | None = None
    python: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return asdict(self)


def _target(conn: Connection | None, host: str) -> str:
    target = getattr(conn, "target", None)
    if target is not None and hasattr(target, "label"):
        return str(target.label)
    return "local" if host == "local" else host


def _describe(conn: Connection, python: str) -> tuple[str | None, str | None]:
    """(OS, Python version) of the host; None for what cannot be told."""
    if conn.shell == "powershell":
        os_result = conn.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
                              "[Environment]::OSVersion.VersionString"], timeout=PROBE_TIMEOUT)
        py_result = conn.run([python, "-c", _PY_VERSION], timeout=PROBE_TIMEOUT)
        os_name = os_result.out.strip() or None if os_result.ok else None
        py = py_result.out.strip() or None if py_result.ok else None
        return os_name, py
    result = conn.run(
        ["sh", "-c", 'uname -srm; "$1" -c "$2" 2>/dev/null || echo', "sh", python, _PY_VERSION],
        timeout=PROBE_TIMEOUT,
    )
    lines = result.out.splitlines() + ["", ""]
    return lines[0].strip() or None, lines[1].strip() or None


def ping_one(pool: Any, host: str) -> PingResult:
    """Connect (or reuse the connection), time one round trip, ask the OS and Python."""
    started = time.monotonic()
    conn: Connection | None = None
    try:
        conn = pool.get(host)
        connected = time.monotonic()
        probe = ["cmd.exe", "/d", "/c", "exit 0"] if conn.shell == "powershell" else ["true"]
        conn.run(probe, timeout=PROBE_TIMEOUT)
        answered = time.monotonic()
        config = getattr(conn, "config", None)
        python = getattr(config, "python", None) or "python3"
        os_name, py = _describe(conn, python)
    except ConnectionFailed as exc:
        return PingResult(host, False, _target(conn, host), exc.kind, exc.detail)
    except DeclError as exc:
        return PingResult(host, False, _target(conn, host), "error", str(exc))
    return PingResult(
        host, True, _target(conn, host),
        connect_ms=round((connected - started) * 1000, 1),
        rtt_ms=round((answered - connected) * 1000, 1),
        os=os_name, python=py,
    )


def ping(pool: Any, host_names: Sequence[str], workers: int = 8) -> list[PingResult]:
    """Probe every host in parallel; results in the order of `host_names`."""
    names = list(dict.fromkeys(host_names))
    if not names:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(names))) as ex:
        return list(ex.map(lambda name: ping_one(pool, name), names))
