"""A stateful fake of UTM's utmctl (facts: docs/facts/utm.md), sharing osascript's UTM model.

- `list`: the header `UUID                                 Status   Name`, then one line per
  VM: `<UUID> <status padded to 8> <name>`. `status VM`: the status word alone.
  `start`, `stop`, `delete`: nothing on success. VMs are named by UUID or exact name.
- A VM that does not exist: `Error: Virtual machine not found.` on stderr, exit 1. A usage
  error: `Error: ...` and the usage, exit 64.
- An Apple event that fails (a stop of a VM that is not running, a delete of a running VM,
  every command from an SSH session or before a GUI login) is printed as
  `Error from event: The operation couldn’t be completed. (OSStatus error N.)` followed by
  UTM's message on stderr, and the exit code stays 0.
- `stop` defaults to `--force` (power off); `--request` asks the guest, which may ignore it
  (`ignores_shutdown`); `--kill` ends the VM's process.
"""

from __future__ import annotations

import os
from typing import Any

from tests.fakes.mac import state as fstate
from tests.fakes.mac.osascript import NOT_AVAILABLE, NOT_RUNNING, NOT_STOPPED
from tests.fakes.mac.state import Done

HEADER = "UUID                                 Status   Name\n"
NOT_FOUND = "Error: Virtual machine not found.\n"
USAGE = ("USAGE: utmctl <subcommand>\n\nSUBCOMMANDS:\n  list, status, start, suspend, stop, "
         "attach, file, exec, ip-address, clone, delete, usb\n")
NO_SESSION = ("Error from event: The operation couldn’t be completed. (OSStatus error -1743.)\n"
              "NOTE: utmctl does not work from SSH sessions or before logging in.\n")


def event_error(message: str, number: int = -2700) -> str:
    """How utmctl reports a failed Apple event (and then exits 0)."""
    return f"Error from event: The operation couldn’t be completed. (OSStatus error " \
        f"{number}.)\n{message}\n"


def no_session(data: dict[str, Any]) -> bool:
    """utmctl cannot reach UTM: an SSH session, or nobody logged in to the GUI."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT")) \
        or not data["host"].get("gui_session", True)


def find(data: dict[str, Any], ident: str) -> dict[str, Any]:
    for vm in data["utm"]["vms"]:
        if vm["id"] == ident.upper() and len(ident) == 36:
            return vm
    for vm in data["utm"]["vms"]:
        if vm["config"]["name"] == ident:
            return vm
    raise Done(1, "", NOT_FOUND)


def body(data: dict[str, Any], argv: list[str]) -> tuple[str, str, int]:
    """One utmctl call."""
    args = [a for a in argv if a not in ("--hide", "-d", "--debug")]
    if not args or args[0] in ("-h", "--help", "help"):
        return USAGE, "", 0
    command, rest = args[0], args[1:]
    known = ("list", "status", "start", "suspend", "stop", "attach", "file", "exec",
             "ip-address", "clone", "delete", "usb")
    if command not in known:
        raise Done(64, "", f"Error: Unexpected argument '{command}'\n{USAGE}")
    if no_session(data):
        if command == "list":
            return HEADER, NO_SESSION, 0
        raise Done(1, "", NO_SESSION + NOT_FOUND)
    if command == "list":
        lines = [HEADER]
        for vm in data["utm"]["vms"]:
            lines.append(f"{vm['id']} {vm['status']:<8} {vm['config']['name']}\n")
        return "".join(lines), "", 0
    names = [a for a in rest if not a.startswith("-")]
    flags = [a for a in rest if a.startswith("-")]
    if len(names) != 1:
        raise Done(64, "", f"Error: Missing expected argument '<identifier>'\n{USAGE}")
    vm = find(data, names[0])
    if command == "status":
        return vm["status"] + "\n", "", 0
    if command == "start":
        if [f for f in flags if f != "--disposable"]:
            raise Done(64, "", f"Error: Unknown option '{flags[0]}'\n{USAGE}")
        if vm["status"] in ("stopped", "paused"):
            vm["status"] = "started"
            return "", "", 0
        return "", event_error(NOT_AVAILABLE), 0
    if command == "stop":
        methods = [f for f in flags if f in ("--force", "--kill", "--request")]
        if len(methods) != len(flags):
            raise Done(64, "", f"Error: Unknown option '{flags[0]}'\n{USAGE}")
        if len(methods) > 1:
            raise Done(64, "", "Error: You can only specify one of: --force, --kill, or "
                       f"--request\n{USAGE}")
        method = methods[0][2:] if methods else "force"
        if vm["status"] != "started" and method != "kill":
            return "", event_error(NOT_RUNNING), 0
        if method == "request" and vm.get("ignores_shutdown"):
            return "", "", 0
        vm["status"] = "stopped"
        return "", "", 0
    if command == "delete":
        if vm["status"] != "stopped":
            return "", event_error(NOT_STOPPED), 0
        data["utm"]["vms"].remove(vm)
        return "", "", 0
    raise Done(1, "", f"Error: the fake utmctl does not implement {command}\n")


def main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/utmctl."""
    return fstate.run_tool("utmctl", argv, body)
