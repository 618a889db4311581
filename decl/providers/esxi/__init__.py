"""VMware ESXi hosts over SSH: vim-cmd and vmkfstools in the host's BusyBox shell."""

from decl.providers.esxi.provider import EsxiProvider

__all__ = ["EsxiProvider"]
