"""Find providers through the `decl.providers` entry-point group; built-ins included.

Entry points are listed without importing them; a provider is imported when a resource
needs it, and a plugin that fails to load is reported with its error, not fatal.
"""

from __future__ import annotations

import threading
from enum import Enum
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
}


# Provider names the manifest format documents (DESIGN.md) for a kind, whether or not a
# provider of that name is installed: a manifest naming one is valid, and the plan says
# that no provider is available for it yet. Any other unregistered name is a typo.
DOCUMENTED = {
    "vm": ("libvirt", "qemu", "virtualbox", "vmware", "hyperv", "parallels", "utm", "xen",
           "esxi"),
}


class LoadFailure(str, Enum):
    """Why a provider could not be had: code decides on this, never on message text."""

    NOT_INSTALLED = "not_installed"  # no entry point of that name
    BROKEN = "broken"  # the plugin failed to import, or is not a Provider
    WRONG_KIND = "wrong_kind"  # it exists but does not handle that kind


class ProviderLoadError(Exception):
    """A provider plugin could not be imported or is not a Provider; `reason` says which."""

    def __init__(self, message: str, reason: LoadFailure = LoadFailure.BROKEN) -> None:
        super().__init__(message)
        self.reason = reason


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
                raise ProviderLoadError(f"no provider is available for {name!r} yet",
                                        LoadFailure.NOT_INSTALLED)
            try:
                provider = _load(target)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break decl
                self._errors[name] = f"provider {name!r} ({target}) failed to load: " \
                    f"{type(exc).__name__}: {exc}"
                raise ProviderLoadError(self._errors[name]) from None
            self._loaded[name] = provider
            return provider

    def for_kind(self, name: str, kind: str) -> Provider:
        """The provider `name`, which must handle `kind` (ProviderLoadError otherwise)."""
        provider = self.get(name)
        if kind not in provider.kinds:
            raise ProviderLoadError(f"provider {name!r} does not handle {kind}",
                                    LoadFailure.WRONG_KIND)
        return provider

    def names_for(self, kind: str) -> list[str]:
        """Names of the registered providers that load and handle `kind`, sorted."""
        found = []
        for name in self.names():
            try:
                provider = self.get(name)
            except ProviderLoadError:
                continue
            if kind in provider.kinds:
                found.append(name)
        return found


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
