"""Hyper-V VMs on Windows hosts, through PowerShell."""

from decl.providers.hyperv.provider import HypervProvider

__all__ = ["HypervProvider"]
