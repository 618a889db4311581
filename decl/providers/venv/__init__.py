"""The venv provider: Python virtual environments and their packages."""

from decl.providers.venv.provider import VenvProvider

__all__ = ["VenvProvider"]
