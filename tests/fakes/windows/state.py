"""The fakes' shared state: one JSON file, locked while a command reads and changes it.

Layout::

    {
      "wsl": {"version": "2.3.26.0", "utf8": false, "bom": false,
              "default": "Ubuntu" | null,
              "distros": {"Ubuntu": {"state": "Stopped", "version": 2,
                                     "location": "C:\\\\WSL\\\\u", "root": "/tmp/.../rootfs/1"}},
              "online": ["Ubuntu", "Ubuntu-24.04", "Debian", ...]},
      "hyperv": {"vms": [...], "switches": ["Default Switch"], "vhds": {...}},
      "files": {"c:\\\\img\\\\r.tar": {"kind": "rootfs"}},  # by lower-case path
      "faults": [{"tool": "wsl.exe", "match": "--set-default", "after": 0, "times": 1}],
      "calls": [{"tool": "wsl.exe", "argv": [...]}]
    }

A fault makes a matching call fail: `match` is a substring of the call's command line (argv
joined by spaces, or the PowerShell script), `after` how many matching calls succeed first,
`times` how many then fail; `message`/`code` override the error printed.
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

ENV = "DECL_FAKE_WINDOWS_STATE"

DEFAULT_ONLINE = ["Ubuntu", "Ubuntu-24.04", "Ubuntu-22.04", "Debian", "kali-linux",
                  "openSUSE-Tumbleweed", "AlmaLinux-9", "archlinux"]


def state_path() -> str:
    """The state file named by DECL_FAKE_WINDOWS_STATE (an error when unset)."""
    path = os.environ.get(ENV)
    if not path:
        sys.stderr.write(f"fake: set {ENV} to the fake Windows host's state file\n")
        sys.exit(97)
    return path


def latency() -> None:
    """Take as long as the real tool's start-up when DECL_FAKE_WINDOWS_LATENCY says so (in
    seconds; wsl.exe and powershell.exe take 0.1-0.5 s per call), so that a test can kill
    decl between two calls of one change."""
    seconds = float(os.environ.get("DECL_FAKE_WINDOWS_LATENCY") or 0)
    if seconds > 0:
        import time

        time.sleep(seconds)


def empty_state() -> dict[str, Any]:
    """A Windows host with WSL and Hyper-V and nothing on them."""
    return {
        "wsl": {"version": "2.3.26.0", "utf8": False, "bom": False, "default": None,
                "distros": {}, "online": list(DEFAULT_ONLINE)},
        "hyperv": {"vms": [], "switches": ["Default Switch"], "vhds": {}},
        "files": {},
        "faults": [],
        "calls": [],
    }


def load(path: str) -> dict[str, Any]:
    """The state, or an empty host when the file does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return empty_state()
    base = empty_state()
    for key, value in base.items():
        data.setdefault(key, value)
    return data


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the state's lock (a sibling .lock file) for the duration."""
    with open(path + ".lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def root_dir(path: str) -> str:
    """Where the fake keeps distro file systems and disk files (beside the state file)."""
    directory = os.path.join(os.path.dirname(os.path.abspath(path)),
                             os.path.basename(path) + ".d")
    os.makedirs(directory, exist_ok=True)
    return directory
