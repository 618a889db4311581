"""A QEMU VM's own directory: what is in it, how it is read in one pass, how it starts.

    VM_DIR/PROJECT/NAME/
      decl.json      marks (project, address, spec hash), launch config, what decl made
      disk-vda.qcow2 the disks
      seed.iso       cloud-init NoCloud seed (when cloud_init is set)
      efivars.fd     UEFI variable store (firmware: uefi)
      qemu.pid       pidfile of the running qemu-system-* process
      qmp.sock       QMP socket
      serial.log     the guest's serial console
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from decl.providers.vmspec import DEFAULT_TCG_CPU

MARK_FILE = "decl.json"
PID_FILE = "qemu.pid"
QMP_SOCKET = "qmp.sock"
SERIAL_LOG = "serial.log"
SEED = "seed.iso"
EFIVARS = "efivars.fd"

# One pass over every VM directory under the roots given as arguments: each directory's
# decl.json, whether its qemu is alive (its pid's command line names this pidfile), and
# each disk's `qemu-img info`. Paths are arguments, never pasted into the script.
DISCOVER_SCRIPT = r'''
for root in "$@"; do
  for d in "$root"/*/; do
    [ -d "$d" ] || continue
    d=${d%/}
    printf '@@vm %s\n' "$d"
    if [ -f "$d/decl.json" ]; then
      printf '@@json\n'; tr -d '\n' < "$d/decl.json"; printf '\n'
    fi
    pid=$(tr -dc 0-9 < "$d/qemu.pid" 2>/dev/null)
    alive=0
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && \
       tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qxF -- "$d/qemu.pid"; then
      alive=1
    fi
    printf '@@pid %s %s\n' "${pid:--}" "$alive"
    if [ "$alive" = 1 ]; then
      printf '@@cmdline '; tr '\0' '\037' < "/proc/$pid/cmdline"; printf '\n'
    fi
    for f in "$d"/disk-*.qcow2; do
      [ -f "$f" ] || continue
      printf '@@disk %s\n' "$f"
      qemu-img info -U --output=json "$f" 2>/dev/null | tr -d '\n'; printf '\n'
    done
  done
done
'''


@dataclass
class VmDir:
    """What one pass read from one VM directory."""

    path: str
    name: str
    mark: dict[str, Any] | None = None
    mark_error: str | None = None
    pid: int | None = None
    alive: bool = False
    # the running qemu's command line (/proc/PID/cmdline), None while it is stopped
    cmdline: list[str] | None = None
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_discovery(text: str) -> list[VmDir]:
    """Parse DISCOVER_SCRIPT's output (a pure function)."""
    found: list[VmDir] = []
    current: VmDir | None = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("@@vm "):
            path = line[5:]
            current = VmDir(path=path, name=path.rstrip("/").rsplit("/", 1)[-1])
            found.append(current)
        elif current is None:
            continue
        elif line == "@@json":
            body = lines[index] if index < len(lines) else ""
            index += 1
            try:
                data = json.loads(body)
                current.mark = data if isinstance(data, dict) else None
                if current.mark is None:
                    current.mark_error = "decl.json is not an object"
            except ValueError as exc:
                current.mark_error = f"decl.json is unreadable: {exc}"
        elif line.startswith("@@pid "):
            parts = line.split()
            current.pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            current.alive = len(parts) > 2 and parts[2] == "1"
        elif line.startswith("@@cmdline "):
            current.cmdline = [arg for arg in line[10:].split("\x1f") if arg != ""] or None
        elif line.startswith("@@disk "):
            path = line[7:]
            body = lines[index] if index < len(lines) else ""
            index += 1
            dev = path.rsplit("/", 1)[-1][len("disk-"):-len(".qcow2")]
            try:
                current.disks[dev] = json.loads(body) if body.strip() else {}
            except ValueError:
                current.disks[dev] = {}
    return found


def opt_escape(value: str) -> str:
    """A value inside a QEMU `-opt a=b,c=d` list: commas are doubled."""
    return value.replace(",", ",,")


def stable_mac(name: str, path: str) -> str:
    """A MAC address that stays the same for a VM directory (QEMU's 52:54:00 prefix)."""
    digest = hashlib.sha256(f"{path}/{name}".encode()).digest()
    return f"52:54:00:{digest[0]:02x}:{digest[1]:02x}:{digest[2]:02x}"


def accel_args(accel: str, kvm_ok: bool) -> list[str]:
    """-accel options: auto tries KVM then falls back to TCG."""
    if accel == "kvm":
        return ["-accel", "kvm"]
    if accel == "tcg" or not kvm_ok:
        return ["-accel", "tcg"]
    return ["-accel", "kvm", "-accel", "tcg"]


def qemu_argv(config: dict[str, Any], vmdir: str, kvm_ok: bool) -> list[str]:
    """The qemu-system-* command line of a VM from its saved config (a pure function)."""
    arch = config["arch"]
    argv = [
        config["binary"],
        "-name", opt_escape(config["name"]),
        "-machine", opt_escape(config["machine"]),
        *accel_args(config.get("accel", "auto"), kvm_ok),
        "-m", f"{config['memory'] // (1024 * 1024)}M",
        "-smp", str(config["cpus"]),
        "-nodefaults", "-display", "none", "-daemonize",
        "-pidfile", f"{vmdir}/{PID_FILE}",
        "-qmp", f"unix:{QMP_SOCKET},server=on,wait=off",  # relative: qemu runs in vmdir
        "-serial", f"file:{vmdir}/{SERIAL_LOG}",
    ]
    cpu = config.get("cpu_model")
    if cpu is None and (arch == "aarch64" or "kvm" not in argv):
        cpu = DEFAULT_TCG_CPU.get(arch)
    if cpu:
        argv += ["-cpu", cpu]
    if config.get("firmware") == "uefi" and config.get("uefi_code"):
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,"
                 f"file={opt_escape(config['uefi_code'])}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={opt_escape(vmdir)}/{EFIVARS}"]
    for disk in config.get("disks", []):
        argv += ["-drive", f"file={opt_escape(disk['path'])},if=virtio,format=qcow2,"
                 f"id={disk['dev']}"]
    cdroms = [c for c in (config.get("cdrom"), config.get("seed")) if c]
    if cdroms:
        argv += ["-device", "virtio-scsi-pci,id=scsi0"]
        for index, path in enumerate(cdroms):
            argv += ["-drive", f"file={opt_escape(path)},if=none,id=cd{index},media=cdrom,"
                     "readonly=on,format=raw",
                     "-device", f"scsi-cd,drive=cd{index},bus=scsi0.0"]
    network = config.get("network") or {"mode": "none"}
    mac = config.get("mac")
    mac_opt = f",mac={mac}" if mac else ""
    if network.get("mode") == "nat":
        argv += ["-nic", f"user,model=virtio-net-pci{mac_opt}"]
    elif network.get("mode") == "bridge":
        argv += ["-nic", f"bridge,br={opt_escape(network['bridge'])},"
                 f"model=virtio-net-pci{mac_opt}"]
    else:
        argv += ["-nic", "none"]
    return argv


# Options of qemu-system-* that take a value (the rest are flags).
_VALUED = frozenset({"-name", "-machine", "-M", "-accel", "-m", "-smp", "-cpu", "-drive",
                     "-device", "-nic", "-netdev", "-pidfile", "-qmp", "-serial", "-display",
                     "-bios", "-cdrom", "-hda", "-boot", "-monitor", "-chardev", "-object"})


def split_opts(text: str) -> list[str]:
    """`a=b,c=d,,e` -> ["a=b", "c=d,e"]: QEMU's option list, doubled commas unescaped."""
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == ",":
            if text[index + 1:index + 2] == ",":
                current += ","
                index += 2
                continue
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


def opts(text: str, implied: str) -> dict[str, str]:
    """An option list as a dict; a first item without `=` is the `implied` key."""
    found: dict[str, str] = {}
    for index, part in enumerate(split_opts(text)):
        key, sep, value = part.partition("=")
        if not sep:
            if index == 0:
                found[implied] = key
            else:
                found[key] = "on"
        else:
            found[key] = value
    return found


def _memory(text: str) -> int | None:
    size = opts(text, "size").get("size", "")
    units = {"": 1024**2, "M": 1024**2, "G": 1024**3, "T": 1024**4, "K": 1024, "B": 1}
    number, unit = size.rstrip("MGTKBmgtkb"), size[len(size.rstrip("MGTKBmgtkb")):].upper()
    if not number.isdigit() or unit[:1] not in units:
        return None
    return int(number) * units[unit[:1]]


def parse_qemu_argv(argv: list[str]) -> dict[str, Any]:
    """What a qemu-system-* command line runs (pure): arch (from the binary), machine,
    accelerators, memory, cpus, cpu model, firmware, disks (id -> file), cdrom files and
    the network. Works on /proc/PID/cmdline of a running qemu and on qemu_argv()."""
    from decl.providers.vmspec import QEMU_BINARY

    binary = argv[0].rsplit("/", 1)[-1] if argv else ""
    arches = {name: arch for arch, name in QEMU_BINARY.items()}
    found: dict[str, Any] = {"arch": arches.get(binary), "machine": None, "accels": [],
                             "memory": None, "cpus": None, "cpu_model": None,
                             "firmware": "bios", "disks": {}, "cdroms": [],
                             "network": {"mode": "none", "bridge": None}}
    index = 1
    while index < len(argv):
        option = argv[index]
        value = argv[index + 1] if option in _VALUED and index + 1 < len(argv) else None
        index += 2 if value is not None else 1
        if value is None:
            continue
        if option in ("-machine", "-M"):
            found["machine"] = opts(value, "type").get("type")
        elif option == "-accel":
            found["accels"].append(opts(value, "accel").get("accel"))
        elif option == "-m":
            found["memory"] = _memory(value)
        elif option == "-smp":
            cpus = opts(value, "cpus").get("cpus", "")
            found["cpus"] = int(cpus) if cpus.isdigit() else None
        elif option == "-cpu":
            found["cpu_model"] = split_opts(value)[0]
        elif option == "-bios":
            found["firmware"] = "uefi" if "efi" in value.lower() else "bios"
        elif option == "-cdrom":
            found["cdroms"].append(value)
        elif option == "-drive":
            drive = opts(value, "file")
            if drive.get("if") == "pflash" and drive.get("unit", "0") == "0":
                found["firmware"] = "uefi"
            elif drive.get("media") == "cdrom" and drive.get("file"):
                found["cdroms"].append(drive["file"])
            elif drive.get("if") == "virtio" and drive.get("file"):
                found["disks"][drive.get("id") or f"drive{len(found['disks'])}"] = drive["file"]
        elif option == "-nic":
            nic = opts(value, "type")
            kind = nic.get("type")
            if kind == "user":
                found["network"] = {"mode": "nat", "bridge": None}
            elif kind == "bridge":
                found["network"] = {"mode": "bridge", "bridge": nic.get("br")}
    return found
