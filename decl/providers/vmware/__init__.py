"""VMware Workstation and Fusion VMs through vmrun, vmware-vdiskmanager and the .vmx file."""

from decl.providers.vmware.provider import VmwareProvider

__all__ = ["VmwareProvider"]
