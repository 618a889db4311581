"""Xen hosts with the xl toolstack, locally or over SSH."""

from decl.providers.xen.provider import XenProvider

__all__ = ["XenProvider"]
