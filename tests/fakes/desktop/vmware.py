"""Stateful fakes of VMware Workstation/Fusion's `vmrun` and `vmware-vdiskmanager`.

What they reproduce (see docs/facts/vmware.md for the sources):
- vmrun prints everything on stdout, errors included, as `Error: ...`, exit code 255.
- `vmrun -T ws|fusion|player`: a host type that is not the installed product prints
  `Unable to connect to host.` then `Error: The operation is not supported for the
  specified parameters`.
- `list` prints `Total running VMs: N` then one absolute .vmx path a line.
- No verb creates a VM: the caller writes the .vmx and makes disks with vdiskmanager.
- While a VM runs its VMX process owns the .vmx: it adds keys at power-on (uuid.bios,
  uuid.location, ethernet0.generatedAddress...) and writes its own copy back at power-off,
  so edits made to the file while it runs are lost.
- `stop soft` needs VMware Tools in the guest; state `soft_stop` says whether they answer
  ("ok"), are missing ("no_tools") or the stop hangs ("hang").
- vmware-vdiskmanager `-c -s SIZE -a ADAPTER -t TYPE FILE` makes a VMDK (type 1: a text
  descriptor plus 2 GB extents; type 0: one sparse file with the descriptor inside) and
  prints `Creating disk 'FILE'` ... `Virtual disk creation successful.`; `-x SIZE FILE`
  grows it. It refuses to overwrite a file and to touch a disk of a running VM.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from typing import Any

from tests.fakes.desktop import state as fstate

SECTOR = 512
EXTENT_SECTORS = 4192256  # 2047 MiB, the split size of type 1 disks


class Fail(Exception):
    """Leave with `code` after printing `lines` on stdout."""

    def __init__(self, code: int, lines: list[str]) -> None:
        super().__init__(code)
        self.code = code
        self.lines = lines


def vmrun_error(message: str) -> Fail:
    """vmrun's only error form: on stdout, exit 255."""
    return Fail(255, [f"Error: {message}"])


# -- .vmx helpers (the fake's own, deliberately simple) ------------------------------------------

LINE = re.compile(r'^\s*([^=#\s][^=]*?)\s*=\s*"(.*)"\s*$')


def vmx_get(text: str, key: str) -> str | None:
    """A key's value (keys compare case-insensitively)."""
    for line in text.splitlines():
        match = LINE.match(line)
        if match and match.group(1).lower() == key.lower():
            return match.group(2)
    return None


def vmx_add(text: str, key: str, value: str) -> str:
    """The text with `key = "value"` appended when the key is missing."""
    if vmx_get(text, key) is not None:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + f'{key} = "{value}"\n'


def vmx_disks(text: str, vmx_path: str) -> list[str]:
    """Absolute paths of the .vmdk files a .vmx names."""
    out = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and match.group(1).lower().endswith(".filename") and \
                match.group(2).lower().endswith(".vmdk"):
            name = match.group(2)
            out.append(name if os.path.isabs(name)
                       else os.path.join(os.path.dirname(vmx_path), name))
    return out


# -- vmrun --------------------------------------------------------------------------------------

def power_on_keys(text: str, vmx_path: str) -> str:
    """Keys Workstation adds to a .vmx when it powers the VM on."""
    seed = int(hashlib.sha256(vmx_path.encode()).hexdigest()[:12], 16)
    hexes = f"{seed:012x}"
    pairs = " ".join(hexes[i:i + 2] for i in range(0, 12, 2))
    text = vmx_add(text, ".encoding", "UTF-8")
    text = vmx_add(text, "uuid.bios", f"56 4d {pairs} 00 00 00 00-00 00 00 00 00 01")
    text = vmx_add(text, "uuid.location", f"56 4d {pairs} 00 00 00 00-00 00 00 00 00 01")
    text = vmx_add(text, "vmci0.id", str(seed % 2 ** 31))
    if (vmx_get(text, "ethernet0.present") or "").upper() == "TRUE":
        text = vmx_add(text, "ethernet0.generatedAddress", "00:0c:29:" + ":".join(
            hexes[i:i + 2] for i in (0, 2, 4)))
        text = vmx_add(text, "ethernet0.generatedAddressOffset", "0")
    return text


def running(data: dict[str, Any]) -> dict[str, Any]:
    """Running VMs by .vmx path."""
    return data["vmware"]["running"]


def cmd_list(data: dict[str, Any], args: list[str]) -> list[str]:
    paths = list(running(data))
    return [f"Total running VMs: {len(paths)}", *paths]


def need_vmx(args: list[str]) -> str:
    """The .vmx operand, which must exist."""
    if not args:
        raise vmrun_error("Invalid argument")
    path = args[0]
    if not os.path.isfile(path):
        raise vmrun_error(f"Cannot open VM: {path}, The virtual machine cannot be found")
    return path


def cmd_start(data: dict[str, Any], args: list[str]) -> list[str]:
    path = need_vmx(args)
    mode = args[1] if len(args) > 1 else "gui"
    if mode not in ("gui", "nogui"):
        raise vmrun_error("Invalid argument")
    if path in running(data):
        raise vmrun_error("The file is already in use")
    with open(path, encoding="utf-8") as handle:
        text = power_on_keys(handle.read(), path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    running(data)[path] = {"started": time.time(), "vmx": text, "mode": mode}
    return []


def power_off(data: dict[str, Any], path: str) -> None:
    """The VMX process exits and writes its copy of the configuration back."""
    entry = running(data).pop(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(entry["vmx"])


def cmd_stop(data: dict[str, Any], args: list[str]) -> list[str]:
    path = need_vmx(args)
    mode = args[1] if len(args) > 1 else "soft"
    if mode not in ("soft", "hard"):
        raise vmrun_error("Invalid argument")
    if path not in running(data):
        raise vmrun_error(f"The virtual machine is not powered on: {path}")
    if mode == "soft":
        behaviour = data["vmware"].get("soft_stop", "ok")
        if behaviour == "no_tools":
            raise vmrun_error("The VMware Tools are not running in the virtual machine: "
                              + path)
        if behaviour == "hang":
            data["_hang"] = float(data["vmware"].get("hang_seconds", 30))
            return []
    power_off(data, path)
    return []


def cmd_delete(data: dict[str, Any], args: list[str]) -> list[str]:
    path = need_vmx(args)
    if path in running(data):
        raise vmrun_error("This VM is in use.")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    folder = os.path.dirname(path)
    for disk in vmx_disks(text, path):
        for extent in disk_files(disk):
            if os.path.exists(extent):
                os.remove(extent)
    base = os.path.splitext(path)[0]
    for leftover in (path, base + ".nvram", base + ".vmsd", base + ".vmxf", base + ".vmss",
                     os.path.join(folder, "vmware.log")):
        if os.path.exists(leftover):
            os.remove(leftover)
    try:
        os.rmdir(folder)
    except OSError:
        pass
    return []


VMRUN = {"list": cmd_list, "start": cmd_start, "stop": cmd_stop, "deleteVM": cmd_delete}


def vmrun_main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/vmrun."""
    directory = fstate.state_dir()
    with fstate.locked(directory):
        data = fstate.load(directory)
        data["calls"].append({"tool": "vmrun", "argv": argv})
        args = list(argv)
        product = data["vmware"].get("product", "ws")
        code = 0
        try:
            host_type = product
            if args[:1] == ["-T"]:
                host_type = args[1] if len(args) > 1 else ""
                args = args[2:]
            if not args:
                lines = ["vmrun version " + data["vmware"]["version"], "",
                         "Usage: vmrun [AUTHENTICATION-FLAGS] COMMAND [PARAMETERS]"]
                raise Fail(255, lines)
            if host_type != product:
                raise Fail(255, ["Unable to connect to host.",
                                 "Error: The operation is not supported for the specified "
                                 "parameters"])
            handler = VMRUN.get(args[0])
            if handler is None:
                raise vmrun_error(f"Unrecognized command: {args[0]}")
            fault = fstate.take_fault(data, "vmrun", " ".join(args))
            if fault is not None:
                raise vmrun_error(fault.get("message", "Insufficient permissions in host "
                                            "operating system (injected fault)"))
            lines = handler(data, args[1:])
        except Fail as exc:
            lines, code = exc.lines, exc.code
        hang = data.pop("_hang", 0)
        fstate.save(directory, data)
    if hang:
        time.sleep(hang)
    fstate.write_out(data, sys.stdout, lines)
    return code


# -- vmware-vdiskmanager ---------------------------------------------------------------------

def parse_size(text: str) -> int | None:
    """`20GB`, `512MB`, `100KB` (binary units) in bytes."""
    match = re.fullmatch(r"(\d+)(KB|MB|GB)", text.strip(), re.IGNORECASE)
    if not match:
        return None
    return int(match.group(1)) * {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}[
        match.group(2).lower()]


def descriptor(path: str, sectors: int, create_type: str, adapter: str) -> tuple[str,
                                                                                   list[str]]:
    """The descriptor text of a disk and the names of its extent files."""
    stem = os.path.splitext(os.path.basename(path))[0]
    extents: list[tuple[int, str]] = []
    if create_type == "twoGbMaxExtentSparse":
        left, index = sectors, 1
        while left > 0:
            part = min(left, EXTENT_SECTORS)
            extents.append((part, f"{stem}-s{index:03d}.vmdk"))
            left -= part
            index += 1
    else:
        extents.append((sectors, os.path.basename(path)))
    cylinders = max(1, sectors // (255 * 63))
    lines = ["# Disk DescriptorFile", "version=1", 'encoding="UTF-8"', "CID=fffffffe",
             "parentCID=ffffffff", f'createType="{create_type}"', "", "# Extent description"]
    lines += [f'RW {count} SPARSE "{name}"' for count, name in extents]
    lines += ["", "# The Disk Data Base", "#DDB", "", f'ddb.adapterType = "{adapter}"',
              f'ddb.geometry.cylinders = "{cylinders}"', 'ddb.geometry.heads = "255"',
              'ddb.geometry.sectors = "63"', 'ddb.virtualHWVersion = "21"']
    return "\n".join(lines) + "\n", [name for _, name in extents]


def write_disk(path: str, size: int, kind: str, adapter: str) -> None:
    """Write a VMDK: type 1 as a text descriptor plus extents, type 0 as one sparse file."""
    sectors = size // SECTOR
    if kind == "1":
        text, extents = descriptor(path, sectors, "twoGbMaxExtentSparse", adapter)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        for name in extents:
            extent = os.path.join(os.path.dirname(path), name)
            if not os.path.exists(extent):
                with open(extent, "wb") as handle:
                    handle.write(b"KDMV")
    else:
        text, _ = descriptor(path, sectors, "monolithicSparse", adapter)
        header = b"KDMV" + b"\0" * (SECTOR - 4)
        with open(path, "wb") as handle:
            handle.write(header + text.encode("utf-8"))


def read_descriptor(path: str) -> str:
    """A disk's descriptor text (inside the file for a sparse monolithic disk)."""
    with open(path, "rb") as handle:
        raw = handle.read(65536)
    if raw.startswith(b"KDMV"):
        raw = raw[SECTOR:]
    return raw.decode("utf-8", "replace")


def disk_files(path: str) -> list[str]:
    """A disk's descriptor and extent files."""
    if not os.path.exists(path):
        return [path]
    text = read_descriptor(path)
    names = re.findall(r'^RW \d+ \w+ "([^"]+)"', text, re.MULTILINE)
    return [path] + [os.path.join(os.path.dirname(path), n) for n in names
                     if n != os.path.basename(path)]


def disk_size(path: str) -> int:
    """A disk's capacity from its extent lines."""
    text = read_descriptor(path)
    return sum(int(n) for n in re.findall(r"^RW (\d+) ", text, re.MULTILINE)) * SECTOR


def in_use(data: dict[str, Any], path: str) -> bool:
    """Whether a running VM has this disk open."""
    absolute = os.path.abspath(path)
    return any(absolute in [os.path.abspath(d) for d in vmx_disks(entry["vmx"], vmx)]
               for vmx, entry in running(data).items())


def vdisk_main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/vmware-vdiskmanager."""
    directory = fstate.state_dir()
    with fstate.locked(directory):
        data = fstate.load(directory)
        data["calls"].append({"tool": "vmware-vdiskmanager", "argv": argv})
        try:
            fault = fstate.take_fault(data, "vmware-vdiskmanager", " ".join(argv))
            if fault is not None:
                raise Fail(1, [fault.get("message", "Failed to open the disk: Insufficient "
                                         "permission to access file (injected fault)")])
            lines = vdisk(data, argv)
            code = 0
        except Fail as exc:
            lines, code = exc.lines, exc.code
        fstate.save(directory, data)
    fstate.write_out(data, sys.stdout, lines)
    return code


def vdisk(data: dict[str, Any], argv: list[str]) -> list[str]:
    """-c (create) and -x (expand)."""
    usage = Fail(1, ["VMware Virtual Disk Manager - build 24319023.",
                     "Usage: vmware-vdiskmanager OPTIONS <disk-name> | <mount-point>"])
    if not argv:
        raise usage
    path = argv[-1]
    opts = argv[:-1]
    values: dict[str, str] = {}
    index = 0
    while index < len(opts):
        flag = opts[index]
        if flag in ("-s", "-a", "-t", "-x", "-r"):
            if index + 1 >= len(opts):
                raise usage
            values[flag] = opts[index + 1]
            index += 2
        elif flag == "-c":
            values["-c"] = ""
            index += 1
        else:
            raise usage
    if "-c" in values:
        size = parse_size(values.get("-s", ""))
        if size is None or values.get("-a") not in ("ide", "buslogic", "lsilogic") or \
                values.get("-t") not in ("0", "1", "2", "3"):
            raise usage
        lines = [f"Creating disk '{path}'"]
        if os.path.exists(path):
            raise Fail(1, lines + ["Failed to create disk: The file already exists "
                                   "(0x3e8000000008)."])
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise Fail(1, lines + ["Failed to create disk: Cannot find the file "
                                   "(0x3e8000000004)."])
        write_disk(path, size, "1" if values["-t"] in ("1", "3") else "0", values["-a"])
        return lines + ["  Create: 100% done.", "Virtual disk creation successful."]
    if "-r" in values:
        source = values["-r"]
        if not os.path.exists(source):
            raise Fail(1, [f"Failed to open the disk '{source}' : Cannot find the file "
                           "(0x3e8000000004)."])
        if "# Disk DescriptorFile" not in read_descriptor(source):
            raise Fail(1, [f"Failed to open the disk '{source}' : The file specified is not "
                           "a virtual disk (0x3e80000000f)."])
        if os.path.exists(path):
            raise Fail(1, ["Failed to convert disk: The file already exists "
                           "(0x3e8000000008)."])
        write_disk(path, disk_size(source), values.get("-t", "0") if values.get("-t") in
                   ("1", "3") else "0", "lsilogic")
        return ["Creating disk '" + path + "'", "  Convert: 100% done.",
                "Virtual disk conversion successful."]
    if "-x" in values:
        size = parse_size(values["-x"])
        if size is None:
            raise usage
        if not os.path.exists(path):
            raise Fail(1, [f"Failed to open the disk '{path}' : Cannot find the file "
                           "(0x3e8000000004)."])
        if in_use(data, path):
            raise Fail(1, [f"Failed to open the disk '{path}' : The file is already in use "
                           "(0x3e8000000020)."])
        current = disk_size(path)
        if size <= current:
            raise Fail(1, ["Failed to expand the disk: The new capacity must be larger than "
                           "the current one."])
        text = read_descriptor(path)
        adapter = (re.search(r'ddb.adapterType = "(\w+)"', text) or [None, "lsilogic"])[1]
        kind = "1" if "twoGbMaxExtentSparse" in text else "0"
        write_disk(path, size, kind, str(adapter))
        return ["  Grow: 100% done.", "Disk expansion completed successfully."]
    raise usage
