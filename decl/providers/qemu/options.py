"""`options:` of a QEMU VM, checked by their own model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_VM_DIR = "~/.local/share/decl/qemu"


class QemuOptions(BaseModel):
    """QEMU-only settings of a VM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    shutdown_timeout: float = Field(
        60.0, ge=0, description="Seconds a graceful powerdown may take before `quit`.")

    def comparable(self) -> dict[str, str | None]:
        """The options compared with the VM (None: not managed)."""
        return {"accel": None if self.accel == "auto" else self.accel,
                "machine": self.machine, "cpu_model": self.cpu_model}
