"""Pure parsers of utmctl's and osascript's output (facts and sources: docs/facts/utm.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

HEADER = "UUID                                 Status   Name"
STATES = ("stopped", "starting", "started", "pausing", "paused", "resuming", "stopping",
          "unknown")
_ROW = re.compile(r"^(?P<uuid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                  r"[0-9A-Fa-f]{12}) (?P<status>[a-z]+) *(?P<name>.*)$")
_OSA_ERROR = re.compile(r"^(?:\S*?:)?\d+:\d+: (?P<kind>execution|syntax) error: "
                        r"(?:(?P<app>.+?) got an error: )?(?P<message>.*?)\s*\((?P<number>-?\d+)\)"
                        r"\s*$", re.DOTALL)
NO_SESSION_CODES = ("-1743", "-600", "-609", "-1712")
NO_SESSION_HINT = ("UTM can only be scripted from a logged-in GUI session on the Mac: utmctl "
                   "and osascript do not work over SSH or before someone logs in")


@dataclass(frozen=True)
class UtmRow:
    """One line of `utmctl list`."""

    uuid: str
    status: str
    name: str


@dataclass(frozen=True)
class Constant:
    """An AppleScript enumeration constant in a result (`shared`, `qemu`, `VirtIO`...)."""

    name: str


def parse_list(text: str) -> list[UtmRow]:
    """`utmctl list`: the header, then `<UUID> <status padded to 8> <name>` per VM.

    The name is everything after the padded status column (names may hold spaces)."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.rstrip() == HEADER.rstrip():
            continue
        match = _ROW.match(line)
        if match is None:
            raise ValueError(f"unexpected line in utmctl list: {line!r}")
        status = match["status"]
        # The status is padded to 8 columns, then one space: the name starts at column 46.
        name = line[46:] if len(status) <= 8 and len(line) >= 46 else match["name"]
        rows.append(UtmRow(match["uuid"].upper(), status, name))
    return rows


def event_failure(stderr: str) -> str | None:
    """What went wrong when utmctl printed an Apple-event failure (it still exits 0), or
    None when stderr holds none. The reason names the GUI-session limit when it applies."""
    text = stderr.strip()
    # As vagrant_utm does: `Error` or `OSStatus error` anywhere on stderr is a failure.
    if not text or ("Error" not in text and "OSStatus error" not in text):
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = " ".join(line for line in lines if not line.startswith("NOTE:"))
    if any(code in text for code in NO_SESSION_CODES) or "SSH" in text:
        return f"{detail} ({NO_SESSION_HINT})"
    return detail


@dataclass(frozen=True)
class OsaError:
    """An error osascript printed."""

    kind: str
    app: str | None
    message: str
    number: int

    def reason(self) -> str:
        """A message for people (with the GUI-session hint where it applies)."""
        who = f"{self.app}: " if self.app else ""
        text = f"{who}{self.message} ({self.number})"
        if str(self.number) in NO_SESSION_CODES:
            text += f" ({NO_SESSION_HINT})"
        return text


def parse_osa_error(stderr: str) -> OsaError | None:
    """`S:E: execution error: UTM got an error: MESSAGE (N)` -> OsaError, else None."""
    match = _OSA_ERROR.match(stderr.strip())
    if match is None:
        return None
    return OsaError(match["kind"], match["app"], match["message"], int(match["number"]))


class _Reader:
    """AppleScript values in source form (`osascript -s s`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> ValueError:
        return ValueError(f"{what} at offset {self.pos} of osascript's result")

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def value(self) -> Any:
        self.ws()
        if self.pos >= len(self.text):
            raise self.error("a value is missing")
        char = self.text[self.pos]
        if char == '"':
            return self.string()
        if char == "{":
            return self.braces()
        if char == "-" or char.isdigit():
            match = re.compile(r"-?\d+(?:\.\d+)?(?:E[+-]?\d+)?").match(self.text, self.pos)
            if match is None:
                raise self.error("a bad number")
            self.pos = match.end()
            number = match.group()
            return float(number) if any(c in number for c in ".E") else int(number)
        word = self.words()
        if not word:
            raise self.error(f"an unexpected {char!r}")
        if word == "true":
            return True
        if word == "false":
            return False
        if word == "missing value":
            return None
        if word in ("file", "alias", "POSIX file"):
            return self.value()
        if word.startswith("virtual machine id"):
            ident = self.value()
            self.ws()
            if self.text.startswith("of application", self.pos):
                self.pos += len("of application")
                self.value()
            return {"virtual machine id": ident}
        return Constant(word)

    def words(self) -> str:
        """A run of words (multi-word terms), up to a delimiter or a string."""
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?: [A-Za-z_][A-Za-z0-9_]*)*").match(
            self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    def string(self) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.error("an unterminated string")

    def braces(self) -> Any:
        self.pos += 1
        self.ws()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return []
        start = self.pos
        key = self.words()
        self.ws()
        is_record = bool(key) and self.text.startswith(":", self.pos)
        self.pos = start
        if is_record:
            record: dict[str, Any] = {}
            while True:
                self.ws()
                key = self.words()
                self.ws()
                if not key or not self.text.startswith(":", self.pos):
                    raise self.error("a record key without ':'")
                self.pos += 1
                record[key] = self.value()
                self.ws()
                if self.text.startswith("}", self.pos):
                    self.pos += 1
                    return record
                if not self.text.startswith(",", self.pos):
                    raise self.error("a record without ',' or '}'")
                self.pos += 1
        items = []
        while True:
            items.append(self.value())
            self.ws()
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return items
            if not self.text.startswith(",", self.pos):
                raise self.error("a list without ',' or '}'")
            self.pos += 1


def parse_value(text: str) -> Any:
    """One AppleScript value in source form: records become dicts keyed by their terms
    ("cpu cores"), lists lists, constants Constant; ValueError on anything else."""
    reader = _Reader(text.strip())
    value = reader.value()
    reader.ws()
    if reader.pos != len(reader.text):
        raise reader.error("text after the value")
    return value
