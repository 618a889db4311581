"""VBoxManage calls over a Connection: argv lists, C locale, errors made readable.

One VBoxManage process per method; no state beyond the connection and the program path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from decl.connections.base import CommandResult, Connection
from decl.errors import ProviderError
from decl.providers.virtualbox import output

C_LOCALE = {"LANG": "C", "LC_ALL": "C"}
# Extradata keys of decl's marks and of its record of what it made.
KEY_PROJECT = "decl/project"
KEY_ADDRESS = "decl/address"
KEY_SPEC_HASH = "decl/spec-hash"
KEY_RECORD = "decl/record"


class VBoxManageError(ProviderError):
    """A VBoxManage call failed; `code` is VirtualBox's COM code when it printed one."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class VBoxManage:
    """VBoxManage on one host."""

    def __init__(self, conn: Connection, program: str) -> None:
        self.conn = conn
        self.program = program

    def run(self, args: Sequence[str], what: str, timeout: float = 120) -> CommandResult:
        """Run `VBoxManage ARGS`; VBoxManageError with the tool's own words on failure
        (a non-zero exit, or `error:` lines on stderr with exit 0)."""
        result = self.conn.run([self.program, "-q", *args], timeout=timeout, env=C_LOCALE)
        error = output.parse_error(result.err)
        if result.ok and error is None:
            return result
        message = error.message if error else (result.err.strip() or result.out.strip()
                                               or f"exit code {result.returncode}")
        raise VBoxManageError(f"{what} failed: {message}", error.code if error else None)

    # -- reading ---------------------------------------------------------------------------

    def version(self) -> str:
        """`--version`, e.g. 7.1.4r165100."""
        result = self.conn.run([self.program, "--version"], timeout=60, env=C_LOCALE)
        if not result.ok:
            raise VBoxManageError(f"VBoxManage --version failed: {result.err.strip()}", None)
        return result.out.strip().splitlines()[-1] if result.out.strip() else "unknown"

    def list_vms(self) -> list[tuple[str, str]]:
        """Every registered VM: (name, uuid)."""
        return output.parse_list_vms(self.run(["list", "vms"], "listing VMs").out)

    def list_hdds(self) -> list[output.Medium]:
        """Every registered hard disk with its capacity."""
        return output.parse_list_hdds(self.run(["list", "hdds"], "listing disks").out)

    def info(self, vm: str) -> dict[str, str | int] | None:
        """`showvminfo --machinereadable`, or None when the VM does not exist."""
        try:
            result = self.run(["showvminfo", vm, "--machinereadable"], f"reading VM {vm}")
        except VBoxManageError as exc:
            if exc.code == "VBOX_E_OBJECT_NOT_FOUND":
                return None
            raise
        return output.parse_machinereadable(result.out)

    def extradata(self, vm: str) -> dict[str, str] | None:
        """Every extradata key of a VM, or None when the VM does not exist."""
        try:
            result = self.run(["getextradata", vm, "enumerate"], f"reading extradata of {vm}")
        except VBoxManageError as exc:
            if exc.code == "VBOX_E_OBJECT_NOT_FOUND":
                return None
            raise
        return output.parse_extradata(result.out)

    # -- changing --------------------------------------------------------------------------

    def set_extradata(self, vm: str, values: dict[str, str | None]) -> None:
        """Set (or, with None, delete) extradata keys, one call each."""
        for key, value in values.items():
            args = ["setextradata", vm, key] + ([value] if value is not None else [])
            self.run(args, f"setting {key} on {vm}")

    def set_record(self, vm: str, record: dict[str, Any]) -> None:
        """decl's record of what it made for the VM."""
        self.set_extradata(vm, {KEY_RECORD: json.dumps(record, sort_keys=True,
                                                         separators=(",", ":"))})

    def create(self, name: str, basefolder: str, ostype: str | None) -> str:
        """`createvm --register`; returns the new VM's UUID."""
        args = ["createvm", "--name", name, "--basefolder", basefolder, "--register"]
        if ostype:
            args += ["--ostype", ostype]
        result = self.run(args, f"creating VM {name}")
        created = output.parse_created_uuid(result.out)
        if created is None:
            raise ProviderError(f"creating VM {name}: VBoxManage printed no UUID")
        return created

    def modify(self, vm: str, settings: list[str]) -> None:
        """`modifyvm` with settings (the VM must be powered off)."""
        if settings:
            self.run(["modifyvm", vm, *settings], f"changing the settings of {vm}")

    def add_sata(self, vm: str, name: str) -> None:
        """A SATA controller (AHCI)."""
        self.run(["storagectl", vm, "--name", name, "--add", "sata", "--controller",
                  "IntelAhci"], f"adding controller {name} to {vm}")

    def create_disk(self, path: str, size_mib: int) -> str:
        """A new dynamically allocated VDI; returns its UUID."""
        result = self.run(["createmedium", "disk", "--filename", path, "--size", str(size_mib),
                           "--format", "VDI"], f"creating disk {path}", timeout=1800)
        return output.parse_created_uuid(result.out) or ""

    def clone_disk(self, source: str, path: str) -> str:
        """A VDI copy of a disk image (VDI, VMDK, VHD...); returns its UUID."""
        result = self.run(["clonemedium", "disk", source, path, "--format", "VDI"],
                          f"copying {source} to {path}", timeout=3600)
        return output.parse_created_uuid(result.out) or ""

    def attach(self, vm: str, controller: str, port: int, kind: str, medium: str) -> None:
        """Attach a disk (kind hdd) or an ISO (dvddrive); medium `none` detaches."""
        self.run(["storageattach", vm, "--storagectl", controller, "--port", str(port),
                  "--device", "0", "--type", kind, "--medium", medium],
                 f"attaching {medium} to {vm}")

    def resize(self, path: str, size_mib: int) -> None:
        """Grow a disk (VirtualBox cannot shrink one)."""
        self.run(["modifymedium", "disk", path, "--resize", str(size_mib)],
                 f"growing disk {path}", timeout=1800)

    def start(self, vm: str, frontend: str) -> None:
        """`startvm --type headless|gui|separate`."""
        self.run(["startvm", vm, "--type", frontend], f"starting {vm}", timeout=300)

    def power_off(self, vm: str) -> None:
        """Hard stop; a VM that is not running is fine."""
        try:
            self.run(["controlvm", vm, "poweroff"], f"powering off {vm}", timeout=300)
        except VBoxManageError as exc:
            if "is not currently running" not in str(exc):
                raise

    def shutdown(self, vm: str, timeout: float, poll: float = 0.5) -> None:
        """Press the ACPI power button, wait up to `timeout` seconds for the guest to power
        off, then power it off hard."""
        try:
            self.run(["controlvm", vm, "acpipowerbutton"], f"shutting down {vm}")
        except VBoxManageError as exc:
            if "is not currently running" in str(exc):
                return
            raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.info(vm)
            if info is None or output.run_state(str(info.get("VMState", ""))) != "running":
                return
            time.sleep(poll)
        self.power_off(vm)

    def close_delete(self, path: str) -> None:
        """`closemedium disk PATH --delete`: forget a disk no VM uses and delete its file."""
        self.run(["closemedium", "disk", path, "--delete"], f"deleting disk {path}",
                 timeout=600)

    def unregister_delete(self, vm: str) -> None:
        """`unregistervm --delete`: the VM, its settings and its attached hard disks."""
        self.run(["unregistervm", vm, "--delete"], f"deleting {vm}", timeout=600)
