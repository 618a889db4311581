"""Tools decl starts die with decl, even when decl is killed with SIGKILL.

Tools run in a session (POSIX) or process group (Windows) of their own, so the terminal's
Ctrl-C reaches only decl, which lets running changes finish (decl.platforms.spawn_options).
The price: they would outlive a decl that dies. So during an apply:

- a watchdog process (a few lines of Python, no decl import) reads "+PID" / "-PID" lines on
  a pipe from decl; when the pipe closes (decl exited or was killed, the kernel closes it
  either way) it kills every process group still listed, then exits;
- a listener (the journal) records each tool's pid with its start time, so the next run
  kills what a dead decl left when the watchdog could not (it was killed too): only when
  the pid's start time still matches (decl.connections.processes).

Outside an apply (plan, status) the reaper is off and costs nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from decl.platforms import WINDOWS, current_system, kill_command, spawn_options

WATCHDOG = r"""
import os, signal, subprocess, sys
try:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
except (AttributeError, ValueError):
    pass
alive = set()
for line in sys.stdin:
    line = line.strip()
    if line[:1] == "+":
        alive.add(int(line[1:]))
    elif line[:1] == "-":
        alive.discard(int(line[1:]))
for pid in sorted(alive):
    try:
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True)
        else:
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
"""

Listener = Callable[[str, int, list[str]], None]


class Reaper:
    """Keeps the list of running tools in a watchdog process and tells a listener."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._children: dict[int, list[str]] = {}
        self._pipe: IO[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._listener: Listener | None = None

    @property
    def enabled(self) -> bool:
        """Whether an apply is being watched."""
        return self._watchdog is not None

    def enable(self, listener: Listener | None = None) -> None:
        """Start the watchdog; `listener(event, pid, argv)` hears "started" and "ended"."""
        with self._guard:
            if self._watchdog is not None:
                self._listener = listener
                return
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                **spawn_options(current_system()),
            )
            self._pipe = self._watchdog.stdin
            self._listener = listener

    def disable(self) -> None:
        """Kill the tools still running, stop the watchdog."""
        with self._guard:
            for pid in list(self._children):
                kill_group(pid)
            self._children.clear()
            watchdog, pipe = self._watchdog, self._pipe
            self._watchdog = self._pipe = None
            self._listener = None
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
        if watchdog is not None:
            try:
                watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - the watchdog hangs
                watchdog.kill()

    def started(self, pid: int, argv: list[str]) -> None:
        """A tool started (call right after Popen)."""
        with self._guard:
            if self._watchdog is None:
                return
            self._children[pid] = argv
            self._send(f"+{pid}\n")
            listener = self._listener
        if listener is not None:
            listener("started", pid, argv)

    def ended(self, pid: int) -> None:
        """A tool ended (call after wait)."""
        with self._guard:
            if self._children.pop(pid, None) is None:
                return
            self._send(f"-{pid}\n")
            listener = self._listener
        if listener is not None:
            listener("ended", pid, [])

    def _send(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(line.encode())
            self._pipe.flush()
        except OSError:  # pragma: no cover - the watchdog died; the journal still knows
            pass


def kill_group(pid: int, system: str | None = None) -> None:
    """Kill a tool and everything in its process group (its tree on Windows)."""
    system = system or current_system()
    command = kill_command(system, pid)
    try:
        if command is not None:
            subprocess.run(command, capture_output=True, check=False, timeout=30)
        elif system != WINDOWS:
            import signal

            os.killpg(pid, getattr(signal, "SIGKILL", 9))
    except (OSError, subprocess.SubprocessError):
        pass


REAPER = Reaper()


def run_watched(argv: list[str], *, input: bytes | None, timeout: float | None,
                env: dict[str, str], cwd: str | None, system: str | None = None) -> Any:
    """subprocess.run for a tool: own session/group, listed with the reaper while it runs.

    Returns a CompletedProcess; raises subprocess.TimeoutExpired after killing the tool's
    whole group.
    """
    system = system or current_system()
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE if input is not None else None, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, cwd=cwd, **spawn_options(system),
    )
    REAPER.started(process.pid, argv)
    try:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process.pid, system)
            process.kill()
            process.communicate()
            raise
        except BaseException:
            kill_group(process.pid, system)
            process.kill()
            process.wait()
            raise
    finally:
        REAPER.ended(process.pid)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
