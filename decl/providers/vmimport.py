"""What the VM providers' `decl import` hooks share (pure): manifest names and the fields
every VM entry writes the same way."""

from __future__ import annotations

import re
from typing import Any

from decl.core.units import format_size
from decl.manifest.model import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def is_manifest_name(name: str) -> bool:
    """Whether `name` can be a resource's name in a manifest as it is."""
    return bool(_NAME.match(name))


def manifest_name(name: str) -> str:
    """A manifest name for a backend's display name: runs of other characters become one
    `-` ("Web Server 1" -> "Web-Server-1"); "vm" when nothing is left."""
    cleaned = _NOT_NAME.sub("-", name).strip("-_.")[:63].rstrip("-_.")
    return cleaned if cleaned and _NAME.match(cleaned) else "vm"


def common_fields(state: str, cpus: Any, memory: Any) -> dict[str, Any]:
    """`state` (only when stopped: running is the default), `cpus` and `memory`."""
    entry: dict[str, Any] = {}
    if state == "stopped":
        entry["state"] = "stopped"
    entry["cpus"] = cpus
    entry["memory"] = format_size(int(memory))
    return entry


def disk_entries(sizes: list[int]) -> list[dict[str, Any]]:
    """`disks:` of empty disks of these sizes."""
    return [{"size": format_size(size)} for size in sizes]
