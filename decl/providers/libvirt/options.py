"""`options:` of a libvirt VM, checked by their own model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from decl.providers.vmbase import VmOptions


class LibvirtOptions(VmOptions):
    """libvirt-only settings of a VM (with the common `shutdown_timeout`)."""

    uri: str = Field("qemu:///system", description="libvirt connection URI on the VM's host.")
    domain_type: Literal["kvm", "qemu"] | None = Field(
        None, description="kvm (hardware acceleration) or qemu (emulation, TCG); default: "
        "kvm when /dev/kvm is usable and the arch is the host's, else qemu.")
    machine: str | None = Field(None, description="Machine type (q35, pc, virt...).")
    cpu_model: str | None = Field(
        None, description="CPU model: host-passthrough, host-model, or a model name.")
    disk_mode: Literal["overlay", "copy"] = Field(
        "overlay", description="A disk made from an image: a qcow2 overlay on it, or a copy.")
    pool_dir: str = Field(
        "/var/lib/libvirt/images",
        description="Directory on the host for the disks, seeds and image cache decl makes.")
    network: str = Field("default", description="libvirt network used by network mode nat.")

    def comparable(self) -> dict[str, str | None]:
        """The options compared with the domain (None: not managed)."""
        return {"domain_type": self.domain_type, "machine": self.machine,
                "cpu_model": self.cpu_model}
