"""A stateful fake of VBoxManage 7.1, faithful to VirtualBox's own VBoxManage sources.

What it reproduces (see docs/facts/virtualbox.md for the sources):
- `list vms` / `list runningvms`: `"name" {uuid}` lines; `list hdds`: blocks of
  `Key:  value` lines, a blank line after each, Capacity in whole MBytes.
- `showvminfo --machinereadable`: key=value lines in the source's order; numbers unquoted,
  strings quoted with `\\` and `"` escaped, disk slot keys quoted, `ostype` is the type's
  description, `description` only when set; no extradata.
- `getextradata VM enumerate` prints `Key: K, Value: V` lines; `getextradata VM K` prints
  `Value: V` or `No value set!`; `setextradata VM K` without a value deletes the key.
  setextradata takes a shared lock, so it works on a running VM.
- Errors on stderr as `VBoxManage: error: ...` lines (`VBoxManage.exe` and `callee
  IUnknown` on a Windows host), exit 1; syntax errors exit 2.
- modifyvm / storagectl on a running VM: "already locked for a session" (they take a write
  lock); on a saved VM: "The machine is not mutable (state is Saved)".
- Progress `0%...10%...100%` goes to stderr; `Medium created. UUID: ...` to stdout.
- acpipowerbutton returns at once; the guest powers off later (state `acpi`: honor) or
  never (`ignore`), so a caller must wait and may have to power off.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import time
import uuid as uuidlib
from typing import Any

from tests.fakes.desktop import state as fstate

PROGRESS = "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%"

# Guest OS type IDs -> descriptions (a few of VirtualBox's table).
OS_TYPES = {
    "Other": "Other/Unknown",
    "Other_64": "Other/Unknown (64-bit)",
    "Linux_64": "Other Linux (64-bit)",
    "Ubuntu_64": "Ubuntu (64-bit)",
    "Debian_64": "Debian (64-bit)",
    "Fedora_64": "Fedora (64-bit)",
    "RedHat_64": "Red Hat (64-bit)",
    "Windows11_64": "Windows 11 (64-bit)",
}
NIC_TYPES = ("Am79C970A", "Am79C973", "82540EM", "82543GC", "82545EM", "virtio")
GRAPHICS = ("none", "vboxvga", "vmsvga", "vboxsvga")
SATA_PORTS = 30
RUNNING_STATES = ("running", "paused", "starting", "stopping")


class Fail(Exception):
    """Leave with `code` after printing `lines` on stderr."""

    def __init__(self, code: int, lines: list[str]) -> None:
        super().__init__(code)
        self.code = code
        self.lines = lines


class Ctx:
    """One call: the state, the program name as VirtualBox prints it, and its output."""

    def __init__(self, directory: str, data: dict[str, Any]) -> None:
        self.directory = directory
        self.data = data
        self.vbox = data["virtualbox"]
        self.windows = bool(data.get("windows"))
        self.prog = "VBoxManage.exe" if self.windows else "VBoxManage"
        self.callee = "IUnknown" if self.windows else "nsISupports"
        self.out: list[str] = []
        self.err: list[str] = []

    def com_error(self, message: str, code: str, component: str, interface: str,
                  context: str, line: int, source: str) -> Fail:
        """VirtualBox's three-line COM error."""
        return Fail(1, [f"{self.prog}: error: {message}",
                        f"{self.prog}: error: Details: code {code}, component {component}, "
                        f"interface {interface}, callee {self.callee}",
                        f'{self.prog}: error: Context: "{context}" at line {line} of file '
                        f"{source}"])

    def syntax(self, message: str) -> Fail:
        """A command-line syntax error (exit 2)."""
        return Fail(2, [f"{self.prog}: error: {message}"])

    def failure(self, message: str) -> Fail:
        """A one-line failure (exit 1)."""
        return Fail(1, [f"{self.prog}: error: {message}"])


# -- state helpers --------------------------------------------------------------------------


def now_text() -> str:
    """VMStateChangeTime's form."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000")


def settle(ctx: Ctx) -> None:
    """Let time pass: a guest that honours an ACPI power button is off after the delay."""
    for vm in ctx.vbox["vms"]:
        pressed = vm.get("acpi_pressed")
        if pressed and vm["state"] == "running" and ctx.vbox.get("acpi") == "honor" \
                and time.time() >= pressed + float(ctx.vbox.get("acpi_delay", 0.2)):
            power_off(vm)


def power_off(vm: dict[str, Any]) -> None:
    """The VM is off."""
    vm["state"] = "poweroff"
    vm["state_since"] = now_text()
    vm["acpi_pressed"] = None


def find_vm(ctx: Ctx, ref: str, source: str = "VBoxManageMisc.cpp", line: int = 228,
            context: str = "FindMachine(Bstr(VMName).raw(), machine.asOutParam())"
            ) -> dict[str, Any]:
    """A VM by UUID (braces allowed) or exact name; the VBOX_E_OBJECT_NOT_FOUND error."""
    bare = ref.strip("{}").lower()
    for vm in ctx.vbox["vms"]:
        if vm["uuid"] == bare or vm["name"] == ref:
            return vm
    try:
        uuidlib.UUID(bare)
        message = f"Could not find a registered machine with UUID {{{bare}}}"
    except ValueError:
        message = f"Could not find a registered machine named '{ref}'"
    raise ctx.com_error(message, "VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)", "VirtualBoxWrap",
                        "IVirtualBox", context, line, source)


def write_lock(ctx: Ctx, vm: dict[str, Any], source: str, line: int) -> None:
    """A write session: refused while the VM runs (its process holds the lock)."""
    if vm["state"] in RUNNING_STATES:
        raise ctx.com_error(
            f"The machine '{vm['name']}' is already locked for a session (or being unlocked)",
            "VBOX_E_INVALID_OBJECT_STATE (0x80bb0007)", "MachineWrap", "IMachine",
            "LockMachine(a->session, LockType_Write)", line, source)


def mutable(ctx: Ctx, vm: dict[str, Any], setter: str, line: int,
            source: str = "VBoxManageModifyVM.cpp") -> None:
    """Settings change only when powered off (or aborted)."""
    if vm["state"] not in ("poweroff", "aborted"):
        label = {"saved": "Saved", "running": "Running", "paused": "Paused"}.get(
            vm["state"], vm["state"].capitalize())
        raise ctx.com_error(f"The machine is not mutable (state is {label})",
                            "VBOX_E_INVALID_VM_STATE (0x80bb0002)", "MachineWrap", "IMachine",
                            setter, line, source)


def medium_by_path(ctx: Ctx, path: str) -> tuple[str, dict[str, Any]] | None:
    """A registered medium by its file path or UUID."""
    absolute = os.path.abspath(path)
    for key, medium in ctx.vbox["media"].items():
        if medium["path"] == absolute or key == path.strip("{}").lower():
            return key, medium
    return None


def save_vbox_file(vm: dict[str, Any]) -> None:
    """Write the VM's settings file (a short form of VirtualBox's .vbox XML)."""
    from xml.sax.saxutils import quoteattr

    items = "".join(f"      <ExtraDataItem name={quoteattr(k)} value={quoteattr(v)}/>\n"
                    for k, v in vm["extradata"].items())
    text = ('<?xml version="1.0"?>\n<VirtualBox xmlns="http://www.virtualbox.org/" '
            'version="1.19-linux">\n'
            f'  <Machine uuid="{{{vm["uuid"]}}}" name={quoteattr(vm["name"])} '
            f'OSType="{vm["ostype"]}">\n    <ExtraData>\n{items}    </ExtraData>\n'
            "  </Machine>\n</VirtualBox>\n")
    os.makedirs(os.path.dirname(vm["cfgfile"]), exist_ok=True)
    with open(vm["cfgfile"], "w", encoding="utf-8") as handle:
        handle.write(text)


# -- machine-readable output -------------------------------------------------------------------


def quote(value: str) -> str:
    """A machine-readable string: double quotes, `\\` and `"` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mr_key(name: str) -> str:
    """A key is quoted when it holds characters beyond [0-9a-zA-Z_-] (disk slots)."""
    plain = all(ch.isalnum() or ch in "_-" for ch in name)
    return name if plain else quote(name)


def showvminfo(ctx: Ctx, vm: dict[str, Any]) -> list[str]:
    """`showvminfo --machinereadable`, in the order VBoxManageInfo.cpp prints it."""
    out: list[str] = []

    def s(key: str, value: str, slot: bool = False) -> None:
        out.append(f"{quote(key) if slot else mr_key(key)}={quote(value)}")

    def n(key: str, value: int) -> None:
        out.append(f"{key}={value}")

    s("name", vm["name"])
    s("encryption", "disabled")
    s("groups", "/")
    s("platformArchitecture", "x86")
    s("ostype", OS_TYPES.get(vm["ostype"], vm["ostype"]))
    s("UUID", vm["uuid"])
    s("CfgFile", vm["cfgfile"])
    s("SnapFldr", os.path.join(os.path.dirname(vm["cfgfile"]), "Snapshots"))
    s("LogFldr", os.path.join(os.path.dirname(vm["cfgfile"]), "Logs"))
    s("hardwareuuid", vm["uuid"])
    n("memory", vm["memory"])
    s("pagefusion", "off")
    n("vram", 16)
    n("cpuexecutioncap", 100)
    s("chipset", "piix3")
    s("firmware", vm["firmware"])
    n("cpus", vm["cpus"])
    for key in ("hpet", "pae", "longmode", "triplefaultreset", "apic", "x2apic",
                "nested-hw-virt"):
        s(key, "on" if key in ("pae", "longmode", "apic", "x2apic") else "off")
    for key in ("hwvirtex", "nestedpaging", "largepages", "vtxvpid", "vtxux",
                "virtvmsavevmload"):
        s(key, "on")
    n("cpuid-portability-level", 0)
    s("bootmenu", "messageandmenu")
    for index, device in enumerate(("floppy", "dvd", "disk", "none"), start=1):
        s(f"boot{index}", device)
    s("acpi", "on")
    s("ioapic", "on")
    s("biosapic", "apic")
    n("biossystemtimeoffset", 0)
    if vm["firmware"] == "EFI":
        s("NvramFile", vm["cfgfile"][:-len(".vbox")] + ".nvram")
    s("rtcuseutc", "off")
    s("paravirtprovider", "default")
    s("effparavirtprovider", "kvm")
    s("VMState", vm["state"])
    s("VMStateChangeTime", vm["state_since"])
    if vm["state"] == "saved":
        s("VMStateFile", os.path.join(os.path.dirname(vm["cfgfile"]), "Snapshots",
                                      "state.sav"))
    s("graphicscontroller", vm["graphics"])
    n("monitorcount", 1)
    s("accelerate3d", "off")
    s("teleporterenabled", "off")
    n("teleporterport", 0)
    s("teleporteraddress", "")
    s("teleporterpassword", "")
    s("tracing-enabled", "off")
    s("tracing-allow-vm-access", "off")
    s("tracing-config", "")
    s("autostart-enabled", "off")
    n("autostart-delay", 0)
    s("defaultfrontend", "")
    s("vmprocpriority", "default")
    for index, controller in enumerate(vm["controllers"]):
        s(f"storagecontrollername{index}", controller["name"])
        s(f"storagecontrollertype{index}", controller["type"])
        out.append(f'storagecontrollerinstance{index}="0"')
        out.append(f'storagecontrollermaxportcount{index}="{controller["maxports"]}"')
        out.append(f'storagecontrollerportcount{index}="{controller["ports"]}"')
        out.append(f'storagecontrollerbootable{index}="on"')
    for controller in vm["controllers"]:
        name = controller["name"]
        for port in range(controller["ports"]):
            slot = vm["attachments"].get(f"{name}-{port}-0")
            if slot is None:
                s(f"{name}-{port}-0", "none", slot=True)
                continue
            if slot.get("empty"):
                s(f"{name}-{port}-0", "emptydrive", slot=True)
                if slot["type"] == "dvddrive":
                    s(f"{name}-IsEjected-{port}-0", "off", slot=True)
                continue
            medium = ctx.vbox["media"][slot["medium"]]
            s(f"{name}-{port}-0", medium["path"], slot=True)
            s(f"{name}-ImageUUID-{port}-0", slot["medium"], slot=True)
            if slot["type"] == "dvddrive":
                s(f"{name}-tempeject-{port}-0", "off", slot=True)
                s(f"{name}-IsEjected-{port}-0", "off", slot=True)
            if name.lower() in ("sata", "usb"):
                s(f"{name}-hot-pluggable-{port}-0", "off", slot=True)
            s(f"{name}-nonrotational-{port}-0", "off", slot=True)
            s(f"{name}-discard-{port}-0", "off", slot=True)
    for index in range(1, 9):
        nic = vm["nics"].get(str(index))
        if nic is None or nic["attachment"] == "none":
            out.append(f'nic{index}="none"')
            continue
        if nic["attachment"] == "nat":
            out.append(f'natnet{index}="nat"')
        elif nic["attachment"] == "bridged":
            out.append(f"bridgeadapter{index}={quote(nic.get('bridge') or '')}")
        out.append(f'macaddress{index}="{nic["mac"]}"')
        out.append(f'cableconnected{index}="on"')
        out.append(f'nic{index}="{nic["attachment"]}"')
        out.append(f'nictype{index}="{nic["type"]}"')
        out.append(f'nicspeed{index}="0"')
        if nic["attachment"] == "nat":
            out.extend(['mtu="0"', 'sockSnd="64"', 'sockRcv="64"', 'tcpWndSnd="64"',
                        'tcpWndRcv="64"'])
    s("hidpointing", "ps2mouse")
    s("hidkeyboard", "ps2kbd")
    for index in range(1, 5):
        out.append(f'uart{index}="off"')
    for index in range(1, 3):
        out.append(f'lpt{index}="off"')
    s("audio", "none")
    s("audio_out", "off")
    s("audio_in", "off")
    s("clipboard", "disabled")
    s("draganddrop", "disabled")
    if vm["state"] == "running":
        s("SessionName", vm.get("session") or "headless")
        n("VideoMode", 0)
    s("vrde", "off")
    s("usb", "off")
    s("ehci", "off")
    s("xhci", "off")
    s("recording_enabled", "off")
    if vm.get("description"):
        s("description", vm["description"])
    n("GuestMemoryBalloon", 0)
    return out


# -- commands ---------------------------------------------------------------------------------


def options(args: list[str], flags: dict[str, bool], ctx: Ctx) -> tuple[list[str],
                                                                          dict[str, str]]:
    """Split `--opt value` pairs (flags[name] says whether it takes a value) from operands."""
    operands: list[str] = []
    values: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if name not in flags:
                raise ctx.syntax(f"unknown option: {arg}")
            if flags[name]:
                if "=" in arg:
                    values[name] = arg.split("=", 1)[1]
                else:
                    index += 1
                    if index >= len(args):
                        raise ctx.syntax(f"{name}: RTGetOpt: Command line option needs "
                                         "argument.")
                    values[name] = args[index]
            else:
                values[name] = ""
        else:
            operands.append(arg)
        index += 1
    return operands, values


def cmd_list(ctx: Ctx, args: list[str]) -> None:
    if not args:
        raise ctx.syntax("Missing subcommand for \"list\" command.")
    what = args[-1]
    if what == "vms":
        for vm in ctx.vbox["vms"]:
            name = "<inaccessible>" if vm.get("inaccessible") else vm["name"]
            ctx.out.append(f'"{name}" {{{vm["uuid"]}}}')
    elif what == "runningvms":
        for vm in ctx.vbox["vms"]:
            if vm["state"] in RUNNING_STATES:
                ctx.out.append(f'"{vm["name"]}" {{{vm["uuid"]}}}')
    elif what == "hdds":
        users = {slot["medium"]: vm for vm in ctx.vbox["vms"]
                 for slot in vm["attachments"].values() if slot.get("medium")}
        for key, medium in ctx.vbox["media"].items():
            if medium["kind"] != "hdd":
                continue
            holder = users.get(key)
            locked = holder is not None and holder["state"] in RUNNING_STATES
            ctx.out.extend([
                f"UUID:           {key}",
                "Parent UUID:    base",
                f"State:          {'locked write' if locked else 'created'}",
                "Type:           normal (base)",
                f"Location:       {medium['path']}",
                f"Storage format: {medium.get('format', 'VDI')}",
                f"Capacity:       {medium['size'] // (1024 * 1024)} MBytes",
                "Encryption:     disabled",
                "",
            ])
    else:
        raise ctx.syntax(f"Unknown subcommand \"{what}\".")


def cmd_showvminfo(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--machinereadable": False, "--details": False}, ctx)
    if not operands:
        raise ctx.syntax("VM name or UUID required")
    vm = find_vm(ctx, operands[0], "VBoxManageInfo.cpp", 3249,
                 "FindMachine(Bstr(VMNameOrUuid).raw(), machine.asOutParam())")
    if "--machinereadable" not in values:
        raise ctx.failure("this fake prints only --machinereadable")
    if vm.get("inaccessible"):  # its settings file cannot be read
        ctx.out.extend(['name="<inaccessible>"', f'UUID="{vm["uuid"]}"'])
        return
    ctx.out.extend(showvminfo(ctx, vm))


def cmd_getextradata(ctx: Ctx, args: list[str]) -> None:
    if len(args) not in (1, 2):
        raise ctx.syntax("Incorrect number of parameters")
    vm = find_vm(ctx, args[0])
    if vm.get("inaccessible"):
        raise ctx.com_error("Could not find a registered machine named "
                            f"'{vm['name']}'", "VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)",
                            "VirtualBoxWrap", "IVirtualBox",
                            "FindMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())", 726,
                            "VBoxManageMisc.cpp")
    if len(args) == 1 or args[1] == "enumerate":
        for key, value in vm["extradata"].items():
            ctx.out.append(f"Key: {key}, Value: {value}")
    else:
        value = vm["extradata"].get(args[1])
        ctx.out.append(f"Value: {value}" if value else "No value set!")


def cmd_setextradata(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ctx.syntax("Not enough parameters")
    if len(args) > 3:
        raise ctx.syntax("Too many parameters")
    vm = find_vm(ctx, args[0])
    if len(args) == 2 or args[2] == "":
        vm["extradata"].pop(args[1], None)
    else:
        vm["extradata"][args[1]] = args[2]
    save_vbox_file(vm)


def cmd_createvm(ctx: Ctx, args: list[str]) -> None:
    _, values = options(args, {"--name": True, "--ostype": True, "--basefolder": True,
                               "--register": False, "--uuid": True, "--groups": True,
                               "--default": False}, ctx)
    name = values.get("--name")
    if not name:
        raise ctx.syntax("Parameter --name is required")
    ostype = values.get("--ostype", "Other")
    if "--ostype" in values and ostype not in OS_TYPES:
        raise ctx.failure("Unknown or invalid guest OS type given.")
    base = values.get("--basefolder") or ctx.vbox["machine_folder"]
    cfgfile = os.path.join(os.path.abspath(base), name, name + ".vbox")
    if os.path.exists(cfgfile):
        raise ctx.com_error(
            f"Machine settings file '{cfgfile}' already exists",
            "VBOX_E_FILE_ERROR (0x80bb0004)", "MachineWrap", "IMachine",
            "CreateMachine(bstrSettingsFile.raw(), bstrName.raw(), platformArch, "
            "ComSafeArrayAsInParam(groups), bstrOsTypeId.raw(), createFlags.raw(), "
            "bstrCipher.raw(), bstrPasswordId.raw(), Bstr(strPassword).raw(), "
            "machine.asOutParam())", 416, "VBoxManageMisc.cpp")
    register = "--register" in values
    if register and any(vm["name"] == name for vm in ctx.vbox["vms"]):
        raise ctx.com_error(
            f"Cannot register the machine '{name}' because a machine with the same name "
            "already exists", "VBOX_E_OBJECT_IN_USE (0x80bb000c)", "VirtualBoxWrap",
            "IVirtualBox", "RegisterMachine(machine)", 428, "VBoxManageMisc.cpp")
    vm_uuid = values.get("--uuid", "").strip("{}").lower() or str(uuidlib.uuid4())
    nics: dict[str, Any] = {}
    if "--ostype" in values:
        # NIC 1 defaults to NAT only when the OS type is known at creation.
        nics["1"] = {"attachment": "nat", "type": "82540EM", "mac": mac_for(vm_uuid, 1)}
    vm = {"uuid": vm_uuid, "name": name, "ostype": ostype, "cfgfile": cfgfile,
          "state": "poweroff", "state_since": now_text(), "memory": 128, "cpus": 1,
          "firmware": "BIOS", "graphics": "vboxvga", "description": "",
          "extradata": {}, "controllers": [], "attachments": {}, "nics": nics,
          "acpi_pressed": None, "session": None}
    save_vbox_file(vm)
    if register:
        ctx.vbox["vms"].append(vm)
    ctx.out.extend([f"Virtual machine '{name}' is created"
                    f"{' and registered' if register else ''}.",
                    f"UUID: {vm_uuid}", f"Settings file: '{cfgfile}'"])


def mac_for(vm_uuid: str, index: int) -> str:
    """A stable MAC in VirtualBox's 080027 range."""
    return "080027" + vm_uuid.replace("-", "")[:5].upper() + str(index)


def cmd_modifyvm(ctx: Ctx, args: list[str]) -> None:
    flags = {"--memory": True, "--cpus": True, "--firmware": True, "--graphicscontroller": True,
             "--description": True, "--ostype": True, "--name": True}
    for index in range(1, 9):
        flags.update({f"--nic{index}": True, f"--nictype{index}": True,
                      f"--bridgeadapter{index}": True, f"--macaddress{index}": True})
    operands, values = options(args, flags, ctx)
    if not operands:
        raise ctx.syntax("Missing VM uuid or name")
    vm = find_vm(ctx, operands[0], "VBoxManageModifyVM.cpp", 641,
                 "FindMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())")
    write_lock(ctx, vm, "VBoxManageModifyVM.cpp", 641)
    changed = dict(vm)
    for option, value in values.items():
        if option in ("--description", "--name"):
            changed[option[2:]] = value
            continue
        if option == "--memory":
            mutable(ctx, vm, "COMSETTER(MemorySize)(ValueUnion.u32)", 773)
            changed["memory"] = number(ctx, option, value)
        elif option == "--cpus":
            mutable(ctx, vm, "COMSETTER(CPUCount)(ValueUnion.u32)", 906)
            changed["cpus"] = number(ctx, option, value)
        elif option == "--firmware":
            mutable(ctx, vm, "COMSETTER(FirmwareType)(FirmwareType_BIOS)", 1012)
            table = {"bios": "BIOS", "efi": "EFI", "efi32": "EFI32", "efi64": "EFI64"}
            if value.lower() not in table:
                raise ctx.failure(f"Invalid --firmware argument '{value}'")
            changed["firmware"] = table[value.lower()]
        elif option == "--graphicscontroller":
            mutable(ctx, vm, "COMSETTER(GraphicsControllerType)(enmGraphicsController)", 1122)
            if value.lower() not in GRAPHICS:
                raise ctx.failure(f"Invalid --graphicscontroller argument '{value}'")
            changed["graphics"] = "null" if value.lower() == "none" else value.lower()
        elif option == "--ostype":
            mutable(ctx, vm, "COMSETTER(OSTypeId)(bstrOsTypeId.raw())", 738)
            if value not in OS_TYPES:
                raise ctx.failure(f"Invalid guest OS type '{value}'")
            changed["ostype"] = value
        else:
            mutable(ctx, vm, "COMSETTER(AttachmentType)(NetworkAttachmentType_NAT)", 1432)
            changed["nics"] = nic_change(ctx, changed, option, value)
    vm.update(changed)
    save_vbox_file(vm)


def number(ctx: Ctx, option: str, value: str) -> int:
    """A whole number option (exit 1 on a bad value, as the 7.x sources do)."""
    if not value.isdigit():
        raise ctx.failure(f"Invalid {option} argument '{value}'")
    return int(value)


def nic_change(ctx: Ctx, vm: dict[str, Any], option: str, value: str) -> dict[str, Any]:
    """--nicN / --nictypeN / --bridgeadapterN."""
    nics = {k: dict(v) for k, v in vm["nics"].items()}
    digits = "".join(ch for ch in option if ch.isdigit())
    nic = nics.setdefault(digits, {"attachment": "none", "type": "82540EM",
                                   "mac": mac_for(vm["uuid"], int(digits))})
    if option.startswith("--nictype"):
        if value not in NIC_TYPES:
            raise ctx.failure(f"Invalid NIC type '{value}' specified for NIC {digits}")
        nic["type"] = value
    elif option.startswith("--bridgeadapter"):
        nic["bridge"] = value
    elif option.startswith("--macaddress"):
        nic["mac"] = value.upper()
    else:
        if value not in ("none", "null", "nat", "bridged", "intnet", "hostonly"):
            raise ctx.failure(f"Invalid type '{value}' specfied for NIC {digits}")
        nic["attachment"] = value
    return nics


def cmd_storagectl(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--name": True, "--add": True, "--controller": True,
                                      "--portcount": True, "--bootable": True,
                                      "--remove": False}, ctx)
    if not operands or "--name" not in values:
        raise ctx.syntax("Storage controller name not specified")
    vm = find_vm(ctx, operands[0], "VBoxManageStorageController.cpp", 1028)
    write_lock(ctx, vm, "VBoxManageStorageController.cpp", 1038)
    name = values["--name"]
    if "--remove" in values:
        vm["controllers"] = [c for c in vm["controllers"] if c["name"] != name]
        return
    bus = values.get("--add", "").lower()
    if bus not in ("sata", "ide", "scsi", "sas", "virtio", "pcie"):
        raise ctx.failure(f"Invalid --add argument '{bus}'")
    mutable(ctx, vm, "AddStorageController(Bstr(pszCtl).raw(), StorageBus_SATA, "
            "ctl.asOutParam())", 1105, "VBoxManageStorageController.cpp")
    if any(c["name"] == name for c in vm["controllers"]):
        raise ctx.com_error(f"Storage controller named '{name}' already exists",
                            "VBOX_E_OBJECT_IN_USE (0x80bb000c)", "SessionMachine", "IMachine",
                            "AddStorageController(Bstr(pszCtl).raw(), StorageBus_SATA, "
                            "ctl.asOutParam())", 1105, "VBoxManageStorageController.cpp")
    kind = {"sata": "IntelAhci", "ide": "PIIX4", "scsi": "LsiLogic", "sas": "LsiLogicSas",
            "virtio": "VirtioSCSI", "pcie": "NVMe"}[bus]
    ports = SATA_PORTS if bus == "sata" else 2
    if "--portcount" in values:
        ports = number(ctx, "--portcount", values["--portcount"])
    vm["controllers"].append({"name": name, "type": values.get("--controller", kind),
                              "bus": bus, "ports": ports,
                              "maxports": SATA_PORTS if bus == "sata" else ports})


def cmd_storageattach(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--storagectl": True, "--port": True, "--device": True,
                                      "--type": True, "--medium": True,
                                      "--hotpluggable": True}, ctx)
    if not operands:
        raise ctx.syntax("Missing VM uuid or name")
    vm = find_vm(ctx, operands[0], "VBoxManageStorageController.cpp", 338)
    name = values.get("--storagectl")
    controller = next((c for c in vm["controllers"] if c["name"] == name), None)
    if controller is None:
        raise ctx.failure(f"Could not find a controller named '{name}'")
    port = number(ctx, "--port", values.get("--port", "0"))
    device = number(ctx, "--device", values.get("--device", "0"))
    if controller["ports"] <= port < controller["maxports"]:
        controller["ports"] = port + 1  # VBoxManage grows the port count as needed
    if port >= controller["ports"]:
        raise ctx.failure(f"The port and/or device parameter are out of range: port={port} "
                          f"(must be in range [0, {controller['ports'] - 1}])")
    mutable(ctx, vm, "AttachDevice(Bstr(pszCtl).raw(), port, device, DeviceType_HardDisk, "
            "pMedium2Mount)", 807, "VBoxManageStorageController.cpp")
    slot_key = f"{name}-{port}-{device}"
    medium = values.get("--medium", "")
    kind = values.get("--type", "hdd")
    if medium == "none":
        vm["attachments"].pop(slot_key, None)
        return
    if medium in ("emptydrive", ""):
        vm["attachments"][slot_key] = {"type": kind, "empty": True}
        return
    found = medium_by_path(ctx, medium)
    if found is None:
        path = os.path.abspath(medium)
        if not os.path.exists(path):
            raise ctx.com_error(
                f"Could not find file for the medium '{path}' (VERR_FILE_NOT_FOUND)",
                "VBOX_E_FILE_ERROR (0x80bb0004)", "MediumWrap", "IMedium",
                "OpenMedium(Bstr(pszMedium).raw(), devTypeRequested, accessMode, "
                "fForceNewUuidOnOpen, pMedium2Mount.asOutParam())", 178,
                "VBoxManageDisk.cpp")
        key = str(uuidlib.uuid4())
        ctx.vbox["media"][key] = {"path": path, "size": os.path.getsize(path),
                                  "kind": "hdd" if kind == "hdd" else "dvd"}
    else:
        key = found[0]
    vm["attachments"][slot_key] = {"type": kind, "medium": key}


def size_option(ctx: Ctx, values: dict[str, str]) -> int:
    """--size MB or --sizebyte N, in bytes."""
    if "--sizebyte" in values:
        return number(ctx, "--sizebyte", values["--sizebyte"])
    if "--size" in values:
        return number(ctx, "--size", values["--size"]) * 1024 * 1024
    raise ctx.syntax("Parameters --size or --sizebyte are required")


def cmd_createmedium(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--filename": True, "--size": True, "--sizebyte": True,
                                      "--format": True, "--variant": True}, ctx)
    if operands and operands[0] not in ("disk", "dvd", "floppy"):
        raise ctx.syntax(f"Invalid parameter '{operands[0]}'")
    filename = values.get("--filename")
    if not filename:
        raise ctx.syntax("Parameters --filename is required")
    size = size_option(ctx, values)
    path = os.path.abspath(filename)
    if os.path.exists(path):
        ctx.err.append(PROGRESS.split("...")[0] + "...")
        raise Fail(1, [f"{ctx.prog}: error: Failed to create medium",
                       f"{ctx.prog}: error: Could not create the medium storage unit "
                       f"'{path}'.",
                       f"{ctx.prog}: error: VBox status code: -105 (VERR_ALREADY_EXISTS)"])
    if not os.path.isdir(os.path.dirname(path)):
        raise ctx.failure(f"Could not create the medium storage unit '{path}'. "
                          "(VERR_PATH_NOT_FOUND)")
    with open(path, "wb") as handle:
        handle.write(b"<<< Oracle VM VirtualBox Disk Image >>>\n")
    key = str(uuidlib.uuid4())
    ctx.vbox["media"][key] = {"path": path, "size": size, "kind": "hdd",
                              "format": values.get("--format", "VDI").upper()}
    ctx.err.append(PROGRESS)
    ctx.out.append(f"Medium created. UUID: {key}")


def cmd_clonemedium(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--format": True, "--variant": True,
                                      "--existing": False}, ctx)
    operands = [o for o in operands if o not in ("disk", "dvd", "floppy")]
    if len(operands) != 2:
        raise ctx.syntax("Mandatory input and output file parameter missing")
    source, target = operands
    found = medium_by_path(ctx, source)
    path = os.path.abspath(source)
    if found is None and not os.path.exists(path):
        raise ctx.com_error(
            f"Could not find file for the medium '{path}' (VERR_FILE_NOT_FOUND)",
            "VBOX_E_FILE_ERROR (0x80bb0004)", "MediumWrap", "IMedium",
            "OpenMedium(Bstr(pszSrc).raw(), enmDevType, enmAccessMode, fForceNewUuidOnOpen, "
            "pSrcMedium.asOutParam())", 1134, "VBoxManageDisk.cpp")
    if found is None:
        # a raw image: its virtual size is its file size
        key = str(uuidlib.uuid4())
        ctx.vbox["media"][key] = {"path": path, "size": os.path.getsize(path), "kind": "hdd",
                                  "format": "RAW"}
        found = (key, ctx.vbox["media"][key])
    destination = os.path.abspath(target)
    if os.path.exists(destination):
        raise Fail(1, [f"{ctx.prog}: error: Cannot register the hard disk '{destination}' "
                       "because a hard disk with UUID {...} already exists"])
    with open(found[1]["path"], "rb") as src, open(destination, "wb") as dst:
        dst.write(src.read())
    key = str(uuidlib.uuid4())
    fmt = values.get("--format", "VDI").upper()
    ctx.vbox["media"][key] = {"path": destination, "size": found[1]["size"], "kind": "hdd",
                              "format": fmt}
    ctx.err.append(PROGRESS)
    ctx.out.append(f"Clone medium created in format '{fmt}'. UUID: {key}")


def cmd_modifymedium(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--resize": True, "--resizebyte": True,
                                      "--compact": False}, ctx)
    operands = [o for o in operands if o not in ("disk", "dvd", "floppy")]
    if not operands:
        raise ctx.syntax("Missing medium name")
    found = medium_by_path(ctx, operands[0])
    if found is None:
        raise ctx.com_error(
            f"Could not find file for the medium '{os.path.abspath(operands[0])}' "
            "(VERR_FILE_NOT_FOUND)", "VBOX_E_FILE_ERROR (0x80bb0004)", "MediumWrap",
            "IMedium", "OpenMedium(Bstr(pszFilenameOrUuid).raw(), enmDevType, "
            "AccessMode_ReadWrite, pMedium.asOutParam())", 178, "VBoxManageDisk.cpp")
    key, medium = found
    if "--resizebyte" in values or "--resize" in values:
        size = (number(ctx, "--resizebyte", values["--resizebyte"]) if "--resizebyte" in values
                else number(ctx, "--resize", values["--resize"]) * 1024 * 1024)
        for vm in ctx.vbox["vms"]:
            uses = any(s.get("medium") == key for s in vm["attachments"].values())
            if uses and vm["state"] in RUNNING_STATES:
                raise ctx.com_error(
                    f"Cannot resize medium '{medium['path']}' because it is locked for "
                    "writing", "VBOX_E_INVALID_OBJECT_STATE (0x80bb0007)", "MediumWrap",
                    "IMedium", "Resize(cbNewSize, pProgress.asOutParam())", 834,
                    "VBoxManageDisk.cpp")
        if size < medium["size"]:
            ctx.err.append("0%...")
            raise Fail(1, [f"{ctx.prog}: error: Failed to resize medium",
                           f"{ctx.prog}: error: Shrinking is not yet supported for medium "
                           f"'{medium['path']}'"])
        medium["size"] = size
        ctx.err.append(PROGRESS)


def cmd_closemedium(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--delete": False}, ctx)
    operands = [o for o in operands if o not in ("disk", "dvd", "floppy")]
    if not operands:
        raise ctx.syntax("Missing medium name")
    found = medium_by_path(ctx, operands[0])
    path = os.path.abspath(operands[0])
    if found is None and not os.path.exists(path):
        raise ctx.com_error(
            f"Could not find file for the medium '{path}' (VERR_FILE_NOT_FOUND)",
            "VBOX_E_FILE_ERROR (0x80bb0004)", "MediumWrap", "IMedium",
            "OpenMedium(Bstr(pszFilenameOrUuid).raw(), enmDevType, AccessMode_ReadWrite, "
            "fForceNewUuidOnOpen, pMedium.asOutParam())", 178, "VBoxManageDisk.cpp")
    if found is not None:
        key, medium = found
        for vm in ctx.vbox["vms"]:
            if any(s.get("medium") == key for s in vm["attachments"].values()):
                raise ctx.com_error(
                    f"Medium '{medium['path']}' cannot be closed because it is still "
                    f"attached to 1 virtual machines", "VBOX_E_OBJECT_IN_USE (0x80bb000c)",
                    "MediumWrap", "IMedium", "Close()", 1858, "VBoxManageDisk.cpp")
        del ctx.vbox["media"][key]
        path = medium["path"]
    if "--delete" in values and os.path.exists(path):
        ctx.err.append(PROGRESS)
        os.remove(path)


def cmd_startvm(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--type": True, "--putenv": True}, ctx)
    if not operands:
        raise ctx.syntax("at least one VM name or uuid required")
    for ref in operands:
        vm = find_vm(ctx, ref)
        if vm["state"] in RUNNING_STATES:
            raise ctx.com_error(
                f"The machine '{vm['name']}' is already locked by a session (or being locked "
                "or unlocked)", "VBOX_E_INVALID_OBJECT_STATE (0x80bb0007)", "MachineWrap",
                "IMachine", "LaunchVMProcess(a->session, sessionType.raw(), "
                "ComSafeArrayAsInParam(aBstrEnv), progress.asOutParam())", 881,
                "VBoxManageMisc.cpp")
        ctx.out.append(f'Waiting for VM "{ref}" to power on...')
        vm["state"] = "running"
        vm["state_since"] = now_text()
        vm["session"] = values.get("--type", "gui")
        ctx.out.append(f'VM "{ref}" has been successfully started.')


def cmd_controlvm(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ctx.syntax("Not enough parameters")
    vm = find_vm(ctx, args[0])
    action = args[1]
    if action not in ("poweroff", "acpipowerbutton", "savestate", "pause", "resume", "reset"):
        raise ctx.failure(f"Invalid parameter '{action}'")
    if vm["state"] not in RUNNING_STATES:
        raise ctx.failure(f"Machine '{vm['name']}' is not currently running.")
    if action == "poweroff":
        ctx.err.append(PROGRESS)
        power_off(vm)
    elif action == "acpipowerbutton":
        vm["acpi_pressed"] = time.time()
    elif action == "savestate":
        ctx.err.append(PROGRESS)
        vm["state"] = "saved"
        vm["state_since"] = now_text()


def cmd_unregistervm(ctx: Ctx, args: list[str]) -> None:
    operands, values = options(args, {"--delete": False, "--delete-all": False}, ctx)
    if not operands:
        raise ctx.syntax("VM name required")
    vm = find_vm(ctx, operands[0])
    if vm["state"] in RUNNING_STATES:
        raise ctx.com_error(f"Cannot unregister the machine '{vm['name']}' while it is locked",
                            "VBOX_E_INVALID_OBJECT_STATE (0x80bb0007)", "MachineWrap",
                            "IMachine", "Unregister(CleanupMode_DetachAllReturnHardDisksOnly, "
                            "ComSafeArrayAsOutParam(aMedia))", 196, "VBoxManageMisc.cpp")
    ctx.vbox["vms"].remove(vm)
    hdds = [slot["medium"] for slot in vm["attachments"].values()
            if slot.get("medium") and slot["type"] == "hdd"]
    dvds = [slot["medium"] for slot in vm["attachments"].values()
            if slot.get("medium") and slot["type"] == "dvddrive"]
    delete = "--delete" in values or "--delete-all" in values
    for key in hdds + (dvds if "--delete-all" in values else []):
        medium = ctx.vbox["media"].pop(key, None)
        if medium and delete and os.path.exists(medium["path"]):
            os.remove(medium["path"])
    if delete:
        ctx.err.append(PROGRESS)
        folder = os.path.dirname(vm["cfgfile"])
        for leftover in (vm["cfgfile"], vm["cfgfile"] + "-prev",
                         vm["cfgfile"][:-len(".vbox")] + ".nvram"):
            if os.path.exists(leftover):
                os.remove(leftover)
        shutil.rmtree(os.path.join(folder, "Logs"), ignore_errors=True)
        try:
            os.rmdir(folder)
        except OSError:
            pass


COMMANDS = {
    "list": cmd_list, "showvminfo": cmd_showvminfo, "getextradata": cmd_getextradata,
    "setextradata": cmd_setextradata, "createvm": cmd_createvm, "modifyvm": cmd_modifyvm,
    "storagectl": cmd_storagectl, "storageattach": cmd_storageattach,
    "createmedium": cmd_createmedium, "createhd": cmd_createmedium,
    "modifymedium": cmd_modifymedium, "modifyhd": cmd_modifymedium,
    "closemedium": cmd_closemedium, "clonemedium": cmd_clonemedium, "clonehd": cmd_clonemedium,
    "startvm": cmd_startvm, "controlvm": cmd_controlvm, "unregistervm": cmd_unregistervm,
}


def main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/VBoxManage."""
    directory = fstate.state_dir()
    with fstate.locked(directory):
        data = fstate.load(directory)
        data["calls"].append({"tool": "VBoxManage", "argv": argv})
        ctx = Ctx(directory, data)
        code = 0
        args = [a for a in argv if a not in ("-q", "--nologo")]
        try:
            settle(ctx)
            if not args:
                ctx.out.append("Oracle VirtualBox Command Line Management Interface Version "
                               + ctx.vbox["version"].split("r")[0])
                raise Fail(2, [])
            if args[0] in ("--version", "-v", "-V"):
                ctx.out.append(ctx.vbox["version"])
            else:
                handler = COMMANDS.get(args[0])
                if handler is None:
                    raise ctx.syntax(f"Invalid command '{args[0]}'")
                fault = fstate.take_fault(data, "VBoxManage", " ".join(args))
                if fault is not None:
                    raise Fail(int(fault.get("code", 1)), [
                        f"{ctx.prog}: error: " + fault.get(
                            "message", "The object is not ready (injected fault)"),
                        f"{ctx.prog}: error: Details: code E_ACCESSDENIED (0x80070005), "
                        f"component SessionMachine, interface IMachine, callee {ctx.callee}"])
                handler(ctx, args[1:])
        except Fail as exc:
            ctx.err.extend(exc.lines)
            code = exc.code
        fstate.save(directory, data)
    fstate.write_out(data, sys.stdout, ctx.out)
    fstate.write_out(data, sys.stderr, ctx.err)
    return code
