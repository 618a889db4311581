"""A fake osascript that interprets the AppleScript sent to UTM (facts: docs/facts/utm.md).

`osascript [-l AppleScript] [-s h|s] (-e LINE)... | FILE | -` compiles the script (a syntax
error runs nothing), runs it against a model of UTM's scripting objects kept in the fake Mac's
state, and prints the result (`-s s`: source form) on stdout, or
`S:E: execution error: UTM got an error: MESSAGE (N)` on stderr with exit 1.

UTM's behaviour, from its Scripting/*.swift sources:
- `make new virtual machine with properties {backend:qemu|apple, configuration:{...}}`: the
  backend must be an enumeration constant, the configuration a record with a `name`, a QEMU VM
  an `architecture`. A new VM starts with a removable drive, a 64 GiB disk, one shared NIC and
  a serial port; then the configuration record is applied as by `update configuration`.
- `update configuration of VM with {...}` refuses unless the VM is stopped. Empty `name` and
  `notes` are ignored, `memory` 0 is ignored. `drives` replace the drive list: a record with an
  `id` keeps that drive (only its interface and source can change: its size cannot), one
  without makes a new drive (`guest size` MiB, or `source` file), drives not listed are
  removed. `network interfaces` work the same by `index`. Enumeration values given as strings
  are ignored.
- `configuration of VM` gives the record back; a drive's `host size` is the space its image
  takes on the host (MiB), not its size.
- Scripting UTM from an SSH session without a logged-in GUI fails with -1743.
"""

from __future__ import annotations

import os
import sys
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from tests.fakes.mac import state as fstate
from tests.fakes.mac.applescript import (
    MISSING,
    Application,
    Enum,
    FileRef,
    Interpreter,
    Node,
    Record,
    ScriptError,
    compile_script,
    human_form,
    source_form,
)
from tests.fakes.mac.state import Done

MIB = 1024 * 1024
QEMU_ARCHES = {"x86_64": "q35", "aarch64": "virt", "i386": "pc", "arm": "virt",
               "riscv64": "virt", "ppc64": "pseries", "s390x": "s390-ccw-virtio",
               "mips64el": "malta", "sparc64": "sun4u", "m68k": "q800"}
DRIVE_INTERFACES = ["none", "IDE", "SCSI", "SD", "MTD", "Floppy", "PFlash", "VirtIO", "NVMe",
                    "USB"]
QEMU_MODES = ["emulated", "shared", "host", "bridged"]
APPLE_MODES = ["shared", "bridged"]
NOT_STOPPED = "The virtual machine must be stopped before this operation can be performed."
NOT_RUNNING = "The virtual machine is not running."
NOT_AVAILABLE = "Operation not available."
INVALID = "One or more required parameters are missing or invalid."


@dataclass(frozen=True)
class VmRef:
    """A virtual machine specifier (by its id)."""

    id: str

    def __str__(self) -> str:
        return f'virtual machine id "{self.id}" of application "UTM"'


def utm_error(message: str, node: Node, number: int = -2700) -> ScriptError:
    return ScriptError("execution", message, number, node.start, node.end, app="UTM")


def new_drive(arch: str | None, removable: bool, size_mib: int | None,
              source: str | None, interface: str | None) -> dict[str, Any]:
    default_iface = "VirtIO" if arch in ("aarch64", "riscv64", None) else "IDE"
    if removable:
        default_iface = "USB" if arch == "aarch64" else "IDE"
    return {"id": str(uuidlib.uuid4()).upper(), "removable": removable,
            "interface": interface or default_iface,
            "sizeMib": None if removable else (size_mib if size_mib else 10240),
            "source": source, "allocatedMib": 0}


def new_nic(arch: str | None) -> dict[str, Any]:
    mac = ":".join(f"{b:02X}" for b in uuidlib.uuid4().bytes[:6])
    return {"hardware": "virtio-net-pci" if arch is not None else "",
            "mode": "shared", "address": mac, "hostInterface": ""}


class Utm(Application):
    """UTM's scripting objects over the fake Mac's state."""

    name = "UTM"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.vms: list[dict[str, Any]] = data["utm"]["vms"]

    def find(self, ref: Any, node: Node) -> dict[str, Any]:
        if not isinstance(ref, VmRef):
            raise ScriptError("execution", f"Can’t make {source_form(ref)} into type "
                              "virtual machine.", -1700, node.start, node.end)
        for vm in self.vms:
            if vm["id"] == ref.id:
                return vm
        raise utm_error(f"Can’t get virtual machine id \"{ref.id}\".", node, -1728)

    # -- properties ----------------------------------------------------------------------

    def prop(self, name: str, target: Any, node: Node) -> Any:
        if target is None:
            if name in ("version", "UTM version"):
                return self.data["utm"]["version"]
            if name == "name":
                return "UTM"
            raise utm_error(f"Can’t get {name}.", node, -1728)
        vm = self.find(target, node)
        config = vm["config"]
        if name == "id":
            return vm["id"]
        if name == "name":
            return config["name"]
        if name == "status":
            return Enum(vm["status"])
        if name == "backend":
            return Enum(vm["backend"])
        if name == "configuration":
            return self.serialize(vm)
        raise utm_error(f"Can’t get {name} of {target}.", node, -1728)

    def serialize(self, vm: dict[str, Any]) -> Record:
        config = vm["config"]
        drives = []
        for drive in config["drives"]:
            entry: dict[str, Any] = {"id": drive["id"], "removable": drive["removable"]}
            if vm["backend"] == "qemu":
                entry["interface"] = Enum(drive["interface"])
            entry["host size"] = drive.get("allocatedMib", 0)
            drives.append(Record(entry))
        nics = []
        for index, nic in enumerate(config["networkInterfaces"]):
            if vm["backend"] == "qemu":
                nics.append(Record({"index": index, "hardware": nic["hardware"],
                                    "mode": Enum(nic["mode"]), "address": nic["address"],
                                    "host interface": nic["hostInterface"],
                                    "port forwards": []}))
            else:
                nics.append(Record({"index": index, "mode": Enum(nic["mode"]),
                                    "address": nic["address"],
                                    "host interface": nic["hostInterface"]}))
        serials = [Record({"index": 0, "hardware": "", "interface": Enum("ptty"), "port": 0})]
        if vm["backend"] == "qemu":
            return Record({
                "name": config["name"], "notes": config.get("notes") or "",
                "architecture": config["architecture"], "machine": config["machine"],
                "memory": config["memory"], "cpu cores": config["cpuCores"],
                "hypervisor": config["hypervisor"], "uefi": config["uefi"],
                "directory share mode": Enum("none"), "drives": drives, "displays": [],
                "network interfaces": nics, "serial ports": serials})
        return Record({
            "name": config["name"], "notes": config.get("notes") or "",
            "memory": config["memory"], "cpu cores": config["cpuCores"],
            "directory shares": [], "drives": drives, "network interfaces": nics,
            "serial ports": [Record({"index": 0, "interface": Enum("ptty")})]})

    # -- commands ------------------------------------------------------------------------

    def command(self, verb: str, args: tuple[Any, ...], node: Node) -> Any:
        if verb == "every":
            return [VmRef(vm["id"]) for vm in self.vms]
        if verb == "vm":
            how, value = args
            for vm in self.vms:
                if (how == "id" and vm["id"] == value) or \
                        (how == "name" and vm["config"]["name"] == value):
                    return VmRef(vm["id"])
            if how == "name" and isinstance(value, int) and 1 <= value <= len(self.vms):
                return VmRef(self.vms[value - 1]["id"])
            shown = f'id "{value}"' if how == "id" else f'named "{value}"'
            raise utm_error(f"Can’t get virtual machine {shown}.", node, -1728)
        if verb == "make":
            return self.make(args[0], node)
        if verb == "update":
            target, record = args
            vm = self.find(target, node)
            if not isinstance(record, Record):
                raise utm_error(INVALID, node)
            if vm["status"] != "stopped":
                raise utm_error(NOT_STOPPED, node)
            self.update(vm, record, node)
            return None
        if verb == "start":
            vm = self.find(args[0], node)
            if vm["status"] == "stopped" or vm["status"] == "paused":
                vm["status"] = "started"
                return None
            raise utm_error(NOT_AVAILABLE, node)
        if verb == "stop":
            vm = self.find(args[0], node)
            return self.stop(vm, args[1] or "force", node)
        if verb == "delete":
            vm = self.find(args[0], node)
            if vm["status"] != "stopped":
                raise utm_error(NOT_STOPPED, node)
            self.vms.remove(vm)
            return None
        return super().command(verb, args, node)

    def stop(self, vm: dict[str, Any], method: str, node: Node) -> None:
        if vm["status"] != "started" and method != "kill":
            raise utm_error(NOT_RUNNING, node)
        if method == "request" and vm.get("ignores_shutdown"):
            return None
        vm["status"] = "stopped"
        return None

    def make(self, properties: Any, node: Node) -> VmRef:
        if not isinstance(properties, Record):
            raise utm_error(INVALID, node)
        backend = properties.items.get("backend")
        if not isinstance(backend, Enum) or backend.name not in ("qemu", "apple"):
            raise utm_error("A valid backend must be specified.", node)
        record = properties.items.get("configuration")
        if not isinstance(record, Record):
            raise utm_error("A valid configuration must be specified.", node)
        if not isinstance(record.items.get("name"), str):
            raise utm_error("No name specified in the configuration.", node)
        arch = None
        if backend.name == "qemu":
            arch = record.items.get("architecture")
            if not isinstance(arch, str) or arch not in QEMU_ARCHES:
                raise utm_error("No architecture specified in the configuration.", node)
        vm = {
            "id": str(uuidlib.uuid4()).upper(), "status": "stopped", "backend": backend.name,
            "ignores_shutdown": False,
            "config": {
                "name": "", "notes": "", "architecture": arch,
                "machine": QEMU_ARCHES.get(arch or "", None), "memory": 512, "cpuCores": 0,
                "hypervisor": True, "uefi": True,
                "drives": [new_drive(arch, True, None, None, None),
                           new_drive(arch, False, 65536, None, None)],
                "networkInterfaces": [new_nic(arch)],
            },
        }
        self.update(vm, record, node)
        self.vms.append(vm)
        return VmRef(vm["id"])

    def update(self, vm: dict[str, Any], record: Record, node: Node) -> None:
        """UTMScriptingConfigImpl.updateConfiguration: the rules in the module docstring."""
        config = dict(vm["config"])
        items = record.items
        qemu = vm["backend"] == "qemu"
        if isinstance(items.get("name"), str) and items["name"]:
            config["name"] = items["name"]
        if isinstance(items.get("notes"), str) and items["notes"]:
            config["notes"] = items["notes"]
        if qemu:
            arch = items.get("architecture")
            if isinstance(arch, str) and arch in QEMU_ARCHES and arch != config["architecture"]:
                config["architecture"], config["machine"] = arch, QEMU_ARCHES[arch]
            if isinstance(items.get("machine"), str) and items["machine"]:
                config["machine"] = items["machine"]
            for key, name in (("hypervisor", "hypervisor"), ("uefi", "uefi")):
                if isinstance(items.get(key), bool):
                    config[name] = items[key]
        memory = items.get("memory")
        if isinstance(memory, int) and not isinstance(memory, bool) and memory != 0:
            config["memory"] = memory
        cores = items.get("cpu cores")
        if isinstance(cores, int) and not isinstance(cores, bool):
            config["cpuCores"] = cores
        if "drives" in items:
            config["drives"] = self.update_drives(vm, config, items["drives"], node)
        if "network interfaces" in items:
            config["networkInterfaces"] = self.update_nics(vm, config,
                                                           items["network interfaces"], node)
        vm["config"] = config

    def update_drives(self, vm: dict[str, Any], config: dict[str, Any], records: Any,
                      node: Node) -> list[dict[str, Any]]:
        if not isinstance(records, list) or not all(isinstance(r, Record) for r in records):
            return list(config["drives"])
        qemu = vm["backend"] == "qemu"
        existing = {d["id"]: dict(d) for d in config["drives"]}
        seen: list[str] = []
        out = []
        for record in records:
            items = record.items
            interface = items.get("interface")
            iface = interface.name if isinstance(interface, Enum) and qemu \
                and interface.name in DRIVE_INTERFACES else None
            source = items.get("source")
            if source is not None and not isinstance(source, FileRef):
                source = None
            if source is not None and not os.path.exists(source.path):
                raise utm_error("Failed to access drive image path.", node, -10000)
            if isinstance(items.get("id"), str):
                drive = existing.get(items["id"])
                if drive is None:
                    raise utm_error(f"Identifier '{items['id']}' cannot be found.", node)
                if iface:
                    drive["interface"] = iface
                if source is not None:
                    drive["source"] = source.path
                seen.append(drive["id"])
                continue
            size = items.get("guest size")
            size = size if isinstance(size, int) and not isinstance(size, bool) else None
            removable = items.get("removable") is True
            drive = new_drive(config.get("architecture"), removable,
                              None if source is not None else size,
                              source.path if source is not None else None, iface)
            if source is not None and not removable:
                drive["sizeMib"] = None
                drive["allocatedMib"] = os.path.getsize(source.path) // MIB
            out.append(drive)
        # Drives listed by id stay where they were; new ones go last; the others are removed.
        return [existing[d["id"]] for d in config["drives"] if d["id"] in seen] + out

    def update_nics(self, vm: dict[str, Any], config: dict[str, Any], records: Any,
                    node: Node) -> list[dict[str, Any]]:
        if not isinstance(records, list) or not all(isinstance(r, Record) for r in records):
            return list(config["networkInterfaces"])
        modes = QEMU_MODES if vm["backend"] == "qemu" else APPLE_MODES
        current = [dict(n) for n in config["networkInterfaces"]]
        seen: set[int] = set()
        appended: list[dict[str, Any]] = []
        for record in records:
            items = record.items
            index = items.get("index")
            if isinstance(index, int) and not isinstance(index, bool):
                if not 0 <= index < len(current):
                    raise utm_error(f"Index {index} cannot be found.", node)
                nic = current[index]
                seen.add(index)
            else:
                nic = new_nic(config.get("architecture"))
                appended.append(nic)
            mode = items.get("mode")
            if isinstance(mode, Enum) and mode.name in modes:
                nic["mode"] = mode.name
            if isinstance(items.get("address"), str) and items["address"]:
                nic["address"] = items["address"]
            if isinstance(items.get("host interface"), str) and items["host interface"]:
                nic["hostInterface"] = items["host interface"]
            if vm["backend"] == "qemu" and isinstance(items.get("hardware"), str) \
                    and items["hardware"]:
                nic["hardware"] = items["hardware"]
        kept = [current[i] for i in range(len(current)) if i in seen]
        return kept + appended


def read_script(argv: list[str]) -> tuple[str, str, list[str]]:
    """(script, output style, leftover arguments) from osascript's command line."""
    lines: list[str] = []
    style = "h"
    rest = list(argv)
    program = None
    while rest:
        arg = rest.pop(0)
        if arg == "-e" and rest:
            lines.append(rest.pop(0))
        elif arg == "-s" and rest:
            style = rest.pop(0)
        elif arg == "-l" and rest:
            language = rest.pop(0)
            if language != "AppleScript":
                raise Done(1, "", f"osascript: {language}: no such component.\n")
        elif arg == "-i":
            continue
        elif arg == "-":
            program = sys.stdin.read()
            break
        elif arg.startswith("-"):
            raise Done(1, "", "usage: osascript [-l language] [-e script] [-i] [-s {ehso}] "
                       "[programfile] [argument ...]\n")
        else:
            with open(arg, encoding="utf-8") as handle:
                program = handle.read()
            break
    if lines:
        return "\n".join(lines), style, rest
    if program is None:
        program = sys.stdin.read()
    return program, style, rest


def over_ssh() -> bool:
    """Whether this process runs in an SSH session (no access to the GUI session)."""
    return bool(os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT"))


def body(data: dict[str, Any], argv: list[str], script: str, style: str) -> tuple[str, str, int]:
    """Compile and run one script."""
    try:
        statements = compile_script(script)
    except ScriptError as error:
        return "", error.text() + "\n", 1
    talks_to_utm = any(n.op == "tell" and n.args[0] == "UTM" for n in statements) \
        or 'application "UTM"' in script
    if talks_to_utm and (over_ssh() or not data["host"].get("gui_session", True)):
        return "", "0:0: execution error: Not authorized to send Apple events to UTM. " \
            "(-1743)\n", 1
    utm = Utm(data)
    try:
        result = Interpreter({"UTM": utm}).run(statements)
    except ScriptError as error:
        return "", error.text() + "\n", 1
    if result is None or result == MISSING:
        return "", "", 0
    text = source_form(result) if "s" in style else human_form(result)
    return text + "\n", "", 0


def main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/osascript."""
    try:
        script, style, _ = read_script(argv)
    except Done as done:
        sys.stderr.write(done.err)
        return done.code
    except OSError as exc:
        sys.stderr.write(f"osascript: {exc.filename}: No such file or directory\n")
        return 1
    return fstate.run_tool("osascript", argv, lambda data, _argv: body(data, argv, script,
                                                                      style), command=script)
