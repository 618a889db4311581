"""The VM settings decl manages in a .vmx, written from and read back into decl's spec.

Managed: displayName, guestOS, numvcpus, memSize, firmware, the disks on scsi0 and the first
network adapter. Every other key stays as it was (ESXi adds its own at power-on).
"""

from __future__ import annotations

import re
from typing import Any

from decl.providers.esxi.vmx import Vmx

MIB = 1024 * 1024
HARDWARE_VERSION = "13"  # ESXi 6.5 and later run it
CONTROLLER = "scsi0"
MAX_DISKS = 15


def disk_devices(count: int) -> list[str]:
    """scsi0:0, scsi0:1, ... skipping unit 7, the controller's own."""
    units = [u for u in range(16) if u != 7][:count]
    return [f"{CONTROLLER}:{u}" for u in units]


def disk_file(name: str, index: int) -> str:
    """File name of a VM's disk, as ESXi names them: NAME.vmdk, NAME_1.vmdk, ..."""
    return f"{name}.vmdk" if index == 0 else f"{name}_{index}.vmdk"


def new_vmx(spec: dict[str, Any], disk_names: list[str]) -> Vmx:
    """A fresh .vmx for a new VM."""
    vmx = Vmx([])
    for key, value in ((".encoding", "UTF-8"), ("config.version", "8"),
                       ("virtualHW.version", HARDWARE_VERSION), ("pciBridge0.present", "TRUE"),
                       ("tools.syncTime", "FALSE"), (f"{CONTROLLER}.present", "TRUE"),
                       (f"{CONTROLLER}.virtualDev", "lsilogic")):
        vmx.set(key, value)
    apply_spec(vmx, spec, disk_names)
    return vmx


def apply_spec(vmx: Vmx, spec: dict[str, Any], disk_names: list[str]) -> None:
    """Write the managed settings of `spec` into `vmx`; `disk_names` are the disks' files."""
    vmx.set("displayName", spec["display_name"])
    vmx.set("guestOS", spec["guest_os"])
    vmx.set("numvcpus", str(spec["cpus"]))
    vmx.set("memSize", str(spec["memory"] // MIB))
    if spec["firmware"] == "uefi":
        vmx.set("firmware", "efi")
    else:
        vmx.remove("firmware")
    for dev, file_name in zip(disk_devices(len(disk_names)), disk_names, strict=True):
        vmx.set(f"{dev}.present", "TRUE")
        vmx.set(f"{dev}.deviceType", "scsi-hardDisk")
        vmx.set(f"{dev}.fileName", file_name)
    if spec["port_group"]:
        vmx.set("ethernet0.present", "TRUE")
        vmx.set("ethernet0.virtualDev", vmx.get("ethernet0.virtualDev") or "vmxnet3")
        vmx.set("ethernet0.networkName", spec["port_group"])
        if not vmx.get("ethernet0.addressType"):
            vmx.set("ethernet0.addressType", "generated")
    else:
        vmx.remove_prefix("ethernet0.")


def attached_disks(vmx: Vmx) -> list[tuple[str, str]]:
    """(device, file name) of the hard disks on scsi0, in unit order."""
    found = []
    for key in vmx.keys():
        match = re.match(rf"^{CONTROLLER}:(\d+)\.fileName$", key, re.IGNORECASE)
        if not match:
            continue
        dev = f"{CONTROLLER}:{match[1]}"
        present = (vmx.get(f"{dev}.present") or "TRUE").upper() == "TRUE"
        kind = (vmx.get(f"{dev}.deviceType") or "scsi-hardDisk").lower()
        name = vmx.get(key) or ""
        if present and kind.endswith("harddisk") and name.lower().endswith(".vmdk"):
            found.append((int(match[1]), dev, name))
    return [(dev, name) for _, dev, name in sorted(found)]


def read_spec(vmx: Vmx, datastore: str, disk_sizes: dict[str, int | None]) -> dict[str, Any]:
    """decl's comparable spec read back from a .vmx (disk sizes from their descriptors)."""
    disks = attached_disks(vmx)
    memory = vmx.get("memSize") or vmx.get("memsize") or "0"
    port_group = None
    if (vmx.get("ethernet0.present") or "FALSE").upper() == "TRUE":
        port_group = vmx.get("ethernet0.networkName") or ""
    cpus = vmx.get("numvcpus") or "1"
    return {
        "display_name": vmx.get("displayName") or "",
        "cpus": int(cpus) if cpus.isdigit() else cpus,
        "memory": int(memory) * MIB if memory.isdigit() else memory,
        "firmware": "uefi" if (vmx.get("firmware") or "").lower() == "efi" else "bios",
        "guest_os": vmx.get("guestOS") or "",
        "datastore": datastore,
        "port_group": port_group,
        "disk_count": len(disks),
        "disk_size": {dev: disk_sizes.get(name) for dev, name in disks},
    }
