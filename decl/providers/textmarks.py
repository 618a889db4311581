"""Ownership marks kept as one line of a VM's free-text field (Parallels' description, UTM's
notes), the rest of the text left as the user wrote it:

    decl:project=lab address=vm.web spec-hash=<hex> disks=20480,10240

Values never hold spaces (projects and addresses are checked by the manifest; the spec hash
is hex; extra values are decl's own). Extra `key=value` pairs carry what the backend cannot
report back, and say so where they are used.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from decl.core.resource import Marks

PREFIX = "decl:"
_LINE = re.compile(r"^decl:project=(?P<project>\S+) address=(?P<address>\S+) "
                   r"spec-hash=(?P<hash>\S+)(?P<extra>(?: [a-z][a-z0-9-]*=\S*)*)\s*$")
_SAFE = re.compile(r"^[A-Za-z0-9._:,/@+_-]*$")


def marks_line(marks: Marks, extra: dict[str, str] | None = None) -> str:
    """The one line that holds the marks (and decl's extra values)."""
    parts = [f"{PREFIX}project={marks.project}", f"address={marks.address}",
             f"spec-hash={marks.spec_hash}"]
    for key, value in sorted((extra or {}).items()):
        if not re.match(r"^[a-z][a-z0-9-]*$", key) or not _SAFE.match(value):
            raise ValueError(f"unsafe mark {key}={value!r}")
        parts.append(f"{key}={value}")
    for value in (marks.project, marks.address, marks.spec_hash):
        if not value or not _SAFE.match(value):
            raise ValueError(f"unsafe mark value {value!r}")
    return " ".join(parts)


def parse(text: str | None) -> tuple[Marks | None, dict[str, str], str]:
    """(marks, extra values, the user's own text) from a free-text field."""
    marks = None
    extra: dict[str, str] = {}
    others: list[str] = []
    for line in (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        match = _LINE.match(line.strip())
        if match and marks is None:
            marks = Marks(match["project"], match["address"], match["hash"])
            for pair in match["extra"].split():
                key, _, value = pair.partition("=")
                extra[key] = value
            continue
        others.append(line)
    while others and not others[-1].strip():
        others.pop()
    return marks, extra, "\n".join(others)


def with_marks(user_text: str, marks: Marks, extra: dict[str, str] | None = None) -> str:
    """The user's text (kept) followed by decl's line."""
    line = marks_line(marks, extra)
    return f"{user_text}\n{line}" if user_text.strip() else line


def digest(value: Any) -> str:
    """A short digest of a value (text as is, anything else as canonical JSON) that fits in
    the marks line: how decl records what a backend cannot report back."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True,
                                                           separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def recorded(value: str | None, wanted: Any) -> Any:
    """What to report for a recorded digest: the wanted value when the digest is its own,
    else the digest itself, marked as a record (so the plan shows a difference)."""
    if value is None:
        return None
    if wanted is not None and digest(wanted) == value:
        return wanted
    return f"(recorded {value})"
