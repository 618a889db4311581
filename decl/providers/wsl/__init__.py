"""WSL distros on Windows hosts, through wsl.exe."""

from decl.providers.wsl.provider import WslProvider

__all__ = ["WslProvider"]
