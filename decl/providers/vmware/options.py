"""`options:` of a VMware (Workstation/Fusion) VM, checked by their own model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from decl.providers.vmbase import VmOptions


class VmwareOptions(VmOptions):
    """VMware-only settings of a VM (shutdown_timeout: seconds `vmrun stop soft`, which needs
    VMware Tools in the guest, may take before `vmrun stop hard`)."""

    vm_dir: str | None = Field(
        None, description="Folder holding one folder per VM (NAME/NAME.vmx), used at "
        "creation (a VM stays where it was made); default: "
        "VMware's (~/vmware on Linux, ~/Virtual Machines.localized on macOS, "
        "~\\Documents\\Virtual Machines on Windows).")
    guest_os: str = Field("otherlinux-64", description="The .vmx guestOS value, e.g. "
                          "ubuntu-64, debian12-64, windows11-64, arm-ubuntu-64.")
    hw_version: int = Field(19, ge=4, description="virtualHW.version of a new VM (19: "
                            "Workstation 16.2 / Fusion 12.2 and later).")
    nic_type: Literal["e1000", "e1000e", "vmxnet3"] | None = Field(
        None, description="ethernet0.virtualDev (default e1000e for a new VM).")
    graphics: Literal["nogui", "gui"] = Field(
        "nogui", description="`vmrun start` without a window (nogui) or with one (gui).")

    def comparable(self) -> dict[str, str | None]:
        """The options compared with the .vmx (None: not managed)."""
        return {"guest_os": self.guest_os, "nic_type": self.nic_type}
