"""Pure parsers of what `vim-cmd` and `vmkfstools` print on an ESXi host.

vim-cmd prints everything, faults included, on stdout, and often exits 0 after a fault: a
caller looks for a fault in the text first and trusts the exit code only after that
(docs/facts/esxi.md has the outputs these parsers were written against).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

POWER_STATES = {"Powered on": "running", "Powered off": "stopped", "Suspended": "suspended"}

_ROW = re.compile(
    r"^(?P<vmid>\d+)\s+(?P<name>.*?)\s+\[(?P<datastore>[^\]]+)\] (?P<path>.+?\.vmx)"
    r"(?:\s+(?P<guest>\S+))?(?:\s+(?P<version>vmx-\d+))?(?:\s+(?P<annotation>.*))?$")
_INVALID = re.compile(r"^Skipping invalid VM '(?P<vmid>[^']*)'")
_FAULT = re.compile(r"\((?P<name>(?:vim|vmodl)\.fault\.[A-Za-z0-9_.]+)\)\s*\{")
_MSG = re.compile(r'^\s*msg = "(?P<msg>.*)",\s*$', re.MULTILINE)
_FIELD = re.compile(r'^\s*(?P<key>\w+) = (?:"(?P<text>[^"]*)"|(?P<other>[^,]*)),\s*$')
_EXTENT = re.compile(r'^\s*(?:RW|RDONLY|NOACCESS)\s+(?P<sectors>\d+)\s+\w+', re.MULTILINE)


@dataclass(frozen=True)
class VmRow:
    """One VM in `vim-cmd vmsvc/getallvms`."""

    vmid: str
    name: str
    datastore: str
    path: str  # inside the datastore, e.g. "web/web.vmx"
    guest: str
    version: str
    annotation: str


@dataclass(frozen=True)
class Fault:
    """A vim fault printed by vim-cmd."""

    name: str  # e.g. vim.fault.NotFound
    msg: str

    @property
    def short(self) -> str:
        """The fault's last name (NotFound)."""
        return self.name.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return f"{self.short}: {self.msg}" if self.msg else self.short


def parse_getallvms(text: str) -> tuple[list[VmRow], list[str]]:
    """(rows, vmids reported invalid) from `vim-cmd vmsvc/getallvms` (stderr merged or not).

    Names may hold spaces; the File column starts with `[datastore]`; an annotation with a
    newline goes on over the next lines, which are added to the row before them."""
    rows: list[VmRow] = []
    invalid: list[str] = []
    started = False
    for line in text.replace("\r\n", "\n").split("\n"):
        invalid_match = _INVALID.match(line.strip())
        if invalid_match:
            invalid.append(invalid_match["vmid"])
            continue
        if not started:
            if line.startswith("Vmid") and "File" in line:
                started = True
            continue
        match = _ROW.match(line)
        if match:
            rows.append(VmRow(match["vmid"], match["name"].strip(), match["datastore"],
                              match["path"], match["guest"] or "", match["version"] or "",
                              (match["annotation"] or "").rstrip()))
        elif rows:
            last = rows[-1]
            rows[-1] = VmRow(last.vmid, last.name, last.datastore, last.path, last.guest,
                             last.version, f"{last.annotation}\n{line.rstrip()}")
    rows = [VmRow(r.vmid, r.name, r.datastore, r.path, r.guest, r.version,
                  r.annotation.rstrip("\n")) for r in rows]
    return rows, invalid


def find_fault(text: str) -> Fault | None:
    """The first vim fault in vim-cmd's output, or None."""
    match = _FAULT.search(text)
    if match is None:
        return None
    msg = _MSG.search(text, match.end())
    return Fault(match["name"], msg["msg"] if msg else "")


def parse_power(text: str) -> str | None:
    """decl's run state from `vim-cmd vmsvc/power.getstate` (None when not recognised)."""
    if find_fault(text) is not None:
        return None
    for line in text.splitlines():
        word = POWER_STATES.get(line.strip())
        if word:
            return word
    return None


def parse_fields(text: str) -> dict[str, str]:
    """Top-level `key = value,` fields of a vim data object dump (strings unquoted)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match and match["key"] not in out:
            out[match["key"]] = match["text"] if match["text"] is not None \
                else match["other"].strip()
    return out


def parse_datastores(text: str) -> dict[str, str]:
    """name -> url (the folder the host mounts it at) from hostsvc/datastore/listsummary.

    Inaccessible datastores are left out."""
    found: dict[str, str] = {}
    for section in text.split("(vim.Datastore.Summary) {")[1:]:
        fields = parse_fields(section)
        name, url = fields.get("name"), fields.get("url")
        if name and url and fields.get("accessible", "true") != "false":
            found[name] = url.rstrip("/")
    return found


def tools_running(text: str) -> bool:
    """Whether `vim-cmd vmsvc/get.guest` says VMware Tools run in the guest."""
    return parse_fields(text).get("toolsRunningStatus") == "guestToolsRunning"


def parse_new_vmid(text: str) -> str | None:
    """The vmid `vim-cmd solo/registervm` printed (None after a fault or odd output)."""
    if find_fault(text) is not None:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines and lines[-1].isdigit() else None


def descriptor_size(text: str) -> int | None:
    """Bytes of a virtual disk from its VMDK descriptor's extent lines (512-byte sectors)."""
    sectors = [int(m["sectors"]) for m in _EXTENT.finditer(text)]
    return sum(sectors) * 512 if sectors else None


def vmkfstools_size(size: int) -> str:
    """A size for vmkfstools -c / -X: whole KiB/MiB/GiB where exact, else KiB rounded up."""
    for unit, factor in (("G", 1024**3), ("M", 1024**2)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{-(-size // 1024)}K"
