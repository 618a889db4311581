"""Find providers through the `decl.providers` entry-point group; built-ins included.

Entry points are listed without importing them; a provider is imported when a resource
needs it, and a plugin that fails to load is reported with its error, not fatal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

from decl.providers.base import Provider

GROUP = "decl.providers"

# Built-ins, used when the package metadata is missing (running from a source tree).
BUILTIN = {
    "venv": "decl.providers.venv:VenvProvider",
    "docker": "decl.providers.docker:DockerProvider",
    "wsl": "decl.providers.wsl:WslProvider",
    "hyperv": "decl.providers.hyperv:HypervProvider",
    "libvirt": "decl.providers.libvirt:LibvirtProvider",
    "qemu": "decl.providers.qemu:QemuProvider",
    "virtualbox": "decl.providers.virtualbox:VirtualBoxProvider",
    "vmware": "decl.providers.vmware:VmwareProvider",
}


@dataclass(frozen=True)
class ProviderEntry:
    """A provider's name and where it comes from."""

    name: str
    target: str


class ProviderLoadError(Exception):
    """A provider plugin could not be imported or is not a Provider."""


class Registry:
    """Providers by name, loaded on first use."""

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        self.entries = entries if entries is not None else discover_entries()
        self._loaded: dict[str, Provider] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every provider name, sorted."""
        return sorted(self.entries)

    def get(self, name: str) -> Provider:
        """The provider, imported on first use; ProviderLoadError if unknown or broken."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            if name in self._errors:
                raise ProviderLoadError(self._errors[name])
            target = self.entries.get(name)
            if target is None:
                raise ProviderLoadError(f"no provider is available for {name!r} yet")
            try:
                provider = _load(target)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break decl
                self._errors[name] = f"provider {name!r} ({target}) failed to load: " \
                    f"{type(exc).__name__}: {exc}"
                raise ProviderLoadError(self._errors[name]) from None
            self._loaded[name] = provider
            return provider


def _load(target: str) -> Provider:
    import importlib

    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    provider = obj() if isinstance(obj, type) else obj
    if not isinstance(provider, Provider):
        raise TypeError(f"{target} is not a decl Provider")
    return provider


def discover_entries() -> dict[str, str]:
    """name -> 'module:attr' from the entry-point group (built-ins as a fallback)."""
    found = dict(BUILTIN)
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        found[entry.name] = entry.value
    return found
