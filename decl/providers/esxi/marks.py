"""decl's ownership marks as keys of a VM's .vmx file.

    guestinfo.decl.project = "lab"
    guestinfo.decl.address = "vm.web"
    guestinfo.decl.spec-hash = "<hex>"

`guestinfo.*` keys are kept by ESXi across reloads and power cycles (the guest can read
them through VMware Tools; the marks hold nothing secret).
"""

from __future__ import annotations

from decl.core.resource import Marks
from decl.providers.esxi.vmx import Vmx

PREFIX = "guestinfo.decl."
PROJECT = PREFIX + "project"
ADDRESS = PREFIX + "address"
SPEC_HASH = PREFIX + "spec-hash"


def read_marks(vmx: Vmx) -> Marks | None:
    """The marks in a .vmx, or None when it carries no decl project."""
    project = vmx.get(PROJECT)
    if not project:
        return None
    return Marks(project, vmx.get(ADDRESS) or "", vmx.get(SPEC_HASH) or "")


def write_marks(vmx: Vmx, marks: Marks) -> None:
    """Set the marks (in place when present, else at the end)."""
    vmx.set(PROJECT, marks.project)
    vmx.set(ADDRESS, marks.address)
    vmx.set(SPEC_HASH, marks.spec_hash)
