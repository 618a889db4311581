"""The desktop fakes' shared state: `state.json` in the directory named by
DECL_FAKE_DESKTOP_DIR, locked while one command reads and changes it.

Layout::

    {
      "virtualbox": {"version": "7.1.4r165100", "machine_folder": DIR + "/VirtualBox VMs",
                     "vms": [{"uuid", "name", "state", "memory", "cpus", ...}],
                     "media": {uuid: {"path", "size", "kind"}},
                     "acpi": "honor" | "ignore", "acpi_delay": 0.2},
      "vmware": {"product": "ws" | "fusion" | "player", "version": "...",
                 "running": {vmx path: {"started": t, "vmx": text at power-on}},
                 "soft_stop": "ok" | "no_tools" | "hang"},
      "windows": false,            # CRLF line ends and the .exe program name
      "faults": [{"tool": "VBoxManage", "match": "storageattach", "after": 0,
                  "times": 1, "message": "..."}],
      "calls": [{"tool": "VBoxManage", "argv": [...]}]
    }

Faults: a call whose command line (argv joined by spaces) contains `match` fails after
`after` matching calls succeeded, `times` times. DECL_FAKE_DESKTOP_FAIL="TOOL:MATCH" adds
such a fault (once per state directory) from the environment, for a test that runs decl
as a subprocess.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

ENV = "DECL_FAKE_DESKTOP_DIR"
FAIL_ENV = "DECL_FAKE_DESKTOP_FAIL"


def state_dir() -> str:
    """The directory named by DECL_FAKE_DESKTOP_DIR (an error when unset)."""
    path = os.environ.get(ENV)
    if not path:
        sys.stderr.write(f"fake: set {ENV} to the fake desktop host's state directory\n")
        sys.exit(97)
    os.makedirs(path, exist_ok=True)
    return path


def empty_state(directory: str) -> dict[str, Any]:
    """A host with VirtualBox and VMware installed and no VM."""
    return {
        "virtualbox": {"version": "7.1.4r165100",
                       "machine_folder": os.path.join(directory, "VirtualBox VMs"),
                       "vms": [], "media": {}, "acpi": "honor", "acpi_delay": 0.2},
        "vmware": {"product": "ws", "version": "1.17.0 build-24319023", "running": {},
                   "soft_stop": "ok"},
        "windows": False,
        "faults": [],
        "env_faults_taken": [],
        "calls": [],
    }


def load(directory: str) -> dict[str, Any]:
    """The state, or an empty host when there is none yet."""
    try:
        with open(os.path.join(directory, "state.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return empty_state(directory)
    base = empty_state(directory)
    for key, value in base.items():
        data.setdefault(key, value)
    return data


def save(directory: str, data: dict[str, Any]) -> None:
    """Write the state atomically."""
    path = os.path.join(directory, "state.json")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)


def latency() -> None:
    """Take as long as the real tool's start-up when DECL_FAKE_DESKTOP_LATENCY says so (seconds per
    call), so that a crash test can kill decl between two calls of one change."""
    seconds = float(os.environ.get("DECL_FAKE_DESKTOP_LATENCY") or 0)
    if seconds > 0:
        import time

        time.sleep(seconds)


@contextlib.contextmanager
def locked(directory: str) -> Iterator[None]:
    """Hold the state's lock for the duration."""
    latency()
    with open(os.path.join(directory, "state.lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def take_fault(data: dict[str, Any], tool: str, command: str) -> dict[str, Any] | None:
    """The fault that fires for this call, if any (its counters are updated in `data`)."""
    spec = os.environ.get(FAIL_ENV, "")
    if spec and spec not in data["env_faults_taken"]:
        want_tool, _, match = spec.partition(":")
        if want_tool == tool and match in command:
            data["env_faults_taken"].append(spec)
            return {"tool": tool, "match": match}
    for fault in data.get("faults", []):
        if fault.get("tool", tool) != tool or fault.get("match", "") not in command:
            continue
        if fault.get("after", 0) > 0:
            fault["after"] -= 1
            continue
        if fault.get("times", 1) > 0:
            fault["times"] = fault.get("times", 1) - 1
            return fault
    return None


def write_out(data: dict[str, Any], stream: Any, lines: list[str]) -> None:
    """Print lines with the host's line ends (CRLF on a Windows host)."""
    if not lines:
        return
    end = "\r\n" if data.get("windows") else "\n"
    stream.buffer.write("".join(line + end for line in lines).encode("utf-8"))
    stream.flush()
