"""xl domain config files (xl.cfg(5)) read and written the way decl needs.

decl keeps its marks in a comment block of its own at the top of the file:

    # BEGIN decl: this block marks the domain as managed by decl; leave it as it is
    # decl.project = lab
    # decl.address = vm.web
    # decl.spec-hash = 4f0c...
    # decl.created = eyJtYWRlIjogWy4uLl19
    # END decl

and rewrites only the settings it manages; every other statement, comment and blank line
stays in its place. Syntax (libxlu): `KEY = VALUE` separated by newlines or `;`, values are
"strings" or 'strings', numbers, or [lists] that may span lines; `#` comments.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from decl.core.resource import Marks

BEGIN = "# BEGIN decl: this block marks the domain as managed by decl; leave it as it is"
END = "# END decl"
_MARK = re.compile(r"^#\s*decl\.(?P<key>[a-z-]+)\s*=\s*(?P<value>\S*)\s*$")
_START = re.compile(r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=")


class CfgError(ValueError):
    """A config file decl cannot read."""


@dataclass
class Statement:
    """One `KEY = VALUE` (its raw text, which may span lines) or other lines (key None)."""

    key: str | None
    text: str


@dataclass
class XlConfig:
    """A domain config file: decl's marks block, then the statements in file order."""

    marks: Marks | None = None
    created: dict[str, Any] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> XlConfig:
        """Read a config file's text (CfgError when a value cannot be read)."""
        config = cls()
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        index = 0
        if lines and lines[0].strip() == BEGIN:
            found: dict[str, str] = {}
            index = 1
            while index < len(lines) and lines[index].strip() != END:
                match = _MARK.match(lines[index].strip())
                if match:
                    found[match["key"]] = match["value"]
                index += 1
            index += 1
            if found.get("project"):
                config.marks = Marks(found["project"], found.get("address", ""),
                                     found.get("spec-hash", ""))
            config.created = _decode(found.get("created", ""))
        pending: list[str] = []
        depth = 0
        key: str | None = None
        for line in _split_statements(lines[index:]):
            if depth == 0:
                match = _START.match(line)
                if match is None:
                    config.statements.append(Statement(None, line))
                    continue
                key, pending = match["key"], []
            pending.append(line)
            depth += _bracket_depth(line)
            if depth <= 0:
                config.statements.append(Statement(key, "\n".join(pending)))
                depth = 0
        if depth > 0:
            raise CfgError(f"an unclosed [ in {key}")
        for statement in config.statements:
            if statement.key is not None:
                config.value(statement.key)  # fails early on what cannot be read
        return config

    def value(self, key: str) -> Any:
        """The value of `key` (str, int or list), or None when it is not set."""
        for statement in reversed(self.statements):
            if statement.key == key:
                raw = statement.text.split("=", 1)[1]
                parsed, rest = _value(_strip_comment(raw).strip(), key)
                rest = rest.strip().rstrip(";").strip()
                if rest:
                    raise CfgError(f"{key}: unexpected {rest!r} after the value")
                return parsed
        return None

    def keys(self) -> list[str]:
        """Keys set, in file order."""
        return [s.key for s in self.statements if s.key is not None]

    # -- writing ---------------------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Set `key` in place (duplicates dropped) or append it; None removes it."""
        found = [i for i, s in enumerate(self.statements) if s.key == key]
        if value is None:
            self.statements = [s for s in self.statements if s.key != key]
            return
        text = f"{key} = {format_value(value)}"
        if not found:
            self.statements.append(Statement(key, text))
            return
        self.statements[found[0]] = Statement(key, text)
        for index in reversed(found[1:]):
            del self.statements[index]

    def render(self) -> str:
        """The file's text: the marks block (when marked), then the statements."""
        out: list[str] = []
        if self.marks is not None:
            out += [BEGIN, f"# decl.project = {self.marks.project}",
                    f"# decl.address = {self.marks.address}",
                    f"# decl.spec-hash = {self.marks.spec_hash}"]
            if self.created:
                out.append(f"# decl.created = {_encode(self.created)}")
            out.append(END)
        out += [s.text for s in self.statements]
        return "".join(line + "\n" for line in out)


def format_value(value: Any) -> str:
    """A value in xl.cfg syntax; strings may hold no quote, backslash or newline."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if any(c in value for c in "\"\\\n\r"):
            raise CfgError(f"{value!r} cannot be written in an xl config (quote, backslash "
                           "or newline)")
        return f'"{value}"'
    if isinstance(value, list):
        return "[ " + ", ".join(format_value(v) for v in value) + " ]" if value else "[ ]"
    raise CfgError(f"cannot write {value!r} in an xl config")


def _encode(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data, sort_keys=True, separators=(",", ":"))
                            .encode()).decode()


def _decode(text: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.b64decode(text, validate=True)) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _split_statements(lines: list[str]) -> list[str]:
    """Lines, with `A = 1; B = 2` (statements joined by `;` on one line) split apart."""
    out: list[str] = []
    for line in lines:
        parts: list[str] = []
        current: list[str] = []
        quote = None
        depth = 0
        for position, char in enumerate(line):
            if quote:
                if char == quote:
                    quote = None
            elif char in "\"'":
                quote = char
            elif char == "#":
                current.append(line[position:])
                break
            elif char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif char == ";" and depth == 0:
                parts.append("".join(current).rstrip())
                current = []
                continue
            current.append(char)
        tail = "".join(current)
        if parts and tail.strip():
            parts.append(tail.strip())
        elif parts and tail:
            parts[-1] += tail
        out.extend(parts or [line])
    return out


def _bracket_depth(line: str) -> int:
    depth = 0
    quote = None
    for char in line:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
    return depth


def _strip_comment(text: str) -> str:
    """The text without its comments (a `#` outside a string runs to the end of its line)."""
    out = []
    quote = None
    in_comment = False
    for char in text:
        if in_comment:
            if char == "\n":
                in_comment = False
                out.append(char)
            continue
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            in_comment = True
            continue
        out.append(char)
    return "".join(out)


_NUMBER = re.compile(r"^(0x[0-9a-fA-F]+|[0-9]+)")


def _value(text: str, key: str) -> tuple[Any, str]:
    text = text.lstrip()
    if not text:
        raise CfgError(f"{key}: no value")
    if text[0] in "\"'":
        end = text.find(text[0], 1)
        if end < 0:
            raise CfgError(f"{key}: unterminated string")
        return text[1:end], text[end + 1:]
    if text[0] == "[":
        items: list[Any] = []
        rest = text[1:].lstrip()
        while True:
            if rest.startswith("]"):
                return items, rest[1:]
            item, rest = _value(rest, key)
            items.append(item)
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:].lstrip()
            elif not rest.startswith("]"):
                raise CfgError(f"{key}: expected , or ] in the list")
    match = _NUMBER.match(text)
    if match:
        return int(match[1], 0), text[match.end():]
    raise CfgError(f"{key}: cannot read {text.split()[0]!r}")


def disk_spec(target: str, vdev: str, fmt: str) -> str:
    """An xl disk spec (xl-disk-configuration(5)); `target=` goes last, as it must."""
    return f"format={fmt}, vdev={vdev}, access=rw, target={target}"


def parse_disk_spec(spec: str) -> dict[str, str]:
    """The named and positional parameters of an xl disk spec."""
    positional: list[str] = []
    named: dict[str, str] = {}
    rest = spec
    while rest:
        part, sep, tail = rest.partition(",")
        stripped = part.strip()
        if stripped.startswith("target="):
            named["target"] = rest.strip()[len("target="):]
            break
        if "=" in stripped:
            name, _, value = stripped.partition("=")
            named[name.strip()] = value.strip()
        else:
            positional.append(stripped)
        rest = tail if sep else ""
    for name, value in zip(("target", "format", "vdev", "access"), positional, strict=False):
        if value:
            named.setdefault(name, value)
    return named


def vif_bridge(spec: str) -> str:
    """The bridge a vif spec names (xenbr0 when it names none, as xl does)."""
    for part in spec.split(","):
        name, _, value = part.strip().partition("=")
        if name == "bridge":
            return value
    return "xenbr0"
