"""Read and write a .vmx file, keeping every line decl does not manage as it was.

A .vmx is `key = "value"` lines (keys compare case-insensitively; Linux files may start
with a `#!/usr/bin/vmware` line; comments and blank lines occur). Special characters in a
value are written `|XX` (hex), as VMware writes a newline in an annotation as `|0A`.
decl changes only the keys it manages, in place, appends new ones at the end, and never
reorders or rewrites other lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ENTRY = re.compile(r'^(?P<indent>\s*)(?P<key>[^=#\s][^=]*?)\s*=\s*(?P<value>.*?)\s*$')


def decode(raw: str) -> str:
    """A stored value: surrounding quotes removed, `|XX` escapes decoded."""
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        raw = raw[1:-1]
    return re.sub(r"\|([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), raw)


def encode(value: str) -> str:
    """A value as written: `|`, `"`, `#` and control characters as `|XX`, in quotes."""
    out = []
    for char in value:
        if char in '|"#' or ord(char) < 0x20:
            out.append(f"|{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


class VmxDocument:
    """The lines of a .vmx, with case-insensitive access to its keys."""

    def __init__(self, text: str = "") -> None:
        self.newline = "\r\n" if "\r\n" in text else "\n"
        body = text.replace("\r\n", "\n")
        self.lines: list[str] = body.split("\n") if body else []
        if self.lines and self.lines[-1] == "":
            self.lines.pop()

    def _find(self, key: str) -> list[int]:
        wanted = key.lower()
        out = []
        for index, line in enumerate(self.lines):
            match = ENTRY.match(line)
            if match and match.group("key").lower() == wanted:
                out.append(index)
        return out

    def get(self, key: str, default: str | None = None) -> str | None:
        """A key's value (the last one wins, as VMware reads the file)."""
        found = self._find(key)
        if not found:
            return default
        match = ENTRY.match(self.lines[found[-1]])
        assert match is not None
        return decode(match.group("value"))

    def items(self) -> list[tuple[str, str]]:
        """Every (key, value), in file order, keys as written."""
        out = []
        for line in self.lines:
            match = ENTRY.match(line)
            if match:
                out.append((match.group("key"), decode(match.group("value"))))
        return out

    def keys_with_prefix(self, prefix: str) -> dict[str, str]:
        """Keys (lower-cased) starting with `prefix` (case-insensitive) -> values."""
        low = prefix.lower()
        return {k.lower(): v for k, v in self.items() if k.lower().startswith(low)}

    def set(self, key: str, value: str) -> None:
        """Set a key: its line is rewritten in place (keeping the key's spelling), or a
        new line is appended. Duplicate lines of the key are dropped."""
        found = self._find(key)
        if found:
            match = ENTRY.match(self.lines[found[0]])
            assert match is not None
            self.lines[found[0]] = (f"{match.group('indent')}{match.group('key')} = "
                                    f"{encode(value)}")
            for index in reversed(found[1:]):
                del self.lines[index]
        else:
            self.lines.append(f"{key} = {encode(value)}")

    def delete(self, key: str) -> None:
        """Remove every line of a key."""
        for index in reversed(self._find(key)):
            del self.lines[index]

    def delete_prefix(self, prefix: str) -> None:
        """Remove every key starting with `prefix` (case-insensitive)."""
        low = prefix.lower()
        keep = []
        for line in self.lines:
            match = ENTRY.match(line)
            if match and match.group("key").lower().startswith(low):
                continue
            keep.append(line)
        self.lines = keep

    def update(self, values: Iterable[tuple[str, str | None]]) -> None:
        """Set each (key, value); a None value deletes the key."""
        for key, value in values:
            if value is None:
                self.delete(key)
            else:
                self.set(key, value)

    def render(self) -> str:
        """The file's text, in its own line ends, with a final line end."""
        if not self.lines:
            return ""
        return self.newline.join(self.lines) + self.newline
