"""The esxi provider's options, comparable spec and field policies (pure)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ManifestError
from decl.providers.esxi.config import MAX_DISKS, MIB, disk_devices

DISPLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()+-]{0,79}$")
PLAIN = re.compile(r"^[^\x00-\x1f\"|\[\]/\\]{1,80}$")


class EsxiOptions(BaseModel):
    """`options:` of a VM with `provider: esxi`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datastore: str = Field("datastore1", description="Datastore that holds the VM's folder.")
    port_group: str = Field(
        "VM Network", description="Port group of the first network adapter (network mode "
        "nat; mode bridge names its port group in network.bridge).")
    guest_os: str = Field("otherlinux-64", description="guestOS of the .vmx (e.g. "
                          "debian12-64, ubuntu-64, windows9-64).")
    disk_type: Literal["thin", "zeroedthick", "eagerzeroedthick"] = Field(
        "thin", description="How vmkfstools allocates new disks (decided at creation).")
    shutdown_timeout: float = Field(
        120.0, ge=0, description="Seconds a guest shutdown may take (VMware Tools needed) "
        "before the VM is powered off.")
    display_name: str | None = Field(
        None, description="The VM's name on the host, spaces allowed (default: the "
        "manifest name). Also names its folder and files.")

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str | None) -> str | None:
        if value is not None and not DISPLAY_NAME.match(value):
            raise ValueError("use letters, digits, spaces and _ . ( ) + -, at most 80, "
                             "starting with a letter or digit")
        return value

    @field_validator("datastore", "port_group", "guest_os")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not PLAIN.match(value):
            raise ValueError('must be 1 to 80 characters without quotes, |, [, ], / or \\')
        return value


def parse_options(address: str, raw: dict[str, Any] | None) -> EsxiOptions:
    """The VM's options, checked (ManifestError naming the address and option)."""
    try:
        return EsxiOptions.model_validate(raw or {})
    except ValidationError as exc:
        parts = []
        for item in exc.errors():
            loc = ".".join(str(p) for p in item.get("loc", ()))
            parts.append(f"options.{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        raise ManifestError(f"{address}: invalid esxi options: " + "; ".join(parts)) from None


def desired_spec(name: str, model: Any) -> dict[str, Any]:
    """The comparable spec of a manifest VM for ESXi; ManifestError for what ESXi or this
    provider cannot do."""
    address = f"vm.{name}"
    options = parse_options(address, model.options)
    unsupported = [f for f in ("cdrom", "cloud_init") if getattr(model, f, None) is not None]
    if any(disk.image for disk in model.disks):
        unsupported.append("disks with an image")
    if unsupported:
        raise ManifestError(f"{address}: the esxi provider does not support "
                            f"{' or '.join(unsupported)} yet")
    if model.arch not in (None, "x86_64"):
        raise ManifestError(f"{address}: ESXi runs x86_64 guests only, not {model.arch}")
    if model.memory % (4 * MIB) or model.memory < 4 * MIB:
        raise ManifestError(f"{address}: ESXi needs memory in whole multiples of 4MiB, not "
                            f"{format_size(model.memory)}")
    if model.cpus > 128:
        raise ManifestError(f"{address}: ESXi gives a VM at most 128 vCPUs")
    if len(model.disks) > MAX_DISKS:
        raise ManifestError(f"{address}: at most {MAX_DISKS} disks on one controller")
    for index, disk in enumerate(model.disks):
        if disk.size is None or disk.size % 1024:
            raise ManifestError(f"{address}: disks[{index}] needs a size in whole KiB")
    if model.network.mode == "none":
        port_group = None
    elif model.network.mode == "bridge":
        port_group = model.network.bridge
        if port_group is not None and not PLAIN.match(port_group):
            raise ManifestError(f"{address}: network.bridge {port_group!r} cannot be a port "
                                "group name")
    else:
        port_group = options.port_group
    devices = disk_devices(len(model.disks))
    return {
        "display_name": options.display_name or name,
        "cpus": model.cpus,
        "memory": model.memory,
        "firmware": model.firmware,
        "guest_os": options.guest_os,
        "datastore": options.datastore,
        "port_group": port_group,
        "disk_count": len(model.disks),
        "disk_size": {dev: disk.size for dev, disk in zip(devices, model.disks, strict=True)},
    }


def check_field(path: str, before: Any, after: Any) -> str | None:
    """Plan-time errors: a disk never shrinks."""
    if path.startswith("disk_size.") and isinstance(before, int) and isinstance(after, int) \
            and after < before:
        return (f"disk {path.split('.', 1)[1]} cannot shrink from {format_size(before)} to "
                f"{format_size(after)}: disks only grow")
    return None


TRAITS = KindTraits(
    policies={
        # The .vmx is edited with the VM powered off (edits made while it runs are lost at
        # power-off), and vmkfstools cannot grow the disk of a running VM: all restart.
        "display_name": Policy.RESTART,
        "cpus": Policy.RESTART,
        "memory": Policy.RESTART,
        "guest_os": Policy.RESTART,
        "port_group": Policy.RESTART,
        "disk_size": Policy.RESTART,
        "firmware": Policy.REPLACE,
        "datastore": Policy.REPLACE,
        "disk_count": Policy.REPLACE,
    },
    default_policy=Policy.REPLACE,
    destroys_data="its disks",
    has_run_state=True,
    size_fields=frozenset({"memory", "disk_size"}),
    check=check_field,
)
