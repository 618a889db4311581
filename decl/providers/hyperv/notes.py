"""Ownership marks kept in a Hyper-V VM's Notes: one line decl owns, the rest left as it was.

    decl:project=lab address=vm.web spec-hash=<hex> created=<base64 JSON>

`created` records what Hyper-V cannot report back: the disks as the manifest described them,
the files decl made (deleted with the VM), the disk mode and folder. The line holds no
double quote, so it passes through PowerShell literals untouched.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from decl.core.resource import Marks

_LINE = re.compile(
    r"^decl:project=(?P<project>\S*) address=(?P<address>\S*) spec-hash=(?P<hash>\S*)"
    r"(?: created=(?P<created>\S*))?\s*$")


def marks_line(marks: Marks, created: dict[str, Any]) -> str:
    """The Notes line for these marks and creation record."""
    blob = base64.b64encode(json.dumps(created, sort_keys=True,
                                       separators=(",", ":")).encode()).decode()
    return (f"decl:project={marks.project} address={marks.address} "
            f"spec-hash={marks.spec_hash} created={blob}")


def parse_notes(notes: str | None) -> tuple[Marks | None, dict[str, Any], str]:
    """(marks, creation record, the user's own notes) from a VM's Notes."""
    marks = None
    created: dict[str, Any] = {}
    others: list[str] = []
    for line in (notes or "").replace("\r\n", "\n").split("\n"):
        match = _LINE.match(line.strip())
        if match and marks is None:
            marks = Marks(match["project"], match["address"], match["hash"])
            try:
                record = json.loads(base64.b64decode(match["created"] or "", validate=True))
            except (ValueError, TypeError):
                record = {}
            created = record if isinstance(record, dict) else {}
            continue
        others.append(line)
    while others and not others[-1].strip():
        others.pop()
    return marks, created, "\n".join(others)


def with_marks(user_notes: str, marks: Marks, created: dict[str, Any]) -> str:
    """Notes holding the user's text (kept) and decl's line (last)."""
    line = marks_line(marks, created)
    return f"{user_notes}\n{line}" if user_notes.strip() else line
