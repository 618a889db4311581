"""`options:` of a VirtualBox VM, checked by their own model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from decl.providers.vmbase import VmOptions

NicType = Literal["Am79C970A", "Am79C973", "82540EM", "82543GC", "82545EM", "virtio"]


class VirtualBoxOptions(VmOptions):
    """VirtualBox-only settings of a VM (shutdown_timeout: seconds the guest may take to
    power off after the ACPI power button before a hard power-off)."""

    vm_dir: str | None = Field(
        None, description="Base folder for the VM (createvm --basefolder); default: "
        "VirtualBox's machine folder (~/VirtualBox VMs). Used at creation.")
    ostype: str | None = Field(
        None, description="Guest OS type ID (VBoxManage list ostypes), e.g. Ubuntu_64. Used "
        "at creation: VirtualBox reports the type's description, so it is not compared.")
    nic_type: NicType | None = Field(
        None, description="Adapter type of NIC 1 (default: VirtualBox's, 82540EM).")
    graphics: Literal["headless", "gui", "separate"] = Field(
        "headless", description="How the VM is started: headless (no window), gui or "
        "separate.")

    def comparable(self) -> dict[str, str | None]:
        """The options compared with the VM (None: not managed)."""
        return {"nic_type": self.nic_type}
