"""The QEMU provider: VMs as qemu-system-* processes in VM directories decl owns."""

from decl.providers.qemu.provider import QemuProvider

__all__ = ["QemuProvider"]
