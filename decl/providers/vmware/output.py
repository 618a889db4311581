"""Pure parsers of vmrun's and vmware-vdiskmanager's output and of VMDK descriptors
(see docs/facts/vmware.md)."""

from __future__ import annotations

import re

SECTOR = 512
EXTENT = re.compile(r"^(?:RW|RDONLY|NOACCESS)\s+(\d+)\s+\w+", re.MULTILINE)


def lines(text: str) -> list[str]:
    """Output lines, Windows line ends included."""
    return text.replace("\r\n", "\n").split("\n")


def parse_list(text: str) -> list[str]:
    """`vmrun list`: the .vmx paths after the `Total running VMs: N` line."""
    out = []
    for line in lines(text):
        line = line.strip()
        if not line or line.startswith("Total running VMs:"):
            continue
        out.append(line)
    return out


def error_of(stdout: str, returncode: int) -> str | None:
    """vmrun's failure message: it prints `Error: ...` on stdout, usually with exit 255
    but sometimes with exit 0, so any `Error:` line is a failure."""
    found = [line.strip() for line in lines(stdout) if line.strip().startswith("Error:")]
    if found:
        return " ".join(line[len("Error:"):].strip() for line in found)
    if returncode != 0:
        return stdout.strip() or f"exit code {returncode}"
    return None


def not_powered_on(message: str) -> bool:
    """Whether a vmrun error says the VM was not running (a stop that had nothing to do)."""
    return "is not powered on" in message


def vmdk_descriptor(data: bytes) -> str | None:
    """The text descriptor of a VMDK: the file itself, or embedded in a sparse file."""
    head = data[:65536]
    at = head.find(b"# Disk DescriptorFile")
    if at < 0:
        return None
    end = head.find(b"\0", at)
    return head[at:end if end >= 0 else len(head)].decode("utf-8", "replace")


def vmdk_capacity(data: bytes) -> int | None:
    """A disk's size in bytes: the sum of its extents' sectors (as vagrant-vmware-desktop
    reads it)."""
    text = vmdk_descriptor(data)
    if text is None:
        return None
    sectors = [int(n) for n in EXTENT.findall(text)]
    return sum(sectors) * SECTOR if sectors else None


def vmdk_extent_files(data: bytes) -> list[str]:
    """The extent file names a descriptor lists (relative to its folder)."""
    text = vmdk_descriptor(data) or ""
    return re.findall(r'^(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]+)"', text, re.MULTILINE)


def size_argument(size: int) -> str:
    """vmware-vdiskmanager's size argument: whole MB (MiB), rounded up."""
    mib = 1024 * 1024
    return f"{-(-size // mib)}MB"
