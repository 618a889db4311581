"""Fake ESXi host tools: `vim-cmd`, `vmkfstools` and `vmware -v`, over one state directory.

The directory is named by DECL_FAKE_ESXI_STATE. It holds `state.json` and the datastores,
each a folder `vmfs/volumes/<uuid>` (what `hostsvc/datastore/listsummary` reports as the
datastore's url, as a real host does). Registered VMs are vmids pointing at .vmx files; what
getallvms shows comes from the .vmx files themselves, read at each call.

Behaviour copied from the real tools (sources in docs/facts/esxi.md):
- every vim-cmd message, faults included, goes to stdout; a fault is printed as
  `(vim.fault.NAME) {` ... `}` and the exit code is 0 all the same; power.on and power.off
  failures are prefixed with `Power on failed: ` / `Power off failed: `;
- getallvms: a header, one row per VM (sorted by vmid as text) with columns padded to the
  widest entry, the header's widths unrelated to the rows', names may hold spaces, the
  File column is `[datastore] dir/name.vmx`, the annotation is printed raw (a newline in it
  starts a new output line), and a VM whose .vmx cannot be read is reported as
  `Skipping invalid VM 'N'` (on stderr: terraform-provider-esxi discards it with
  2>/dev/null);
- power.getstate prints `Retrieved runtime info` then `Powered on|Powered off|Suspended`;
- power.on adds keys to the .vmx (uuid.bios, uuid.location, ethernetN.generatedAddress...),
  and the configuration that was loaded at power-on is written back at power-off: edits made
  to the .vmx while the VM runs are lost;
- power.shutdown needs VMware Tools: without them it prints vim.fault.ToolsUnavailable;
- solo/registervm prints the new vmid; vmkfstools prints progress and exits 255 on errors.

Test knobs in the state: a VM's `tools` is "none" (default), "running" (a guest shutdown
powers it off) or "hang" (the guest accepts the shutdown and never powers off).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from typing import Any

from tests.fakes.datacenter import state as fstate

ENV = "DECL_FAKE_ESXI_STATE"
VERSION = "VMware ESXi 8.0.2 build-22380479"
SECTOR = 512

GUEST_IDS = {
    "otherlinux-64": "otherLinux64Guest", "otherlinux": "otherLinuxGuest",
    "debian12-64": "debian12_64Guest", "debian11-64": "debian11_64Guest",
    "ubuntu-64": "ubuntu64Guest", "centos-64": "centos64Guest", "other": "otherGuest",
    "other-64": "otherGuest64", "windows9-64": "windows9_64Guest",
}

ADDED_AT_POWER_ON = ("uuid.bios", "uuid.location", "vc.uuid", "sched.swap.derivedName",
                     "vmci0.id", "cleanShutdown", "softPowerOff")


def empty_state() -> dict[str, Any]:
    """An ESXi host with one empty datastore, datastore1."""
    return {"version": VERSION, "datastores": {}, "next_vmid": 1, "vms": {},
            "faults": [], "calls": []}


def host_dir() -> str:
    """This host's directory (made on first use, with datastore1)."""
    return fstate.state_dir(ENV)


def ensure_datastore(directory: str, data: dict[str, Any], name: str) -> str:
    """The folder of datastore `name`, made when missing."""
    store = data["datastores"].get(name)
    if store is None:
        raw = uuid.uuid5(uuid.NAMESPACE_URL, f"{directory}/{name}").hex
        store = {"uuid": f"{raw[:8]}-{raw[8:16]}-{raw[16:20]}-{raw[20:32]}"}
        data["datastores"][name] = store
    path = os.path.join(directory, "vmfs", "volumes", store["uuid"])
    os.makedirs(path, exist_ok=True)
    return path


def datastore_of(directory: str, data: dict[str, Any], path: str) -> tuple[str, str] | None:
    """(datastore name, path inside it) of an absolute path, or None."""
    real = os.path.realpath(path)
    for name in data["datastores"]:
        root = os.path.realpath(ensure_datastore(directory, data, name))
        if real.startswith(root + os.sep):
            return name, os.path.relpath(real, root)
    return None


# -- .vmx files ---------------------------------------------------------------------------

_LINE = re.compile(r'^\s*([A-Za-z0-9_.:\-]+)\s*=\s*"(.*)"\s*$')


def read_vmx(path: str) -> list[tuple[str, str]]:
    """(key, raw value) pairs of a .vmx in file order (comments and blanks dropped)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    pairs = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            pairs.append((match[1], match[2]))
    return pairs


def vmx_value(pairs: list[tuple[str, str]], key: str, default: str = "") -> str:
    """The value of `key` (keys compare without case, as VMware does), decoded."""
    for name, value in pairs:
        if name.lower() == key.lower():
            return re.sub(r"\|([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), value)
    return default


def write_vmx(path: str, pairs: list[tuple[str, str]]) -> None:
    """Write pairs as the host does (`key = "value"`, one a line)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f'{k} = "{v}"\n' for k, v in pairs))


def set_key(pairs: list[tuple[str, str]], key: str, value: str) -> None:
    """Set or append a key."""
    for index, (name, _) in enumerate(pairs):
        if name.lower() == key.lower():
            pairs[index] = (name, value)
            return
    pairs.append((key, value))


def disk_files(vmx_path: str, pairs: list[tuple[str, str]]) -> list[str]:
    """Absolute paths of the .vmdk files a .vmx names."""
    out = []
    for key, _ in pairs:
        if re.match(r"^(scsi|sata|nvme|ide)\d+:\d+\.fileName$", key, re.IGNORECASE):
            name = vmx_value(pairs, key)
            if name.lower().endswith(".vmdk"):
                out.append(name if name.startswith("/")
                           else os.path.join(os.path.dirname(vmx_path), name))
    return out


# -- faults -------------------------------------------------------------------------------

def fault_text(fault: str, msg: str, **fields: str) -> str:
    """A vim fault as vim-cmd prints it (ESXi 6.5 and later: with faultMessage)."""
    lines = [f"({fault}) {{", "   faultCause = (vmodl.MethodFault) null,",
             "   faultMessage = <unset>,"]
    lines += [f"   {key} = {value}," for key, value in fields.items()]
    lines += [f'   msg = "{msg}",', "}"]
    return "\n".join(lines) + "\n"


def not_found(vmid: str) -> str:
    return fault_text("vim.fault.NotFound", f'Unable to find a VM corresponding to "{vmid}"')


def invalid_power(state_word: str) -> str:
    return fault_text("vim.fault.InvalidPowerState",
                      "The attempted operation cannot be performed in the current state "
                      f"({state_word}).",
                      requestedState='"poweredOn"' if state_word == "Powered off"
                      else '"poweredOff"',
                      existingState='"poweredOff"' if state_word == "Powered off"
                      else '"poweredOn"')


POWER_WORDS = {"on": "Powered on", "off": "Powered off", "suspended": "Suspended"}


# -- vim-cmd ------------------------------------------------------------------------------

class Out:
    """What a command prints and returns."""

    def __init__(self) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.code = 0

    def out(self, text: str) -> None:
        self.stdout.append(text)

    def err(self, text: str) -> None:
        self.stderr.append(text)


def vim_cmd(argv: list[str]) -> int:
    """Entry point of the fake vim-cmd."""
    directory = host_dir()
    out = Out()
    with fstate.locked(directory):
        data = fstate.load(directory, empty_state)
        ensure_datastore(directory, data, "datastore1")
        data["calls"].append(["vim-cmd", *argv])
        fault = fstate.take_fault(data, "vim-cmd", " ".join(argv))
        if fault is not None:
            out.out(fault.get("message") or fault_text(
                "vim.fault.TaskInProgress", "The operation is not allowed in the current "
                "state."))
            out.code = int(fault.get("code", 0))
        else:
            _vim_cmd(directory, data, argv, out)
        fstate.save(directory, data)
    sys.stdout.write("".join(out.stdout))
    sys.stderr.write("".join(out.stderr))
    return out.code


def _vim_cmd(directory: str, data: dict[str, Any], argv: list[str], out: Out) -> None:
    if not argv:
        out.out("Commands available under /:\nhbrsvc/       internalsvc/  solo/         "
                "vmsvc/\nhostsvc/      proxysvc/     vimsvc/       help\n")
        return
    command, args = argv[0], argv[1:]
    if command == "vmsvc/getallvms":
        _getallvms(directory, data, out)
    elif command == "hostsvc/datastore/listsummary":
        _listsummary(directory, data, out)
    elif command == "solo/registervm":
        _registervm(directory, data, args, out)
    elif command.startswith("vmsvc/") and command[6:] in VM_COMMANDS:
        if not args:
            out.out("Insufficient arguments.\n")
            out.code = 1
            return
        vm = data["vms"].get(args[0])
        if vm is None:
            out.out(not_found(args[0]))
            return
        VM_COMMANDS[command[6:]](directory, data, args[0], vm, out)
    else:
        out.err(f"Unknown command: '{command}'\n")
        out.code = 1


def _rows(directory: str, data: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows, invalid = [], []
    for vmid in sorted(data["vms"], key=int):
        vm = data["vms"][vmid]
        located = datastore_of(directory, data, vm["vmx"])
        try:
            pairs = read_vmx(vm["vmx"])
        except OSError:
            invalid.append(vmid)
            continue
        if located is None:
            invalid.append(vmid)
            continue
        guest = vmx_value(pairs, "guestOS", "other")
        hw = vmx_value(pairs, "virtualHW.version", "")
        rows.append([vmid, vmx_value(pairs, "displayName", os.path.basename(vm["vmx"])),
                     f"[{located[0]}] {located[1]}", GUEST_IDS.get(guest, guest + "Guest"),
                     f"vmx-{int(hw):02d}" if hw.isdigit() else "",
                     vmx_value(pairs, "annotation")])
    return rows, invalid


def _getallvms(directory: str, data: dict[str, Any], out: Out) -> None:
    # As in an ESXi 6.5 capture: the header has widths of its own, unrelated to the rows';
    # rows come sorted by vmid as text (1, 11, 2...); each row's columns are padded to the
    # widest entry plus three spaces (the guest column, plus six).
    rows, invalid = _rows(directory, data)
    for vmid in invalid:
        out.err(f"Skipping invalid VM '{vmid}'\n")
    out.out("Vmid          Name                               File                             "
            "Guest OS       Version   Annotation\n")
    rows.sort(key=lambda r: r[0])
    widths = [7] + [max([len(r[i]) for r in rows] or [0]) + extra
                    for i, extra in ((1, 3), (2, 3), (3, 6), (4, 4))]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)] + [row[5]]
        out.out("".join(cells).rstrip(" ") + "\n")


def _listsummary(directory: str, data: dict[str, Any], out: Out) -> None:
    lines = ["(vim.Datastore.Summary) ["]
    for index, name in enumerate(sorted(data["datastores"])):
        path = ensure_datastore(directory, data, name)
        stat = shutil.disk_usage(path)
        lines += ["   (vim.Datastore.Summary) {",
                  f"      datastore = 'vim.Datastore:{data['datastores'][name]['uuid']}',",
                  f'      name = "{name}",',
                  f'      url = "{path}",',
                  f"      capacity = {stat.total},",
                  f"      freeSpace = {stat.free},",
                  "      uncommitted = 0,",
                  "      accessible = true,",
                  "      multipleHostAccess = <unset>,",
                  '      type = "VMFS",',
                  "      maintenanceMode = \"normal\",",
                  "   }" + ("," if index < len(data["datastores"]) - 1 else "")]
    lines.append("]")
    out.out("\n".join(lines) + "\n")


def _registervm(directory: str, data: dict[str, Any], args: list[str], out: Out) -> None:
    if not args:
        out.out("Insufficient arguments.\n")
        out.code = 1
        return
    path = args[0]
    if not path.startswith("/") or not os.path.isfile(path) \
            or datastore_of(directory, data, path) is None:
        out.out(fault_text("vim.fault.NotFound",
                           "The object or item referred to could not be found."))
        return
    for vmid, vm in data["vms"].items():
        if os.path.realpath(vm["vmx"]) == os.path.realpath(path):
            out.out(fault_text("vim.fault.AlreadyExists",
                               f"The specified key, name, or identifier '{vmid}' already "
                               "exists.", name=f'"{vmid}"'))
            return
    vmid = str(data["next_vmid"])
    data["next_vmid"] += 1
    data["vms"][vmid] = {"vmx": path, "power": "off", "tools": "none"}
    out.out(f"{vmid}\n")


def _getstate(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
              out: Out) -> None:
    out.out(f"Retrieved runtime info\n{POWER_WORDS[vm['power']]}\n")


def _power_on(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
              out: Out) -> None:
    if vm["power"] == "on":
        out.out("Powering on VM:\nPower on failed: " + invalid_power("Powered on"))
        return
    try:
        pairs = read_vmx(vm["vmx"])
    except OSError:
        out.out("Powering on VM:\nPower on failed: " + fault_text(
            "vim.fault.InvalidVmConfig", "The virtual machine configuration is invalid."))
        return
    for disk in disk_files(vm["vmx"], pairs):
        if not os.path.isfile(disk):
            located = datastore_of(directory, data, disk)
            shown = f"[{located[0]}] {located[1]}" if located else disk
            out.out("Powering on VM:\nPower on failed: " + fault_text(
                "vim.fault.FileNotFound", f"File {shown} was not found", file=f'"{shown}"'))
            return
    for key in ADDED_AT_POWER_ON:
        set_key(pairs, key, {"cleanShutdown": "FALSE", "softPowerOff": "FALSE"}.get(
            key, uuid.uuid4().hex[:16]))
    for key, _ in list(pairs):
        match = re.match(r"^(ethernet\d+)\.present$", key, re.IGNORECASE)
        if match and vmx_value(pairs, key).upper() == "TRUE":
            set_key(pairs, f"{match[1]}.generatedAddress", "00:0c:29:12:34:56")
            set_key(pairs, f"{match[1]}.addressType", "generated")
    write_vmx(vm["vmx"], pairs)
    vm["loaded"] = pairs  # what the VMX process holds: written back at power-off
    vm["power"] = "on"
    out.out("Powering on VM:\n")


def _power_down(vm: dict[str, Any]) -> None:
    loaded = vm.pop("loaded", None)
    if loaded is not None and os.path.isdir(os.path.dirname(vm["vmx"])):
        pairs = [tuple(p) for p in loaded]
        set_key(pairs, "cleanShutdown", "TRUE")  # type: ignore[arg-type]
        write_vmx(vm["vmx"], pairs)  # type: ignore[arg-type]
    vm["power"] = "off"


def _power_off(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
               out: Out) -> None:
    if vm["power"] == "off":
        out.out("Powering off VM:\nPower off failed: " + invalid_power("Powered off"))
        return
    _power_down(vm)
    out.out("Powering off VM:\n")


def _shutdown(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
              out: Out) -> None:
    if vm["power"] != "on":
        out.out(invalid_power(POWER_WORDS[vm["power"]]))
        return
    tools = vm.get("tools", "none")
    if tools == "none":
        out.out(fault_text("vim.fault.ToolsUnavailable",
                           "Cannot complete operation because VMware Tools is not running "
                           "in this virtual machine."))
        return
    if tools == "running":
        _power_down(vm)


def _get_guest(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
               out: Out) -> None:
    running = vm["power"] == "on" and vm.get("tools", "none") != "none"
    status = "guestToolsRunning" if running else "guestToolsNotRunning"
    installed = vm.get("tools", "none") != "none"
    out.out("(vim.vm.GuestInfo) {\n"
            f'   toolsStatus = "{"toolsOk" if running else "toolsNotRunning"}",\n'
            f'   toolsVersionStatus = "{"guestToolsCurrent" if installed else "guestToolsNotInstalled"}",\n'  # noqa: E501
            f'   toolsRunningStatus = "{status}",\n'
            f'   toolsVersion = "{"12352" if installed else "0"}",\n'
            '   guestId = <unset>,\n'
            '   guestState = "' + ("running" if running else "notRunning") + '",\n'
            "}\n")


def _reload(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
            out: Out) -> None:
    if not os.path.isfile(vm["vmx"]):
        out.out(fault_text("vim.fault.InvalidVmConfig",
                           "The virtual machine configuration is invalid."))


def _destroy(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
             out: Out) -> None:
    if vm["power"] != "off":
        out.out(invalid_power(POWER_WORDS[vm["power"]]))
        return
    folder = os.path.dirname(vm["vmx"])
    del data["vms"][vmid]
    if os.path.isdir(folder):
        shutil.rmtree(folder)


def _unregister(directory: str, data: dict[str, Any], vmid: str, vm: dict[str, Any],
                out: Out) -> None:
    if vm["power"] != "off":
        out.out(invalid_power(POWER_WORDS[vm["power"]]))
        return
    del data["vms"][vmid]


VM_COMMANDS = {
    "power.getstate": _getstate, "power.on": _power_on, "power.off": _power_off,
    "power.shutdown": _shutdown, "get.guest": _get_guest, "reload": _reload,
    "destroy": _destroy, "unregister": _unregister,
}


# -- vmkfstools ---------------------------------------------------------------------------

_SIZE = re.compile(r"^([0-9]+)([kKmMgGtT]?)$")


def parse_size(text: str) -> int | None:
    """Bytes of a vmkfstools size (1024-based units)."""
    match = _SIZE.match(text)
    if not match:
        return None
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[match[2].lower()]
    return int(match[1]) * factor


def descriptor(flat_name: str, size: int, disk_type: str) -> str:
    """A VMFS disk descriptor for a disk of `size` bytes."""
    sectors = size // SECTOR
    cylinders = max(1, sectors // (255 * 63))
    return ("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\n"
            "parentCID=ffffffff\ncreateType=\"vmfs\"\n\n# Extent description\n"
            f"RW {sectors} VMFS \"{flat_name}\"\n\n# The Disk Data Base\n#DDB\n\n"
            "ddb.adapterType = \"lsilogic\"\n"
            f"ddb.geometry.cylinders = \"{cylinders}\"\nddb.geometry.heads = \"255\"\n"
            "ddb.geometry.sectors = \"63\"\n"
            + ("ddb.thinProvisioned = \"1\"\n" if disk_type == "thin" else "")
            + "ddb.virtualHWVersion = \"13\"\n")


def disk_size(path: str) -> int | None:
    """Bytes of a disk from its descriptor's extent lines."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return None
    sectors = [int(m[1]) for m in re.finditer(r'^RW (\d+) \w+ "', text, re.MULTILINE)]
    return sum(sectors) * SECTOR if sectors else None


def vmkfstools(argv: list[str]) -> int:
    """Entry point of the fake vmkfstools (-c SIZE [-d TYPE] PATH, -X SIZE PATH)."""
    directory = host_dir()
    out = Out()
    with fstate.locked(directory):
        data = fstate.load(directory, empty_state)
        ensure_datastore(directory, data, "datastore1")
        data["calls"].append(["vmkfstools", *argv])
        fault = fstate.take_fault(data, "vmkfstools", " ".join(argv))
        if fault is not None:
            out.err(fault.get("message") or "Failed to create virtual disk: Input/output "
                    "error (327689).\n")
            out.code = int(fault.get("code", 255))
        else:
            _vmkfstools(directory, data, argv, out)
        fstate.save(directory, data)
    sys.stdout.write("".join(out.stdout))
    sys.stderr.write("".join(out.stderr))
    return out.code


def _vmkfstools(directory: str, data: dict[str, Any], argv: list[str], out: Out) -> None:
    options: dict[str, str] = {}
    rest: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in ("-c", "-d", "-X", "-a") and index + 1 < len(argv):
            options[argv[index]] = argv[index + 1]
            index += 2
        else:
            rest.append(argv[index])
            index += 1
    if len(rest) != 1 or ("-c" in options) == ("-X" in options):
        out.err("vmkfstools: invalid arguments\n")  # the real usage text is long
        out.code = 1
        return
    path = rest[0]
    size = parse_size(options.get("-c") or options.get("-X") or "")
    if size is None or size <= 0:
        out.err(f"Invalid size: {options.get('-c') or options.get('-X')}\n")
        out.code = 255
        return
    if "-c" in options:
        disk_type = options.get("-d", "zeroedthick")
        if disk_type not in ("thin", "zeroedthick", "eagerzeroedthick"):
            out.err(f"Invalid disk type: {disk_type}\n")
            out.code = 255
            return
        if os.path.exists(path):
            out.err("Failed to create virtual disk: The file already exists (39).\n")
            out.code = 255
            return
        if not os.path.isdir(os.path.dirname(path)) \
                or datastore_of(directory, data, os.path.dirname(path) + "/x") is None:
            out.err("Failed to create virtual disk: The system cannot find the file "
                    "specified (25).\n")
            out.code = 255
            return
        flat = os.path.basename(path)[:-5] + "-flat.vmdk" if path.endswith(".vmdk") \
            else os.path.basename(path) + "-flat.vmdk"
        with open(os.path.join(os.path.dirname(path), flat), "wb") as handle:
            handle.truncate(size)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(descriptor(flat, size, disk_type))
        if disk_type == "eagerzeroedthick":
            out.out(f"Creating disk '{path}' and zeroing it out...\n")
        out.out("Create: 100% done.\n")
        return
    current = disk_size(path)
    if current is None:
        out.err(f"Failed to open disk '{path}': The system cannot find the file "
                "specified (25).\n")  # unverified wording
        out.code = 255
        return
    for vm in data["vms"].values():
        if vm["power"] == "on":
            try:
                names = disk_files(vm["vmx"], read_vmx(vm["vmx"]))
            except OSError:
                continue
            if os.path.realpath(path) in {os.path.realpath(n) for n in names}:
                out.err("Failed to extend disk : Failed to lock the file (16392).\n")
                out.code = 255
                return
    if size < current:
        out.err("Failed to extend disk : The new size is smaller than the current size "
                "of the disk.\n")  # unverified wording
        out.code = 255
        return
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    flat_match = re.search(r'^RW \d+ VMFS "([^"]+)"', text, re.MULTILINE)
    flat_name = flat_match[1] if flat_match else os.path.basename(path)[:-5] + "-flat.vmdk"
    with open(os.path.join(os.path.dirname(path), flat_name), "ab") as handle:
        handle.truncate(size)
    thin = "ddb.thinProvisioned" in text
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(descriptor(flat_name, size, "thin" if thin else "zeroedthick"))
    out.out("Grow: 100% done.\n")


def vmware(argv: list[str]) -> int:
    """Entry point of the fake `vmware` (only -v and -l)."""
    directory = host_dir()
    data = fstate.load(directory, empty_state)
    if argv in (["-v"], ["-vl"]):
        sys.stdout.write(data["version"] + "\n")
        return 0
    if argv == ["-l"]:
        sys.stdout.write(data["version"].rsplit(" build", 1)[0] + " GA\n")
        return 0
    sys.stderr.write("Usage: vmware [-v] [-l]\n")
    return 1
