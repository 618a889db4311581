"""Pure parsers of what Xen's `xl` prints (docs/facts/xen.md has the outputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

INVALID_DOMAIN = re.compile(r"^(?P<name>.*) is an invalid domain identifier \(rc=-?\d+\)",
                            re.MULTILINE)


@dataclass(frozen=True)
class Domain:
    """One row of `xl list`."""

    name: str
    domid: int
    memory_mib: int
    vcpus: int
    flags: str  # r b p s <shutdown reason> d, '-' when unset
    seconds: float

    @property
    def state(self) -> str:
        """decl's run state: a listed domain is running unless it is shutting down or dying."""
        if "d" in self.flags[5:6] or self.flags[3:4] == "s":
            return "stopping"
        if self.flags[2:3] == "p":
            return "paused"
        return "running"


def parse_list(text: str) -> list[Domain]:
    """Domains of `xl list` (Domain-0 left out).

    Rows are `%-40s %5d %5lu %5d     FLAGS  %8.1f`; the header separates its last columns
    with tabs. Read from the right, so any name works."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("Name "):
            continue
        parts = line.rsplit(None, 5)
        if len(parts) != 6:
            continue
        name, domid, mem, vcpus, flags, seconds = parts
        if not (domid.isdigit() and mem.isdigit() and vcpus.isdigit()) or len(flags) != 6:
            continue
        try:
            elapsed = float(seconds)
        except ValueError:
            continue
        if int(domid) == 0:
            continue
        out.append(Domain(name.strip(), int(domid), int(mem), int(vcpus), flags, elapsed))
    return out


def missing_domain(stderr: str) -> bool:
    """Whether xl failed because the domain does not exist (it is gone already)."""
    return bool(INVALID_DOMAIN.search(stderr)) or "Non-exist" in stderr


def error_lines(stderr: str) -> str:
    """xl's stderr without its progress lines (`Parsing config from`, `Waiting for`)."""
    keep = [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(("Parsing config from ", "Waiting for ",
                                                      "Shutting down domain "))]
    return "\n".join(keep[-6:])
