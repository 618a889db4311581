"""The libvirt provider: VMs on KVM or QEMU through virsh, locally or over SSH."""

from decl.providers.libvirt.provider import LibvirtProvider

__all__ = ["LibvirtProvider"]
