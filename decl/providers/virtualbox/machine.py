"""What a VirtualBox VM is, in the manifest's terms, and the settings that make it so (pure).

The comparable spec comes from `showvminfo --machinereadable`, `list hdds` and the VM's
extradata (decl's marks and its record of the disks, seed and cdrom it attached).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from decl.core.resource import Marks, Observed
from decl.providers.base import ImportNotSupported
from decl.providers.virtualbox import output
from decl.providers.virtualbox.driver import KEY_ADDRESS, KEY_PROJECT, KEY_RECORD, KEY_SPEC_HASH
from decl.providers.vmimport import common_fields, disk_entries, is_manifest_name
from decl.providers.vmspec import disk_names

MIB = 1024 * 1024
CONTROLLER = "SATA"
ARCH = {"x86": "x86_64", "ARM": "aarch64"}


def marks_of(extradata: dict[str, str]) -> Marks | None:
    """decl's marks from a VM's extradata, or None when it carries none."""
    project = extradata.get(KEY_PROJECT)
    address = extradata.get(KEY_ADDRESS)
    if not project or not address:
        return None
    return Marks(project=project, address=address, spec_hash=extradata.get(KEY_SPEC_HASH, ""))


def record_of(extradata: dict[str, str]) -> dict[str, Any]:
    """decl's record (disks it made, seed, cdrom as given), {} when absent or unreadable."""
    try:
        record = json.loads(extradata.get(KEY_RECORD, "{}"))
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


@dataclass(frozen=True)
class Slot:
    """A medium attached to a VM."""

    controller: str
    port: int
    path: str
    uuid: str


@dataclass
class Attached:
    """The hard disks (in controller, then port order) and DVD images of a VM."""

    disks: list[Slot] = field(default_factory=list)
    dvds: list[Slot] = field(default_factory=list)


def attached(info: dict[str, str | int], hdd_uuids: set[str]) -> Attached:
    """Media attached to the VM; a medium that `list hdds` lists is a disk, else a DVD."""
    out = Attached()
    index = 0
    while f"storagecontrollername{index}" in info:
        controller = str(info[f"storagecontrollername{index}"])
        for port, (path, uuid) in sorted(output.disk_slots(info, controller).items()):
            slot = Slot(controller, port, path, uuid)
            (out.disks if uuid in hdd_uuids else out.dvds).append(slot)
        index += 1
    return out


def disk_paths(info: dict[str, str | int], hdd_uuids: set[str]) -> dict[str, str]:
    """Device name (vda, vdb...) -> path of each attached hard disk."""
    disks = attached(info, hdd_uuids).disks
    return dict(zip(disk_names(len(disks)), [d.path for d in disks], strict=True))


def network_of(info: dict[str, str | int]) -> dict[str, Any]:
    """NIC 1 as the manifest's network."""
    nic = str(info.get("nic1", "none"))
    if nic == "nat":
        return {"mode": "nat", "bridge": None}
    if nic == "bridged":
        return {"mode": "bridge", "bridge": str(info.get("bridgeadapter1", ""))}
    if nic in ("none", "null"):
        return {"mode": "none", "bridge": None}
    return {"mode": nic, "bridge": None}


def seed_path(info: dict[str, str | int], extradata: dict[str, str]) -> str | None:
    """The cloud-init seed decl attached, when it is still attached."""
    seed = record_of(extradata).get("seed")
    if not seed:
        return None
    dvds = attached(info, set()).dvds  # every medium: disks and DVDs alike
    return str(seed) if any(d.path == seed for d in dvds) else None


def observed_spec(info: dict[str, str | int], extradata: dict[str, str],
                  capacities: dict[str, int], seed_cloud: Any = None) -> dict[str, Any]:
    """The comparable spec of a VM (same keys as vmspec.vm_spec); `seed_cloud` is what the
    attached seed ISO says (read from the file by discovery)."""
    record = record_of(extradata)
    media = attached(info, set(capacities))
    names = disk_names(len(media.disks))
    made = record.get("disks") or {}
    disk_size = {}
    disk_source = {}
    for dev, slot in zip(names, media.disks, strict=True):
        disk_size[dev] = capacities.get(slot.uuid)
        entry = made.get(dev) or {}
        disk_source[dev] = (str(entry["source"]) if entry.get("path") == slot.path
                            and entry.get("source") else f"file:{slot.path}")
    seed = record.get("seed")
    dvds = [d for d in media.dvds if d.path != seed]
    cdrom = dvds[0].path if dvds else None
    given = record.get("cdrom") or {}
    if cdrom is not None and given.get("path") == cdrom:
        cdrom = given.get("given", cdrom)
    has_seed = bool(seed) and any(d.path == seed for d in media.dvds)
    nic_type = str(info["nictype1"]) if "nictype1" in info else None
    return {
        "cpus": int(info.get("cpus", 0)),
        "memory": int(info.get("memory", 0)) * MIB,
        "arch": ARCH.get(str(info.get("platformArchitecture", "x86")), "x86_64"),
        "firmware": "uefi" if str(info.get("firmware", "BIOS")).startswith("EFI") else "bios",
        "disk_count": len(media.disks),
        "disk_size": disk_size,
        "disk_source": disk_source,
        "cdrom": cdrom,
        "network": network_of(info),
        "cloud_init": seed_cloud if has_seed else None,
        "options": {"nic_type": nic_type},
    }


def settings(spec: dict[str, Any], nic_type: str | None) -> list[str]:
    """`modifyvm` arguments that give a VM the spec's CPUs, memory, firmware and NIC 1."""
    args = ["--cpus", str(spec["cpus"]), "--memory", str(spec["memory"] // MIB),
            "--firmware", "efi" if spec["firmware"] == "uefi" else "bios"]
    network = spec["network"]
    if network["mode"] == "nat":
        args += ["--nic1", "nat"]
    elif network["mode"] == "bridge":
        args += ["--nic1", "bridged", "--bridgeadapter1", str(network["bridge"])]
    else:
        args += ["--nic1", "none"]
    if nic_type and network["mode"] != "none":
        args += ["--nictype1", nic_type]
    return args


def size_mib(size: int) -> int:
    """Whole MiB of a disk size (VirtualBox counts disks in MiB)."""
    return -(-size // MIB)


def manifest_entry(observed: Observed) -> dict[str, Any]:
    """A VM without decl's marks as a manifest entry, such that adopting it changes nothing;
    ImportNotSupported naming what a manifest cannot say."""
    spec = observed.spec
    what = f"VirtualBox VM {observed.name!r}"
    if not is_manifest_name(observed.name):
        raise ImportNotSupported(f"{what}: its name cannot be a manifest name, and decl finds "
                                 "a VirtualBox VM by its name: rename it first (VBoxManage "
                                 "modifyvm NAME --name NEW)")
    sizes = spec.get("disk_size") or {}
    unread = [dev for dev, size in sizes.items() if not size or size % MIB]
    if unread:
        raise ImportNotSupported(f"{what}: the size of disk {', '.join(unread)} is not known "
                                 "to VirtualBox in whole MiB (`list hdds`)")
    network = spec.get("network") or {}
    mode = network.get("mode")
    if mode not in ("nat", "bridge", "none") or (mode == "bridge" and not network.get("bridge")):
        raise ImportNotSupported(
            f"{what}: NIC 1 is {mode}, and decl sets NIC 1 to nat, bridged or none whenever it "
            "changes the VM's CPUs, memory or firmware: write its entry by hand")
    entry = common_fields(observed.state, spec.get("cpus"), spec.get("memory") or 0)
    entry["arch"] = spec.get("arch")
    if spec.get("firmware") == "uefi":
        entry["firmware"] = "uefi"
    if sizes:
        entry["disks"] = disk_entries([int(size) for size in sizes.values()])
    if spec.get("cdrom"):
        entry["cdrom"] = spec["cdrom"]
    if mode == "bridge":
        entry["network"] = {"mode": "bridge", "bridge": network["bridge"]}
    elif mode == "none":
        entry["network"] = {"mode": "none"}
    if sizes:
        entry["lifecycle"] = {"ignore_changes": ["disk_source"]}
    return entry
