"""The esxi provider's options, comparable spec and field policies (pure)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from decl.core.traits import KindTraits, Policy
from decl.providers.base import ValidateContext, ValidationProblem
from decl.providers.esxi.config import MAX_DISKS, MIB, disk_devices
from decl.providers.vmbase import VmOptions, VmSupport
from decl.providers.vmspec import check_vm_field

DISPLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()+-]{0,79}$")
PLAIN = re.compile(r"^[^\x00-\x1f\"|\[\]/\\]{1,80}$")


class EsxiOptions(VmOptions):
    """`options:` of a VM with `provider: esxi`."""

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


SUPPORT = VmSupport(arches=frozenset({"x86_64"}), cdrom=False, cloud_init=False,
                    memory_multiple=4 * MIB, min_memory=4 * MIB, max_disks=MAX_DISKS,
                    max_cpus=128)


def validate_vm(model: Any, options: EsxiOptions, context: ValidateContext
                ) -> list[ValidationProblem]:
    """What ESXi (or this provider) cannot do, at its manifest position."""
    problems = []
    for index, disk in enumerate(model.disks):
        if disk.image is not None:
            problems.append(ValidationProblem(context.at("disks", index, "image"),
                                              "the esxi provider does not make disks from "
                                              "images yet"))
        elif disk.size is None or disk.size % 1024:
            problems.append(ValidationProblem(context.at("disks", index, "size"),
                                              "an ESXi disk needs a size in whole KiB"))
    bridge = model.network.bridge
    if model.network.mode == "bridge" and bridge is not None and not PLAIN.match(bridge):
        problems.append(ValidationProblem(context.at("network", "bridge"),
                                          f"{bridge!r} cannot be a port group name (no "
                                          'quotes, |, [, ], / or \\)'))
    return problems


def desired_spec(name: str, model: Any, options: EsxiOptions) -> dict[str, Any]:
    """The comparable spec of a manifest VM for ESXi (validate_vm has checked it)."""
    if model.network.mode == "none":
        port_group = None
    elif model.network.mode == "bridge":
        port_group = model.network.bridge
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
    check=check_vm_field,
)
