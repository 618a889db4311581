"""What decl keeps inside a distro: the ownership marks file and `[user] default` in
/etc/wsl.conf. Pure functions, plus the fixed shell scripts run in the distro.

The scripts never contain a value from the manifest: paths come as positional arguments
and file contents on stdin.
"""

from __future__ import annotations

import json
import re
from typing import Any

from decl.core.resource import MARK_ADDRESS, MARK_PROJECT, MARK_SPEC_HASH, Marks

MARKS_PATH = "/etc/decl.json"
WSL_CONF = "/etc/wsl.conf"
SEPARATOR = "\x1e"

# Prints each file named in "$@" after a record separator line (nothing when it is absent).
READ_SCRIPT = 'for f in "$@"; do printf "\\036\\n"; cat -- "$f" 2>/dev/null; done; exit 0'
# Writes stdin to "$1" atomically (temporary file, then rename), as root.
WRITE_SCRIPT = ('umask 022; mkdir -p -- "$(dirname -- "$1")" && cat > "$1.decl-tmp" '
                '&& mv -f -- "$1.decl-tmp" "$1"')
# Leaves a process behind so that WSL keeps the distro running after wsl.exe returns.
KEEP_ALIVE_SCRIPT = "nohup sleep 2147483647 >/dev/null 2>&1 </dev/null &"


def split_read_output(data: bytes, count: int) -> list[str | None]:
    """The contents of the `count` files READ_SCRIPT printed (None for absent or empty)."""
    text = data.decode("utf-8", "replace")
    chunks = text.split(SEPARATOR + "\n")[1:]
    out: list[str | None] = [chunk if chunk.strip() else None for chunk in chunks]
    out += [None] * (count - len(out))
    return out[:count]


def marks_document(marks: Marks, created: dict[str, Any]) -> bytes:
    """The marks file: the three marks, and how the distro was made (not observable)."""
    body = {**marks.as_labels(), "created": created}
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def parse_marks(text: str | None) -> tuple[Marks | None, dict[str, Any]]:
    """Marks and creation record from the marks file; (None, {}) when absent or unreadable."""
    if not text:
        return None, {}
    try:
        body = json.loads(text)
    except ValueError:
        return None, {}
    if not isinstance(body, dict):
        return None, {}
    labels = {key: str(body[key]) for key in (MARK_PROJECT, MARK_ADDRESS, MARK_SPEC_HASH)
              if key in body}
    created = body.get("created")
    return Marks.from_labels(labels), created if isinstance(created, dict) else {}


_SECTION = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$")


def default_user(conf: str | None) -> str | None:
    """`[user] default=` from wsl.conf text, or None."""
    section = None
    found = None
    for line in (conf or "").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group(1).lower()
            continue
        pair = _KEY.match(line)
        if pair and section == "user" and pair.group(1).lower() == "default":
            found = pair.group(2).strip().strip('"') or None
    return found


def with_default_user(conf: str | None, user: str) -> str:
    """wsl.conf text with `[user] default=USER`, every other line kept as it was."""
    lines = (conf or "").splitlines()
    section = None
    user_section_end: int | None = None
    replaced = False
    out: list[str] = []
    for line in lines:
        header = _SECTION.match(line)
        if header:
            if section == "user" and not replaced:
                user_section_end = len(out)
            section = header.group(1).lower()
            out.append(line)
            continue
        pair = _KEY.match(line)
        if pair and section == "user" and pair.group(1).lower() == "default":
            if not replaced:
                out.append(f"default={user}")
                replaced = True
            continue
        out.append(line)
    if not replaced:
        if section == "user":
            out.append(f"default={user}")
        elif user_section_end is not None:
            out.insert(user_section_end, f"default={user}")
        else:
            if out and out[-1].strip():
                out.append("")
            out += ["[user]", f"default={user}"]
    return "\n".join(out) + "\n"
