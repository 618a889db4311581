"""Pure parsers of prlctl's output (facts and sources: docs/facts/parallels.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
_UNITS = {"b": 1 / MIB, "kb": 1 / 1024, "mb": 1, "gb": 1024, "tb": 1024 * 1024}
_SIZE = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?b)?\s*$", re.IGNORECASE)
_VERSION = re.compile(r"prlctl version (?P<v>\d+(?:\.\d+)*)(?:\s*\((?P<build>[^)]*)\))?")
_CONTROL = re.compile(r"[\x00-\x1f]")


@dataclass(frozen=True)
class PrlDisk:
    """One hard disk as prlctl reports it."""

    device: str
    size: int | None
    image: str
    enabled: bool


@dataclass(frozen=True)
class PrlVm:
    """One VM from `prlctl list -a -i -j`."""

    uuid: str
    name: str
    description: str
    state: str
    cpus: int | None
    memory: int | None
    efi: bool
    home: str
    disks: tuple[PrlDisk, ...] = ()
    cdrom: str | None = None
    network: dict[str, Any] = field(default_factory=dict)
    cdroms: tuple[tuple[str, str], ...] = ()  # (device, image) of every enabled CD drive


def parse_json(text: str) -> Any:
    """prlctl's JSON, tolerating what it may print around it: everything outside the outer
    brackets is dropped, and raw control characters are removed before parsing (as
    vagrant-parallels does). ValueError when there is no JSON."""
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        raise ValueError("no JSON in prlctl's output")
    start = min(starts)
    end = max(text.rfind("]"), text.rfind("}"))
    if end < start:
        raise ValueError("no JSON in prlctl's output")
    # Control characters inside strings are escaped by prlctl; raw ones are noise.
    body = _CONTROL.sub(lambda m: "" if m.group() not in "\n\t\r" else m.group(),
                        text[start:end + 1])
    return json.loads(body)


def size_bytes(value: Any) -> int | None:
    """`"1024Mb"` (prlctl's sizes: a number and a unit, MB when there is none) in bytes."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * MIB)
    match = _SIZE.match(str(value))
    if match is None:
        return None
    unit = (match["unit"] or "mb").lower()
    return int(float(match["n"]) * _UNITS[unit] * MIB)


def parse_version(text: str) -> str | None:
    """`prlctl version 26.1.1 (57288)` -> "26.1.1"."""
    match = _VERSION.search(text)
    return match["v"] if match else None


def _device_index(name: str, kind: str) -> int:
    tail = name[len(kind):]
    return int(tail) if tail.isdigit() else 0


def parse_vm(entry: dict[str, Any]) -> PrlVm:
    """One element of `prlctl list -a -i -j`."""
    hardware = entry.get("Hardware") or {}
    cpu = hardware.get("cpu") or {}
    cpus = cpu.get("cpus")
    memory = (hardware.get("memory") or {}).get("size")
    disks = []
    cdrom = None
    cdroms: list[tuple[str, str]] = []
    network: dict[str, Any] = {"mode": "none", "bridge": None}
    for name in sorted(hardware, key=lambda n: (n.rstrip("0123456789"),
                                                _device_index(n, n.rstrip("0123456789")))):
        dev = hardware[name]
        if not isinstance(dev, dict):
            continue
        enabled = dev.get("enabled", True) is not False
        if name.startswith("hdd"):
            disks.append(PrlDisk(name, size_bytes(dev.get("size")), str(dev.get("image", "")),
                                 enabled))
        elif name.startswith("cdrom"):
            image = str(dev.get("image") or "")
            if enabled:
                cdroms.append((name, image))
            if cdrom is None and name == "cdrom0":
                cdrom = image if image and enabled else None
        elif name == "net0":
            kind = str(dev.get("type", ""))
            if not enabled:
                network = {"mode": "none", "bridge": None}
            elif kind == "bridged":
                iface = dev.get("iface")
                network = {"mode": "bridge", "bridge": None if iface in (None, "default")
                           else str(iface)}
            elif kind == "shared":
                network = {"mode": "nat", "bridge": None}
            else:
                network = {"mode": kind or "unknown", "bridge": None}
    return PrlVm(
        uuid=str(entry.get("ID", "")).strip("{}"),
        name=str(entry.get("Name", "")),
        description=str(entry.get("Description") or ""),
        state=str(entry.get("State", "unknown")),
        cpus=cpus if isinstance(cpus, int) else None,
        memory=size_bytes(memory),
        efi=str(entry.get("EFI boot", "off")).lower() == "on",
        home=str(entry.get("Home", "")),
        disks=tuple(disks),
        cdrom=cdrom,
        network=network,
        cdroms=tuple(cdroms),
    )


def parse_list_info(text: str) -> list[PrlVm]:
    """Every VM of `prlctl list -a -i -j`; ValueError on output that is not that."""
    data = parse_json(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("prlctl list -i -j did not print a list of VMs")
    return [parse_vm(e) for e in data]


def error_text(stdout: str, stderr: str) -> str:
    """The message of a failed prlctl call (errors go to stderr; usage to stdout)."""
    text = stderr.strip() or stdout.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[-3:]) if lines else "prlctl failed without a message"


def is_not_found(stderr: str) -> bool:
    """Whether prlctl said the VM does not exist."""
    return "could not be found" in stderr or "does not exist" in stderr
