"""VirtualBox VMs through VBoxManage."""

from decl.providers.virtualbox.provider import VirtualBoxProvider

__all__ = ["VirtualBoxProvider"]
