"""The Mac fakes' shared state: one JSON file, locked while a command reads and changes it.

Layout::

    {
      "host": {"arch": "aarch64", "gui_session": true},
      "parallels": {"version": "26.1.1", "build": "57288",
                    "vms": [{"uuid": ..., "name": ..., "description": ..., "state": "stopped",
                             "ostype": "linux", "cpus": 2, "memsize": 1024, "efi": true,
                             "home": "/Users/lab/Parallels/web.pvm/", "ignores_shutdown": false,
                             "devices": {"hdd0": {"size": 65536, "image": ..., "port": "sata:0",
                                                  "enabled": true},
                                         "net0": {"type": "shared", "iface": "", "mac": ...,
                                                  "enabled": true},
                                         "cdrom0": {"image": "", "enabled": true}}}]},
      "utm": {"version": "4.7.5", "vms": [{"id": ..., "status": "stopped", "backend": "qemu",
                                           "ignores_shutdown": false, "config": {...}}]},
      "faults": [{"tool": "prlctl", "match": "--memsize", "after": 0, "times": 1}],
      "calls": [{"tool": "prlctl", "argv": [...]}]
    }

A fault makes a matching call fail: `match` is a substring of the call's command line (argv
joined by spaces; for osascript the script), `after` how many matching calls succeed first,
`times` how many then fail; `message`/`code` override what is printed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from tests.fakes.statefile import save, take_fault  # noqa: F401 - this module's API

ENV = "DECL_FAKE_MAC_STATE"


def state_path() -> str:
    """The state file named by DECL_FAKE_MAC_STATE (an error when unset)."""
    path = os.environ.get(ENV)
    if not path:
        sys.stderr.write(f"fake: set {ENV} to the fake Mac's state file\n")
        sys.exit(97)
    return path


def empty_state() -> dict[str, Any]:
    """An Apple-silicon Mac with Parallels Desktop and UTM installed, a user logged in."""
    return {
        "host": {"arch": "aarch64", "gui_session": True},
        "parallels": {"version": "26.1.1", "build": "57288", "vms": []},
        "utm": {"version": "4.7.5", "vms": []},
        "faults": [],
        "calls": [],
    }


def load(path: str) -> dict[str, Any]:
    """The state, or an empty Mac when the file does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return empty_state()
    for key, value in empty_state().items():
        data.setdefault(key, value)
    return data


def latency() -> None:
    """Take as long as the real tool's start-up when DECL_FAKE_MAC_LATENCY says so (seconds per
    call), so that a crash test can kill decl between two calls of one change."""
    seconds = float(os.environ.get("DECL_FAKE_MAC_LATENCY") or 0)
    if seconds > 0:
        import time

        time.sleep(seconds)


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the state's lock (a sibling .lock file) for the duration."""
    latency()
    with open(path + ".lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def files_dir(path: str) -> str:
    """Where the fake keeps VM bundles (beside the state file)."""
    directory = os.path.join(os.path.dirname(os.path.abspath(path)),
                             os.path.basename(path) + ".d")
    os.makedirs(directory, exist_ok=True)
    return directory


class Done(Exception):
    """Leave with this exit code after printing `out` on stdout and `err` on stderr."""

    def __init__(self, code: int, out: str = "", err: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.out = out
        self.err = err


def run_tool(tool: str, argv: list[str], body: Any, command: str | None = None) -> int:
    """Run one call of a fake: lock, log, fire a fault, run `body(data, argv)`, save, print.

    `body` returns (stdout, stderr, code) or raises Done; it may return a callable as a fourth
    item, run after the state is saved and unlocked (a command that hangs)."""
    path = state_path()
    after = None
    with locked(path):
        data = load(path)
        data["calls"].append({"tool": tool, "argv": argv})
        try:
            fault = take_fault(data, tool, command if command is not None else " ".join(argv))
            if fault is not None:
                raise Done(int(fault.get("code", 255 if tool == "prlctl" else 1)), "",
                           fault.get("message", f"fault injected into {tool}") + "\n")
            result = body(data, argv)
            out, err, code = result[:3]
            after = result[3] if len(result) > 3 else None
        except Done as done:
            out, err, code = done.out, done.err, done.code
        save(path, data)
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    if err:
        sys.stderr.write(err)
        sys.stderr.flush()
    if after is not None:
        after()
    return code
