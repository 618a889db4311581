"""The xen provider's options, comparable spec and field policies (pure)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ManifestError
from decl.manifest.model import Size

MIB = 1024 * 1024
PATH = re.compile(r"^/[^\x00-\x1f\"\\]*$")
WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class XenOptions(BaseModel):
    """`options:` of a VM with `provider: xen`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def parse_options(address: str, raw: dict[str, Any] | None) -> XenOptions:
    """The VM's options, checked (ManifestError naming the address and option)."""
    try:
        return XenOptions.model_validate(raw or {})
    except ValidationError as exc:
        parts = []
        for item in exc.errors():
            loc = ".".join(str(p) for p in item.get("loc", ()))
            parts.append(f"options.{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        raise ManifestError(f"{address}: invalid xen options: " + "; ".join(parts)) from None


def vdevs(count: int) -> list[str]:
    """xvda, xvdb, ..."""
    return [f"xvd{chr(ord('a') + i)}" for i in range(count)]


def desired_spec(name: str, model: Any) -> dict[str, Any]:
    """The comparable spec of a manifest VM for Xen (ManifestError for what it cannot do)."""
    address = f"vm.{name}"
    options = parse_options(address, model.options)
    unsupported = [f for f in ("cdrom", "cloud_init") if getattr(model, f, None) is not None]
    if any(disk.image for disk in model.disks):
        unsupported.append("disks with an image")
    if unsupported:
        raise ManifestError(f"{address}: the xen provider does not support "
                            f"{' or '.join(unsupported)} yet")
    if model.arch not in (None, "x86_64", "aarch64"):
        raise ManifestError(f"{address}: Xen runs guests of the host's architecture, not "
                            f"{model.arch}")
    if options.type in ("pv", "pvh") and not (options.kernel or options.bootloader):
        raise ManifestError(f"{address}: a {options.type} guest needs options.kernel or "
                            "options.bootloader")
    if model.memory % MIB or model.memory < 32 * MIB:
        raise ManifestError(f"{address}: Xen needs memory in whole MiB, at least 32MiB, not "
                            f"{format_size(model.memory)}")
    maxvcpus = options.maxvcpus or model.cpus
    maxmem = options.maxmem or model.memory
    if maxvcpus < model.cpus:
        raise ManifestError(f"{address}: options.maxvcpus {maxvcpus} is below cpus "
                            f"{model.cpus}")
    if maxmem < model.memory or maxmem % MIB:
        raise ManifestError(f"{address}: options.maxmem must be whole MiB and at least "
                            f"memory ({format_size(model.memory)})")
    if len(model.disks) > 26:
        raise ManifestError(f"{address}: at most 26 disks (xvda to xvdz)")
    for index, disk in enumerate(model.disks):
        if disk.size is None or disk.size % 512:
            raise ManifestError(f"{address}: disks[{index}] needs a size in whole 512-byte "
                                "sectors")
    if model.network.mode == "none":
        bridge = None
    else:
        bridge = options.bridge or (model.network.bridge if model.network.mode == "bridge"
                                    else "xenbr0")
        if not WORD.match(bridge or ""):
            raise ManifestError(f"{address}: bridge {bridge!r} is not a name xl can take")
    boot = {k: getattr(options, k) for k in ("kernel", "ramdisk", "cmdline", "bootloader")
            if getattr(options, k) is not None}
    return {
        "type": options.type,
        "cpus": model.cpus,
        "maxvcpus": maxvcpus,
        "memory": model.memory,
        "maxmem": maxmem,
        "firmware": model.firmware if options.type == "hvm" else None,
        "bridge": bridge,
        "boot": boot,
        "disk_count": len(model.disks),
        "disk_format": options.disk_format if model.disks else None,
        "disk_size": {dev: disk.size for dev, disk in zip(vdevs(len(model.disks)),
                                                           model.disks, strict=True)},
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
    check=check_field,
)
