"""The xen provider's options, comparable spec and field policies (pure)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.manifest.model import Size
from decl.providers.base import ValidateContext, ValidationProblem
from decl.providers.vmbase import VmOptions, VmSupport
from decl.providers.vmspec import check_vm_field

MIB = 1024 * 1024
PATH = re.compile(r"^/[^\x00-\x1f\"\\]*$")
WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class XenOptions(VmOptions):
    """`options:` of a VM with `provider: xen`."""

    type: Literal["hvm", "pvh", "pv"] = Field(
        "hvm", description="Guest type; pvh and pv need `kernel` or `bootloader`.")
    config_dir: str = Field("/etc/xen", description="Folder of the domain config files "
                            "(NAME.cfg) decl writes.")
    disk_dir: str = Field("/var/lib/xen/images", description="Folder of the disk images "
                          "decl makes.")
    disk_format: Literal["raw", "qcow2"] = Field(
        "raw", description="raw (made with truncate) or qcow2 (made with qemu-img).")
    bridge: str | None = Field(
        None, description="Bridge of the network interface (default: network.bridge for "
        "mode bridge, xenbr0 for nat).")
    maxvcpus: int | None = Field(
        None, ge=1, le=512, description="vCPUs the domain may be given while it runs "
        "(default: cpus). cpus change live up to it; beyond it, with a restart.")
    maxmem: Size | None = Field(
        None, description="Memory the domain may be given while it runs (default: memory). "
        "memory changes live up to it; beyond it, with a restart.")
    kernel: str | None = Field(None, description="Kernel for direct boot (pv, pvh, hvm).")
    ramdisk: str | None = Field(None, description="Initial ramdisk for direct boot.")
    cmdline: str | None = Field(None, description="Kernel command line for direct boot.")
    bootloader: str | None = Field(None, description="Bootloader for pv guests (pygrub).")
    shutdown_timeout: float = Field(
        60.0, ge=0, description="Seconds `xl shutdown -w` may take before `xl destroy`.")

    @model_validator(mode="after")
    def _paths(self) -> XenOptions:
        for name in ("config_dir", "disk_dir", "kernel", "ramdisk"):
            value = getattr(self, name)
            if value is not None and not PATH.match(value):
                raise ValueError(f"{name} must be an absolute path without quotes, "
                                 "backslashes or control characters")
        for name in ("bridge", "bootloader"):
            value = getattr(self, name)
            if value is not None and not (WORD.match(value) or PATH.match(value)):
                raise ValueError(f"{name} {value!r} is not a name xl can take")
        if self.cmdline is not None and any(c in self.cmdline for c in "\"\\\n\r"):
            raise ValueError("cmdline may hold no quote, backslash or newline")
        return self


def vdevs(count: int) -> list[str]:
    """xvda, xvdb, ..."""
    return [f"xvd{chr(ord('a') + i)}" for i in range(count)]


SUPPORT = VmSupport(arches=frozenset({"x86_64", "aarch64"}), cdrom=False, cloud_init=False,
                    memory_multiple=MIB, min_memory=32 * MIB, max_disks=26, max_cpus=512)


def validate_vm(model: Any, options: XenOptions, context: ValidateContext
                ) -> list[ValidationProblem]:
    """What Xen (or this provider) cannot do, at its manifest position."""
    problems = []
    if options.type in ("pv", "pvh") and not (options.kernel or options.bootloader):
        problems.append(ValidationProblem(context.at("options", "type"),
                                          f"a {options.type} guest needs options.kernel or "
                                          "options.bootloader"))
    if options.maxvcpus is not None and options.maxvcpus < model.cpus:
        problems.append(ValidationProblem(context.at("options", "maxvcpus"),
                                          f"maxvcpus {options.maxvcpus} is below cpus "
                                          f"{model.cpus}"))
    if options.maxmem is not None and (options.maxmem < model.memory or options.maxmem % MIB):
        problems.append(ValidationProblem(context.at("options", "maxmem"),
                                          "maxmem must be whole MiB and at least memory "
                                          f"({format_size(model.memory)})"))
    for index, disk in enumerate(model.disks):
        if disk.image is not None:
            problems.append(ValidationProblem(context.at("disks", index, "image"),
                                              "the xen provider does not make disks from "
                                              "images yet"))
        elif disk.size is None or disk.size % 512:
            problems.append(ValidationProblem(context.at("disks", index, "size"),
                                              "a Xen disk needs a size in whole 512-byte "
                                              "sectors"))
    bridge = model.network.bridge
    if model.network.mode == "bridge" and options.bridge is None and bridge is not None \
            and not WORD.match(bridge):
        problems.append(ValidationProblem(context.at("network", "bridge"),
                                          f"{bridge!r} is not a bridge name xl can take"))
    return problems


def desired_spec(name: str, model: Any, options: XenOptions) -> dict[str, Any]:
    """The comparable spec of a manifest VM for Xen (validate_vm has checked it)."""
    if model.network.mode == "none":
        bridge = None
    else:
        bridge = options.bridge or (model.network.bridge if model.network.mode == "bridge"
                                    else "xenbr0")
    boot = {k: getattr(options, k) for k in ("kernel", "ramdisk", "cmdline", "bootloader")
            if getattr(options, k) is not None}
    return {
        "type": options.type,
        "cpus": model.cpus,
        "maxvcpus": options.maxvcpus or model.cpus,
        "memory": model.memory,
        "maxmem": options.maxmem or model.memory,
        "firmware": model.firmware if options.type == "hvm" else None,
        "bridge": bridge,
        "boot": boot,
        "disk_count": len(model.disks),
        "disk_format": options.disk_format if model.disks else None,
        "disk_size": {dev: disk.size for dev, disk in zip(vdevs(len(model.disks)),
                                                           model.disks, strict=True)},
    }


TRAITS = KindTraits(
    policies={
        # live up to maxvcpus/maxmem: going beyond them changes maxvcpus/maxmem too, whose
        # policy (restart) then wins
        "cpus": Policy.LIVE,
        "memory": Policy.LIVE,
        "maxvcpus": Policy.RESTART,
        "maxmem": Policy.RESTART,
        "type": Policy.RESTART,
        "firmware": Policy.RESTART,
        "bridge": Policy.RESTART,
        "boot": Policy.RESTART,
        "disk_size": Policy.RESTART,
        "disk_count": Policy.REPLACE,
        "disk_format": Policy.REPLACE,
    },
    default_policy=Policy.REPLACE,
    destroys_data="its disks",
    has_run_state=True,
    size_fields=frozenset({"memory", "maxmem", "disk_size"}),
    check=check_vm_field,
)
