"""A stateful fake of Parallels Desktop's prlctl (facts: docs/facts/parallels.md).

- `list` shows running VMs only; `-a/--all` all of them; `-i/--info` the per-VM details;
  `-j/--json` JSON (compact, as Parallels Desktop 26 prints it; the UUID without braces in
  JSON, with braces in the table); `--no-header`; `-o FIELDS`; an optional VM name or UUID.
- Sizes in the info JSON are strings with a unit: memory `"1024Mb"`, a disk `"65536Mb"`.
- Messages of a successful command go to stdout; errors to stderr. An unknown VM:
  `Failed to get VM config: The virtual machine could not be found.` with exit 255. An unknown
  action: `Unknown action: X` on stderr, exit 1. `stop` on a stopped VM exits 0 with its
  message on stderr.
- Settings that need a stopped VM (cpus, memory, EFI, disks, network type) fail on a running
  one with exit 255. A disk never shrinks. `delete` needs a stopped VM.
- A graceful `stop` of a VM whose guest ignores the request (`ignores_shutdown`) hangs until
  killed, as prlctl waits for the guest; `stop --kill` always works.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid as uuidlib
from typing import Any

from tests.fakes.mac import state as fstate
from tests.fakes.mac.state import Done

NOT_FOUND = "Failed to get VM config: The virtual machine could not be found.\n"
RUNNING = ("Failed to configure the VM: Unable to perform the action because the virtual "
           "machine is running.\n")
USAGE = ("Usage: prlctl ACTION <ID | NAME> [OPTIONS]\n"
         "Supported actions are:\n"
         "  create, delete, list, set, start, stop, suspend, resume, ...\n")
STOPPED_STATES = ("stopped", "suspended")


def find(data: dict[str, Any], ident: str) -> dict[str, Any]:
    """A VM by name or UUID (with or without braces); Done(255) when there is none."""
    key = ident.strip("{}").lower()
    for vm in data["parallels"]["vms"]:
        if vm["uuid"].lower() == key or vm["name"] == ident:
            return vm
    raise Done(255, "", NOT_FOUND)


def info(vm: dict[str, Any]) -> dict[str, Any]:
    """`prlctl list -i -j` for one VM (keys in prlctl's order)."""
    hardware: dict[str, Any] = {
        "cpu": {"sockets": 1, "cpus": vm["cpus"], "cores": vm["cpus"], "VT-x": True,
                "hotplug": False, "accl": "high", "mode": "64"},
        "memory": {"size": f"{vm['memsize']}Mb", "hotplug": False},
        "video": {"size": "0Mb", "3d acceleration": "highest", "vertical sync": "yes"},
    }
    for name in sorted(vm["devices"], key=device_order):
        dev = vm["devices"][name]
        entry: dict[str, Any] = {"enabled": dev.get("enabled", True)}
        if name.startswith("hdd"):
            entry.update({"port": dev.get("port", "sata:0"), "image": dev["image"],
                          "type": "expanded", "size": f"{dev['size']}Mb"})
        elif name.startswith("cdrom"):
            entry.update({"port": dev.get("port", "sata:1"), "image": dev.get("image", ""),
                          "state": "connected" if dev.get("image") else "disconnected"})
        elif name.startswith("net"):
            entry["type"] = dev["type"]
            if dev["type"] == "bridged":
                entry["iface"] = dev.get("iface") or "default"
            entry.update({"mac": dev["mac"], "card": "virtio"})
        hardware[name] = entry
    out: dict[str, Any] = {
        "ID": vm["uuid"], "Name": vm["name"], "Description": vm.get("description", ""),
        "Type": "VM", "State": vm["state"], "OS": vm.get("ostype", "win-11"),
        "Template": "no", "Home": vm["home"], "Owner": "lab",
        "GuestTools": {"state": "not_installed"},
        "Autostart": "off", "Boot order": "hdd0 cdrom0 net0",
        "EFI boot": "on" if vm.get("efi") else "off",
        "Hardware": hardware,
    }
    return out


def device_order(name: str) -> tuple[int, int]:
    """hdd0, hdd1, ..., cdrom0, net0 as prlctl lists them."""
    kinds = ("hdd", "cdrom", "net")
    for index, kind in enumerate(kinds):
        if name.startswith(kind):
            return index, int(name[len(kind):] or 0)
    return len(kinds), 0


def cmd_list(data: dict[str, Any], args: list[str]) -> tuple[str, str, int]:
    flags = {"all": False, "info": False, "json": False, "header": True}
    fields = "uuid,status,ip_configured,name"
    target = None
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-a", "--all"):
            flags["all"] = True
        elif arg in ("-i", "--info"):
            flags["info"] = True
        elif arg in ("-j", "--json"):
            flags["json"] = True
        elif arg in ("-H", "--no-header"):
            flags["header"] = False
        elif arg in ("-o", "--output"):
            if not rest:
                raise Done(1, "", "Invalid usage: -o needs a list of fields\n")
            fields = rest.pop(0)
        elif arg in ("-f", "--full"):
            continue
        elif arg.startswith("-"):
            raise Done(1, "", f"Invalid usage: unrecognized option {arg}\n")
        else:
            target = arg
    vms = data["parallels"]["vms"]
    if target is not None:
        vms = [find(data, target)]
    elif not flags["all"]:
        vms = [vm for vm in vms if vm["state"] == "running"]
    if flags["info"]:
        rows = [info(vm) for vm in vms]
        if flags["json"]:
            return json.dumps(rows, separators=(",", ":")) + "\n", "", 0
        return "".join(f"ID: {{{r['ID']}}}\nName: {r['Name']}\nState: {r['State']}\n\n"
                       for r in rows), "", 0
    names = fields.split(",")
    values = [{"uuid": vm["uuid"], "status": vm["state"], "ip_configured": "-",
               "name": vm["name"]} for vm in vms]
    unknown = [n for n in names if n not in ("uuid", "status", "ip_configured", "name")]
    if unknown:
        raise Done(1, "", f"Invalid usage: unknown field {unknown[0]}\n")
    if flags["json"]:
        return json.dumps([{n: v[n] for n in names} for v in values],
                          separators=(",", ":")) + "\n", "", 0
    lines = []
    if flags["header"]:
        lines.append("UUID                                    STATUS       IP_ADDR         NAME")
    for v in values:
        lines.append(f"{{{v['uuid']}}}  {v['status']:<12} {'-':<15} {v['name']}")
    return "".join(line + "\n" for line in lines), "", 0


def new_mac() -> str:
    return "001C42" + uuidlib.uuid4().hex[:6].upper()


def cmd_create(path: str, data: dict[str, Any], args: list[str]) -> tuple[str, str, int]:
    if not args or args[0].startswith("-"):
        raise Done(1, "", "Invalid usage: the VM name is missing\n")
    name, rest = args[0], args[1:]
    ostype, dst, hdd = "win-11", None, True
    while rest:
        arg = rest.pop(0)
        if arg in ("-o", "--ostype", "-d", "--distribution") and rest:
            ostype = rest.pop(0)
        elif arg == "--dst" and rest:
            dst = rest.pop(0)
        elif arg == "--no-hdd":
            hdd = False
        else:
            raise Done(1, "", f"Invalid usage: unrecognized option {arg}\n")
    if any(vm["name"] == name for vm in data["parallels"]["vms"]):
        raise Done(255, "Creating the virtual machine...\n",
                   f"Failed to create the VM: The virtual machine \"{name}\" already exists.\n")
    base = dst or os.path.join(fstate.files_dir(path), "Parallels")
    home = os.path.join(base, f"{name}.pvm") + "/"
    os.makedirs(home, exist_ok=True)
    devices: dict[str, Any] = {
        "net0": {"type": "shared", "iface": "", "mac": new_mac(), "enabled": True},
        "cdrom0": {"image": "", "enabled": True, "port": "sata:1"},
    }
    if hdd:
        image = os.path.join(home, "harddisk.hdd")
        open(image, "w").close()
        devices["hdd0"] = {"size": 65536, "image": image, "port": "sata:0", "enabled": True}
    data["parallels"]["vms"].append({
        "uuid": str(uuidlib.uuid4()), "name": name, "description": "", "state": "stopped",
        "ostype": ostype, "cpus": 2, "memsize": 2048 if ostype.startswith("win") else 1024,
        "efi": True, "home": home, "ignores_shutdown": False, "devices": devices})
    return "Creating the virtual machine...\nThe VM has been successfully created.\n", "", 0


def need_stopped(vm: dict[str, Any]) -> None:
    if vm["state"] not in STOPPED_STATES:
        raise Done(255, "", RUNNING)


def positive_int(value: str, option: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise Done(1, "", f"Invalid usage: {option} expects a number, not {value}\n") from None
    if number <= 0:
        raise Done(1, "", f"Invalid usage: {option} expects a positive number\n")
    return number


def next_name(vm: dict[str, Any], kind: str) -> str:
    index = 0
    while f"{kind}{index}" in vm["devices"]:
        index += 1
    return f"{kind}{index}"


def cmd_set(path: str, data: dict[str, Any], args: list[str]) -> tuple[str, str, int]:
    if not args:
        raise Done(1, "", "Invalid usage: the VM is missing\n")
    vm = find(data, args[0])
    rest = args[1:]
    # Check everything first, then change: prlctl commits one configuration at once.
    staged = json.loads(json.dumps(vm))
    notes: list[str] = []
    device: str | None = None
    while rest:
        arg = rest.pop(0)
        value = rest.pop(0) if arg not in ("--enable", "--disable", "--connect",
                                           "--disconnect") and rest else None
        if arg == "--cpus" and value is not None:
            need_stopped(vm)
            staged["cpus"] = positive_int(value, arg)
        elif arg == "--memsize" and value is not None:
            need_stopped(vm)
            staged["memsize"] = positive_int(value, arg)
        elif arg == "--description" and value is not None:
            staged["description"] = value
        elif arg == "--efi-boot" and value in ("on", "off"):
            need_stopped(vm)
            staged["efi"] = value == "on"
        elif arg == "--device-add" and value in ("hdd", "cdrom", "net"):
            need_stopped(vm)
            device = next_name(staged, value)
            if value == "hdd":
                image = os.path.join(vm["home"], f"harddisk{device[3:]}.hdd")
                staged["devices"][device] = {"size": 65536, "image": image, "enabled": True,
                                             "port": f"sata:{len(staged['devices'])}",
                                             "new": True}
            elif value == "cdrom":
                staged["devices"][device] = {"image": "", "enabled": True}
            else:
                staged["devices"][device] = {"type": "shared", "iface": "", "mac": new_mac(),
                                             "enabled": True}
        elif arg == "--device-set" and value is not None:
            if value not in staged["devices"]:
                raise Done(255, "", f"Failed to configure the VM: The {value} device does not "
                           "exist.\n")
            device = value
        elif arg == "--device-del" and value is not None:
            need_stopped(vm)
            if value not in staged["devices"]:
                raise Done(255, "", f"Failed to configure the VM: The {value} device does not "
                           "exist.\n")
            del staged["devices"][value]
            device = None
        elif arg == "--size" and value is not None and device and device.startswith("hdd"):
            need_stopped(vm)
            size = positive_int(value, arg)
            current = staged["devices"][device]
            if not current.get("new"):
                # PrlDevHdd::resize_image: the message, then the resize job
                notes.append(f"Resize disk image '{current['image']}' up to {size}")
                if size < current["size"]:
                    raise Done(255, "\n".join(notes) + "\n", "Failed to resize: The disk "
                               "cannot be made smaller.\n")
            current["size"] = size
        elif arg == "--image" and value is not None and device:
            if not os.path.exists(value):
                raise Done(255, "", f"Failed to configure the VM: The file {value} does not "
                           "exist.\n")
            staged["devices"][device]["image"] = value
        elif arg == "--type" and value in ("shared", "bridged", "host-only", "host") \
                and device and device.startswith("net"):
            need_stopped(vm)
            staged["devices"][device]["type"] = "host" if value == "host-only" else value
        elif arg == "--iface" and value is not None and device and device.startswith("net"):
            staged["devices"][device]["iface"] = value
        elif arg in ("--enable", "--disable") and device:
            staged["devices"][device]["enabled"] = arg == "--enable"
        elif arg in ("--connect", "--disconnect") and device:
            continue
        else:
            raise Done(1, "", f"Invalid usage: unrecognized option {arg}\n")
    for dev in staged["devices"].values():
        if dev.pop("new", False):
            open(dev["image"], "w").close()
    vm.clear()
    vm.update(staged)
    return "".join(n + "\n" for n in notes) + f"Configure the VM {vm['name']}...\n" \
        "The VM has been successfully configured.\n", "", 0


def cmd_start(data: dict[str, Any], args: list[str]) -> tuple[str, str, int]:
    vm = find(data, args[0] if args else "")
    if vm["state"] == "running":
        raise Done(255, "Starting the VM...\n",
                   "Failed to start the VM: The virtual machine is already running.\n")
    vm["state"] = "running"
    return "Starting the VM...\nThe VM has been successfully started.\n", "", 0


def cmd_stop(data: dict[str, Any], args: list[str]) -> tuple[Any, ...]:
    vm = find(data, args[0] if args else "")
    kill = "--kill" in args[1:]
    unknown = [a for a in args[1:] if a not in ("--kill", "--noforce", "--acpi")]
    if unknown:
        raise Done(1, "", f"Invalid usage: unrecognized option {unknown[0]}\n")
    if vm["state"] == "stopped":
        return "Stopping the VM...\n", "The VM is not running.\n", 0
    if not kill and vm.get("ignores_shutdown"):
        # prlctl waits for the guest, which never shuts down: hang until killed.
        return "Stopping the VM...\n", "", 255, lambda: time.sleep(3600)
    vm["state"] = "stopped"
    return "Stopping the VM...\nThe VM has been successfully stopped.\n", "", 0


def cmd_delete(data: dict[str, Any], args: list[str]) -> tuple[str, str, int]:
    vm = find(data, args[0] if args else "")
    if vm["state"] not in STOPPED_STATES:
        raise Done(255, "Removing the VM...\n", "Failed to remove the VM: The virtual machine "
                   "is running. Stop it and try again.\n")
    data["parallels"]["vms"].remove(vm)
    shutil.rmtree(vm["home"], ignore_errors=True)
    return "Removing the VM...\nThe VM has been successfully removed.\n", "", 0


def body(data: dict[str, Any], argv: list[str]) -> tuple[Any, ...]:
    """One prlctl call."""
    path = fstate.state_path()
    if not argv:
        return USAGE, "", 0
    if "--help" in argv or "-h" in argv:
        return USAGE, "", 0
    action, args = argv[0], argv[1:]
    if action in ("--version", "-V"):
        pd = data["parallels"]
        return f"prlctl version {pd['version']} ({pd['build']})\n", "", 0
    if action == "list":
        return cmd_list(data, args)
    if action == "create":
        return cmd_create(path, data, args)
    if action == "set":
        return cmd_set(path, data, args)
    if action == "start":
        return cmd_start(data, args)
    if action == "stop":
        return cmd_stop(data, args)
    if action == "delete":
        return cmd_delete(data, args)
    raise Done(1, "", f"Unknown action: {action}\n")


def main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/prlctl."""
    return fstate.run_tool("prlctl", argv, body)
