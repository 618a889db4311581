"""Parallels Desktop VMs through prlctl (see docs/facts/parallels.md)."""
