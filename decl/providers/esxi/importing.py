"""`decl import` for ESXi (pure): the manifest entry that adopts an unmarked VM with no other
change."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from decl.core.resource import Observed
from decl.providers.base import ImportNotSupported
from decl.providers.esxi.config import disk_devices
from decl.providers.esxi.spec import EsxiOptions
from decl.providers.vmimport import common_fields, disk_entries

DEFAULTS = EsxiOptions()


def manifest_entry(observed: Observed) -> dict[str, Any]:
    """The VM as a manifest entry; ImportNotSupported naming what cannot be read back."""
    spec = observed.spec
    what = f"ESXi VM {spec.get('display_name')!r}"
    if not observed.handle.get("readable", True):
        raise ImportNotSupported(f"the .vmx of {what} ({observed.handle.get('vmx')}) cannot "
                                 "be read, so none of its settings can be read back")
    if not isinstance(spec.get("cpus"), int) or not isinstance(spec.get("memory"), int):
        raise ImportNotSupported(f"{what}: numvcpus {spec.get('cpus')!r} or memSize "
                                 f"{spec.get('memory')!r} is not a number in its .vmx")
    sizes = spec.get("disk_size") or {}
    devices = list(sizes)
    if devices != disk_devices(len(devices)):
        raise ImportNotSupported(
            f"{what}: its disks sit on {', '.join(devices)}, and decl numbers an ESXi VM's "
            f"disks {', '.join(disk_devices(len(devices)))}: write its entry by hand")
    unread = [dev for dev in devices if not sizes[dev] or sizes[dev] % 1024]
    if unread:
        raise ImportNotSupported(f"{what}: the size of disk {', '.join(unread)} cannot be "
                                 "read from its .vmdk descriptor")
    entry = common_fields(observed.state, spec["cpus"], spec["memory"])
    if spec.get("firmware") == "uefi":
        entry["firmware"] = "uefi"
    if devices:
        entry["disks"] = disk_entries([int(sizes[dev]) for dev in devices])
    options: dict[str, Any] = {}
    port_group = spec.get("port_group")
    if port_group is None:
        entry["network"] = {"mode": "none"}
    elif port_group != DEFAULTS.port_group:
        options["port_group"] = port_group
    if spec.get("display_name") != observed.name:
        options["display_name"] = spec.get("display_name")
    if spec.get("guest_os") != DEFAULTS.guest_os:
        options["guest_os"] = spec.get("guest_os")
    if spec.get("datastore") != DEFAULTS.datastore:
        options["datastore"] = spec.get("datastore")
    if options:
        try:
            EsxiOptions.model_validate(options)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])} {e['input']!r}: "
                                 f"{e['msg']}" for e in exc.errors())
            raise ImportNotSupported(f"{what}: a manifest cannot name its settings as they "
                                     f"are ({problems})") from None
        entry["options"] = options
    return entry
