"""State shared by the datacenter fakes: a directory named by an environment variable.

Each fake host keeps `state.json` (locked while a command reads and changes it) in its
directory, next to the files the host itself would hold (ESXi: the datastores under
`vmfs/volumes/`). Layout of the JSON is owned by each fake (esxi.py, xen.py); both keep:

    "faults": [{"command": "vmsvc/power.on", "after": 0, "times": 1, "code": 0,
                "message": "..."}],
    "calls": [["vim-cmd", "vmsvc/getallvms"], ...]

Fault injection, two ways:
- in the state (tests that run the fakes behind sshd use this): `faults` above; `command`
  is a substring of the call's command line (argv joined by spaces), `after` how many
  matching calls succeed first, `times` how many then fail;
- through the environment, for a fake run directly: DECL_FAKE_DATACENTER_FAIL names one
  command (e.g. `vmsvc/power.on` or `xl:vcpu-set`); each call whose command line contains it
  fails. The optional prefix `TOOL:` limits it to one tool.
How a fault fails is the tool's own way (vim-cmd: a vim.fault on stdout; xl and vmkfstools:
an error on stderr with their exit code); `message` and `code` override it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

FAIL_ENV = "DECL_FAKE_DATACENTER_FAIL"


def state_dir(env: str) -> str:
    """The fake host's directory from `env` (exit 97 with a message when unset)."""
    path = os.environ.get(env)
    if not path:
        sys.stderr.write(f"fake: set {env} to the fake host's state directory\n")
        sys.exit(97)
    os.makedirs(path, exist_ok=True)
    return path


def load(directory: str, empty: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The state (an empty host when there is none yet)."""
    try:
        with open(os.path.join(directory, "state.json"), encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    except FileNotFoundError:
        return empty()
    for key, value in empty().items():
        data.setdefault(key, value)
    return data


def save(directory: str, data: dict[str, Any]) -> None:
    """Write the state atomically."""
    path = os.path.join(directory, "state.json")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def latency() -> None:
    """Take as long as the real tool's start-up when DECL_FAKE_DATACENTER_LATENCY says so (seconds
    per call), so that a crash test can kill decl between two calls of one change."""
    seconds = float(os.environ.get("DECL_FAKE_DATACENTER_LATENCY") or 0)
    if seconds > 0:
        import time

        time.sleep(seconds)


@contextlib.contextmanager
def locked(directory: str) -> Iterator[None]:
    """Hold the host's lock for the duration."""
    latency()
    with open(os.path.join(directory, "state.lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def take_fault(data: dict[str, Any], tool: str, command: str) -> dict[str, Any] | None:
    """The fault that fires for this call, if any (counters updated in `data`)."""
    wanted = os.environ.get(FAIL_ENV, "")
    if wanted:
        only_tool, _, name = wanted.rpartition(":")
        if (not only_tool or only_tool == tool) and name and name in command:
            return {"command": name}
    for fault in data.get("faults", []):
        if fault.get("tool", tool) != tool or fault.get("command", "") not in command:
            continue
        if fault.get("after", 0) > 0:
            fault["after"] -= 1
            continue
        if fault.get("times", 1) > 0:
            fault["times"] = fault.get("times", 1) - 1
            return dict(fault)
    return None
