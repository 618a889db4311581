"""`decl import` for Xen (pure): the manifest entry that adopts a domain config file that
carries no decl marks, with no other change."""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import ValidationError

from decl.core.resource import Observed
from decl.core.units import format_size
from decl.providers.base import ImportNotSupported
from decl.providers.vmimport import common_fields, disk_entries, is_manifest_name
from decl.providers.xen.cfg import parse_disk_spec
from decl.providers.xen.spec import WORD, XenOptions, vdevs

DEFAULTS = XenOptions()
# What decl writes for each disk of a VM it manages: `format=F, vdev=V, access=rw, target=P`.
DISK_KEYS = frozenset({"target", "format", "vdev", "access"})


def disk_problem(index: int, entry: str) -> str | None:
    """Why one `disk = [...]` entry cannot be kept as it is by decl, or None."""
    fields = parse_disk_spec(entry)
    extra = sorted(set(fields) - DISK_KEYS)
    if extra:
        return f"disk {entry!r} sets {', '.join(extra)}, which decl would drop"
    if not fields.get("target", "").startswith("/"):
        return f"disk {entry!r} names no absolute path"
    if fields.get("access", "rw") not in ("rw", "w"):
        return f"disk {entry!r} is not read-write"
    if fields.get("format", "raw") not in ("raw", "qcow2"):
        return f"disk {entry!r} has format {fields.get('format')}: decl knows raw and qcow2"
    if fields.get("vdev") != vdevs(index + 1)[index]:
        return f"disk {entry!r} is not {vdevs(index + 1)[index]}, as decl numbers disks"
    return None


def manifest_entry(observed: Observed) -> dict[str, Any]:
    """The VM as a manifest entry; ImportNotSupported naming what cannot be read back."""
    handle = observed.handle
    if handle.get("error"):
        raise ImportNotSupported(f"{handle['cfg']} cannot be read: {handle['error']}")
    if not handle.get("cfg"):
        raise ImportNotSupported(
            f"domain {observed.name} runs without a config file in the folders read "
            f"({', '.join(handle.get('dirs') or [])}): xl cannot give back its disks or how "
            "it boots; give its config file's folder with --path, or write one")
    if not is_manifest_name(observed.name):
        raise ImportNotSupported(f"{observed.name!r} cannot be a manifest name: rename the "
                                 "domain (its config's name) first")
    problems = [p for i, e in enumerate(handle.get("disk_entries") or [])
                if (p := disk_problem(i, e))]
    if problems:
        raise ImportNotSupported(f"{handle['cfg']}: {'; '.join(problems)}: decl rewrites the "
                                 "disk list of a VM it manages; write its entry by hand")
    spec = observed.spec
    sizes = spec.get("disk_size") or {}
    unread = [dev for dev, size in sizes.items() if not size or size % 512]
    if unread:
        raise ImportNotSupported(f"{handle['cfg']}: the size of disk {', '.join(unread)} "
                                 "cannot be read (a missing file or a block device)")
    if spec.get("disk_format") == "mixed":
        raise ImportNotSupported(f"{handle['cfg']}: its disks mix raw and qcow2, and decl "
                                 "gives a VM's disks one format")
    entry = common_fields(observed.state, spec["cpus"], spec["memory"])
    if spec.get("firmware") == "uefi":
        entry["firmware"] = "uefi"
    if sizes:
        entry["disks"] = disk_entries([int(sizes[dev]) for dev in sizes])
    bridge = spec.get("bridge")
    if bridge is None:
        entry["network"] = {"mode": "none"}
    elif bridge != "xenbr0":
        if not WORD.match(str(bridge)):
            raise ImportNotSupported(f"{handle['cfg']}: a manifest cannot name its settings "
                                     f"as they are (bridge {bridge!r})")
        entry["network"] = {"mode": "bridge", "bridge": bridge}
    options: dict[str, Any] = {}
    if spec.get("type") != DEFAULTS.type:
        options["type"] = spec.get("type")
    folder = posixpath.dirname(str(handle["cfg"]))
    if folder != DEFAULTS.config_dir:
        options["config_dir"] = folder
    if sizes and spec.get("disk_format") != DEFAULTS.disk_format:
        options["disk_format"] = spec.get("disk_format")
    if spec.get("maxvcpus") != spec["cpus"]:
        options["maxvcpus"] = spec.get("maxvcpus")
    if spec.get("maxmem") != spec["memory"]:
        options["maxmem"] = format_size(int(spec["maxmem"]))
    options.update(spec.get("boot") or {})
    if options:
        try:
            XenOptions.model_validate(options)
        except ValidationError as exc:
            reasons = "; ".join(str(e["msg"]) for e in exc.errors())
            raise ImportNotSupported(f"{handle['cfg']}: a manifest cannot name its settings "
                                     f"as they are ({reasons})") from None
        entry["options"] = options
    return entry
