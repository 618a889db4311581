"""A .vmx file read and written the way decl needs: every line decl does not manage is kept,
in its place and as it was.

Syntax: `key = "value"` one a line; keys compare without case; `#` starts a comment line.
Characters that cannot stand in a value (`"`, `|`, control characters) are written `|XX`
with two hex digits, as VMware does (a newline in an annotation is `|0A`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PAIR = re.compile(r'^\s*(?P<key>[A-Za-z0-9_.:\-]+)\s*=\s*"(?P<value>.*)"\s*$')
_BARE = re.compile(r'^\s*(?P<key>[A-Za-z0-9_.:\-]+)\s*=\s*(?P<value>\S*)\s*$')
_ESCAPE = re.compile(r"\|([0-9A-Fa-f]{2})")


def decode(raw: str) -> str:
    """A value as written in the file -> its text."""
    return _ESCAPE.sub(lambda m: chr(int(m[1], 16)), raw)


def encode(text: str) -> str:
    """Text -> a value as written in the file."""
    out = []
    for char in text:
        if char in '"|' or ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"|{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


@dataclass
class Vmx:
    """The lines of a .vmx file; `get`/`set`/`remove` change only the lines they name."""

    lines: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Vmx:
        """Read a .vmx's text."""
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(lines)

    @staticmethod
    def _key(line: str) -> str | None:
        match = _PAIR.match(line) or _BARE.match(line)
        if match is None or line.lstrip().startswith("#"):
            return None
        return match["key"]

    def _find(self, key: str) -> list[int]:
        wanted = key.lower()
        return [i for i, line in enumerate(self.lines)
                if (self._key(line) or "").lower() == wanted]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The decoded value of `key` (its last occurrence wins, as in VMware), or default."""
        found = self._find(key)
        if not found:
            return default
        line = self.lines[found[-1]]
        match = _PAIR.match(line) or _BARE.match(line)
        assert match is not None
        return decode(match["value"])

    def keys(self) -> list[str]:
        """Every key, in file order."""
        return [k for k in (self._key(line) for line in self.lines) if k is not None]

    def set(self, key: str, value: str) -> None:
        """Set `key` in place (its first line; duplicates dropped), or append it."""
        line = f'{key} = "{encode(value)}"'
        found = self._find(key)
        if not found:
            self.lines.append(line)
            return
        self.lines[found[0]] = line
        for index in reversed(found[1:]):
            del self.lines[index]

    def remove(self, key: str) -> None:
        """Drop every line of `key`."""
        for index in reversed(self._find(key)):
            del self.lines[index]

    def remove_prefix(self, prefix: str) -> None:
        """Drop every key that starts with `prefix` (without case)."""
        wanted = prefix.lower()
        self.lines = [line for line in self.lines
                      if not (self._key(line) or "").lower().startswith(wanted)]

    def render(self) -> str:
        """The file's text."""
        return "".join(line + "\n" for line in self.lines)
