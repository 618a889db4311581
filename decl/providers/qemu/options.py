"""`options:` of a QEMU VM, checked by their own model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from decl.providers.vmbase import VmOptions

DEFAULT_VM_DIR = "~/.local/share/decl/qemu"


class QemuOptions(VmOptions):
    """QEMU-only settings of a VM (with the common `shutdown_timeout`)."""

    accel: Literal["auto", "kvm", "tcg"] = Field(
        "auto", description="auto: KVM when /dev/kvm is usable and the arch is the host's, "
        "else TCG (emulation).")
    machine: str | None = Field(None, description="Machine type (q35, pc, virt...).")
    cpu_model: str | None = Field(None, description="-cpu model (max, host, cortex-a57...).")
    vm_dir: str = Field(
        DEFAULT_VM_DIR,
        description="Root of the VM directories on the host; a VM lives in "
        "VM_DIR/PROJECT/NAME.")
    disk_mode: Literal["overlay", "copy"] = Field(
        "overlay", description="A disk made from an image: a qcow2 overlay on it, or a copy.")

    def comparable(self) -> dict[str, str | None]:
        """The options compared with the VM (None: not managed)."""
        return {"accel": None if self.accel == "auto" else self.accel,
                "machine": self.machine, "cpu_model": self.cpu_model}
