"""A VMware VM's .vmx in the manifest's terms, and the keys that make it so (pure).

decl manages these keys and leaves every other one as it is: numvcpus, memsize, firmware,
guestOS, ethernet0.*, the cdrom slot sata0:0, the disks scsi0:N it made, guestinfo.* for
cloud-init (cloud-init's VMware datasource), and its marks decl.project, decl.address,
decl.spec_hash with decl.disk.DEV.file / .source / .made (which disks decl made, and from
what). What it reports as observed is read from the .vmx and the disks' descriptors.
"""

from __future__ import annotations

import base64
import gzip
import re
from typing import Any

from decl.core.resource import Marks, Observed
from decl.core.units import format_size
from decl.providers import cloudinit
from decl.providers.base import ImportNotSupported
from decl.providers.vmimport import common_fields, disk_entries, is_manifest_name
from decl.providers.vmspec import disk_names
from decl.providers.vmware.vmx import VmxDocument

MIB = 1024 * 1024
DISK_KEY = re.compile(r"^(scsi|sata|nvme|ide)(\d+):(\d+)\.filename$")
BUS_ORDER = {"scsi": 0, "sata": 1, "nvme": 2, "ide": 3}
CDROM = "sata0:0"


def marks_of(doc: VmxDocument) -> Marks | None:
    """decl's marks in a .vmx, or None."""
    project, address = doc.get("decl.project"), doc.get("decl.address")
    if not project or not address:
        return None
    return Marks(project=project, address=address, spec_hash=doc.get("decl.spec_hash") or "")


def disks_of(doc: VmxDocument) -> list[tuple[str, str]]:
    """(slot, file name) of each present hard disk, in bus, controller, unit order."""
    found = []
    for key, value in doc.items():
        match = DISK_KEY.match(key.lower())
        if not match or not value.lower().endswith(".vmdk"):
            continue
        slot = f"{match.group(1)}{match.group(2)}:{match.group(3)}"
        if (doc.get(f"{slot}.present") or "TRUE").upper() != "TRUE":
            continue
        if "cdrom" in (doc.get(f"{slot}.deviceType") or "").lower():
            continue
        found.append(((BUS_ORDER[match.group(1)], int(match.group(2)), int(match.group(3))),
                      slot, value))
    return [(slot, value) for _, slot, value in sorted(found)]


def cdrom_of(doc: VmxDocument) -> str | None:
    """The ISO of the first present CD-ROM image."""
    for key, value in doc.items():
        low = key.lower()
        if not low.endswith(".devicetype") or value.lower() != "cdrom-image":
            continue
        slot = low[: -len(".devicetype")]
        if (doc.get(f"{slot}.present") or "TRUE").upper() == "TRUE":
            return doc.get(f"{slot}.fileName")
    return None


def cdrom_slot(doc: VmxDocument) -> str | None:
    """The slot (sata0:0, ide1:0...) of the first present CD-ROM image."""
    for key, value in doc.items():
        low = key.lower()
        if low.endswith(".devicetype") and value.lower() == "cdrom-image":
            slot = low[: -len(".devicetype")]
            if (doc.get(f"{slot}.present") or "TRUE").upper() == "TRUE":
                return slot
    return None


def given_cdrom(doc: VmxDocument) -> str | None:
    """The cdrom as the manifest wrote it (`~/x.iso`) when the .vmx still has the file decl
    put there, else the .vmx's own path."""
    path = cdrom_of(doc)
    if path is not None and path == doc.get("decl.cdrom.path"):
        return doc.get("decl.cdrom.given") or path
    return path


def network_of(doc: VmxDocument) -> dict[str, Any]:
    """ethernet0 as the manifest's network."""
    if (doc.get("ethernet0.present") or "FALSE").upper() != "TRUE":
        return {"mode": "none", "bridge": None}
    kind = (doc.get("ethernet0.connectionType") or "bridged").lower()
    if kind == "nat":
        return {"mode": "nat", "bridge": None}
    if kind == "bridged":
        return {"mode": "bridge", "bridge": "auto"}
    if kind == "custom":
        return {"mode": "bridge", "bridge": doc.get("ethernet0.vnet")}
    return {"mode": kind, "bridge": None}


def guestinfo(cloud: dict[str, Any], name: str) -> dict[str, str]:
    """cloud-init's VMware datasource keys for a NoCloud-style config."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()
    return {"guestinfo.userdata": b64(cloudinit.user_data(cloud)),
            "guestinfo.userdata.encoding": "base64",
            "guestinfo.metadata": b64(cloudinit.meta_data(cloud, name)),
            "guestinfo.metadata.encoding": "base64"}


def cloud_init_of(doc: VmxDocument) -> dict[str, Any] | None:
    """The cloud_init the guestinfo user-data says (base64, gzip+base64 or plain), read from
    the .vmx; None when there is none or it cannot be read."""
    raw = doc.get("guestinfo.userdata")
    if not raw:
        return None
    encoding = (doc.get("guestinfo.userdata.encoding") or "").lower()
    try:
        if encoding in ("base64", "b64"):
            data = base64.b64decode(raw, validate=True)
        elif encoding in ("gzip+base64", "gz+b64"):
            data = gzip.decompress(base64.b64decode(raw, validate=True))
        else:
            data = raw.encode()
        return cloudinit.cloud_init_of(data.decode("utf-8", "replace"))
    except (ValueError, OSError):
        return None


def observed_spec(doc: VmxDocument, name: str, sizes: dict[str, int | None]) -> dict[str, Any]:
    """The comparable spec (vmspec.vm_spec's keys) of a .vmx; `sizes` maps each disk's file
    name as written in the .vmx to its capacity."""
    disks = disks_of(doc)
    names = disk_names(len(disks))
    disk_source = {}
    for dev, (_, file) in zip(names, disks, strict=True):
        recorded = doc.get(f"decl.disk.{dev}.file")
        source = doc.get(f"decl.disk.{dev}.source")
        disk_source[dev] = source if source and recorded == file else f"file:{file}"
    guest_os = doc.get("guestOS") or "other"
    nic = doc.get("ethernet0.virtualDev") if network_of(doc)["mode"] != "none" else None
    return {
        "cpus": int(doc.get("numvcpus") or 1),
        "memory": int(doc.get("memsize") or 32) * MIB,
        "arch": "aarch64" if guest_os.lower().startswith("arm-") else "x86_64",
        "firmware": "uefi" if (doc.get("firmware") or "bios").lower() == "efi" else "bios",
        "disk_count": len(disks),
        "disk_size": {dev: sizes.get(file) for dev, (_, file) in zip(names, disks,
                                                                      strict=True)},
        "disk_source": disk_source,
        "cdrom": given_cdrom(doc),
        "network": network_of(doc),
        "cloud_init": cloud_init_of(doc),
        "options": {"guest_os": guest_os, "nic_type": nic},
    }


def new_document(name: str, hw_version: int) -> VmxDocument:
    """The fixed head of a .vmx decl makes (Packer's template keys)."""
    doc = VmxDocument()
    for key, value in ((".encoding", "UTF-8"), ("config.version", "8"),
                       ("virtualHW.version", str(hw_version)), ("displayName", name),
                       ("nvram", f"{name}.nvram"), ("scsi0.present", "TRUE"),
                       ("scsi0.virtualDev", "lsilogic"), ("sata0.present", "TRUE")):
        doc.set(key, value)
    return doc


def apply_spec(doc: VmxDocument, name: str, spec: dict[str, Any], nic_type: str | None,
               cdrom: str | None) -> None:
    """Set the keys decl manages to the spec (a None field is left as it is); `cdrom` is
    the spec's cdrom expanded on the host."""
    doc.set("numvcpus", str(spec["cpus"]))
    doc.set("memsize", str(spec["memory"] // MIB))
    if spec["firmware"] == "uefi":
        doc.set("firmware", "efi")
    else:
        doc.delete("firmware")
    options = spec.get("options") or {}
    if options.get("guest_os"):
        doc.set("guestOS", options["guest_os"])
    network = spec["network"]
    if network["mode"] == "none":
        doc.set("ethernet0.present", "FALSE")
    else:
        doc.set("ethernet0.present", "TRUE")
        if network["mode"] == "nat":
            doc.update([("ethernet0.connectionType", "nat"), ("ethernet0.vnet", None)])
        elif network["bridge"] in (None, "auto"):
            doc.update([("ethernet0.connectionType", "bridged"), ("ethernet0.vnet", None)])
        else:
            doc.update([("ethernet0.connectionType", "custom"),
                        ("ethernet0.vnet", str(network["bridge"]))])
        doc.set("ethernet0.virtualDev", nic_type or doc.get("ethernet0.virtualDev")
                or "e1000e")
        if doc.get("ethernet0.addressType") is None:
            doc.set("ethernet0.addressType", "generated")
    if cdrom is not None:
        doc.update([(f"{CDROM}.present", "TRUE"), (f"{CDROM}.deviceType", "cdrom-image"),
                    (f"{CDROM}.fileName", cdrom), ("decl.cdrom.path", cdrom),
                    ("decl.cdrom.given", str(spec.get("cdrom") or cdrom))])
    cloud = spec.get("cloud_init")
    if cloud is not None:
        doc.update(guestinfo(cloud, name).items())


def add_disk(doc: VmxDocument, index: int, dev: str, file: str, source: str) -> None:
    """Disk `index` on scsi0 (unit 7 is the controller's own), recorded as made by decl."""
    unit = index if index < 7 else index + 1
    doc.update([(f"scsi0:{unit}.present", "TRUE"), (f"scsi0:{unit}.fileName", file),
                (f"decl.disk.{dev}.file", file), (f"decl.disk.{dev}.source", source),
                (f"decl.disk.{dev}.made", "TRUE")])


def set_marks(doc: VmxDocument, marks: Marks) -> None:
    """decl's marks."""
    doc.update([("decl.project", marks.project), ("decl.address", marks.address),
                ("decl.spec_hash", marks.spec_hash)])


def made_disks(doc: VmxDocument) -> dict[str, str]:
    """Device -> file of the disks decl made."""
    out = {}
    for dev, _ in enumerate(disks_of(doc)):
        name = disk_names(dev + 1)[-1]
        if (doc.get(f"decl.disk.{name}.made") or "").upper() == "TRUE":
            out[name] = doc.get(f"decl.disk.{name}.file") or ""
    return out


def default_vm_dir(system: str, home: str) -> str:
    """VMware's default folder for VMs on each OS."""
    home = home.rstrip("\\/")
    if system == "Windows":
        return home + "\\Documents\\Virtual Machines"
    if system == "Darwin":
        return home + "/Virtual Machines.localized"
    return home + "/vmware"


def manifest_entry(observed: Observed) -> dict[str, Any]:
    """A .vmx without decl's marks as a manifest entry, such that adopting it changes
    nothing; ImportNotSupported naming what a manifest cannot say."""
    spec = observed.spec
    vmx = str(observed.handle.get("vmx", ""))
    what = f"VMware VM {vmx}"
    folder = vmx.replace("\\", "/").rsplit("/", 2)
    if len(folder) < 3 or folder[1] != observed.name:
        raise ImportNotSupported(f"{what}: decl finds a VMware VM at options.vm_dir/NAME/"
                                 "NAME.vmx, and this one's folder is named otherwise")
    if not is_manifest_name(observed.name):
        raise ImportNotSupported(f"{what}: {observed.name!r} cannot be a manifest name")
    if spec["memory"] % (4 * MIB):
        raise ImportNotSupported(f"{what}: memsize {format_size(spec['memory'])} is not a "
                                 "multiple of 4 MiB")
    sizes = spec.get("disk_size") or {}
    unread = [dev for dev, size in sizes.items() if not size or size % MIB]
    if unread:
        raise ImportNotSupported(f"{what}: the size of disk {', '.join(unread)} cannot be "
                                 "read from its descriptor in whole MiB")
    network = spec.get("network") or {}
    if network.get("mode") not in ("nat", "bridge", "none") or \
            (network.get("mode") == "bridge" and not network.get("bridge")):
        raise ImportNotSupported(
            f"{what}: ethernet0 is {network.get('mode')}, and decl rewrites ethernet0 as nat, "
            "bridged, a custom vmnet or none whenever it edits the .vmx: write its entry by "
            "hand")
    entry = common_fields(observed.state, spec["cpus"], spec["memory"])
    if spec.get("arch") != "x86_64":
        entry["arch"] = spec.get("arch")
    if spec.get("firmware") == "uefi":
        entry["firmware"] = "uefi"
    if sizes:
        entry["disks"] = disk_entries([int(size) for size in sizes.values()])
    # decl puts the cdrom in sata0:0: one elsewhere is left out (and so left alone)
    if spec.get("cdrom") and observed.handle.get("cdrom_slot") == CDROM:
        entry["cdrom"] = spec["cdrom"]
    if network.get("mode") == "none":
        entry["network"] = {"mode": "none"}
    elif network.get("mode") == "bridge":
        entry["network"] = {"mode": "bridge", "bridge": network["bridge"]}
    options: dict[str, Any] = {"vm_dir": vmx[:len(folder[0])]}  # its own separators
    guest_os = (spec.get("options") or {}).get("guest_os")
    if guest_os != "otherlinux-64":
        options["guest_os"] = guest_os
    entry["options"] = options
    if sizes:
        entry["lifecycle"] = {"ignore_changes": ["disk_source"]}
    return entry
