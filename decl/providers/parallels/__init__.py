"""Parallels Desktop VMs through prlctl (see docs/facts/parallels.md)."""

from decl.providers.parallels.provider import ParallelsProvider

__all__ = ["ParallelsProvider"]
