"""Pure parsers of wsl.exe output: its encodings, `wsl -l -v`, errors and `--version`.

wsl.exe writes UTF-16LE (with or without a byte-order mark) unless `WSL_UTF8=1`, when it
writes UTF-8; lines end with CRLF. Errors go to stdout as `<message>` then
`Error code: Wsl/...`, with exit code -1 (255 through interop, 4294967295 on Windows).
Nothing here relies on the header words of `wsl -l -v`, which may be translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ERROR_CODE = re.compile(r"\b(Wsl/[A-Za-z0-9_./-]+)")
_VERSION = re.compile(r"\b(\d+\.\d+\.\d+(?:\.\d+)?)\b")
# What `wsl -l -v` prints in its STATE column, mapped to decl's run states.
STATES = {"Running": "running", "Stopped": "stopped"}
# States in which a distro is busy and must not be touched.
TRANSIENT_STATES = frozenset({"installing", "uninstalling", "converting", "exporting"})


def looks_utf16le(data: bytes) -> bool:
    """Whether bytes without a BOM look like UTF-16LE text (ASCII with NULs in odd places)."""
    sample = data[:512]
    if len(sample) < 2:
        return False
    odd = sample[1::2]
    even = sample[0::2]
    return odd.count(0) * 2 >= len(odd) and even.count(0) * 4 < len(even)


def decode(data: bytes) -> str:
    """wsl.exe management output as text with `\\n` line ends, whatever its encoding."""
    if data.startswith(b"\xff\xfe"):
        text = data[2:].decode("utf-16-le", "replace")
    elif data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", "replace")
    elif looks_utf16le(data):
        text = data[: len(data) - len(data) % 2].decode("utf-16-le", "replace")
    else:
        text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


@dataclass(frozen=True)
class ListedDistro:
    """One row of `wsl -l -v`."""

    name: str
    state: str  # decl's word: running, stopped, or the lower-cased WSL word
    version: int
    default: bool


def parse_list_verbose(text: str) -> list[ListedDistro]:
    """Rows of `wsl -l -v`: `<* or space> NAME STATE VERSION`; the header is skipped.

    The header is told apart by its last column not being a number, not by its words.
    """
    distros: list[ListedDistro] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        marker, rest = line[:1], line[1:]
        tokens = rest.split()
        if marker not in ("*", " ") or len(tokens) != 3 or not tokens[2].isdigit():
            continue
        name, state, version = tokens
        distros.append(ListedDistro(
            name=name, state=STATES.get(state, state.lower()), version=int(version),
            default=marker == "*",
        ))
    return distros


@dataclass(frozen=True)
class WslMessage:
    """An error printed by wsl.exe: its words and its `Wsl/...` code (None when absent)."""

    message: str
    code: str | None

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" if self.code else self.message


def parse_error(text: str) -> WslMessage:
    """Split wsl.exe's error output into its message and `Wsl/...` error code."""
    code = None
    lines: list[str] = []
    for line in text.splitlines():
        match = _ERROR_CODE.search(line)
        if match and code is None:
            code = match.group(1)
            continue
        if line.strip():
            lines.append(line.strip())
    return WslMessage(" ".join(lines) or "no output", code)


def is_no_distributions(returncode: int, text: str) -> bool:
    """Whether a failed `wsl -l -v` only says that no distro is installed.

    That message (WSL_E_DEFAULT_DISTRO_NOT_FOUND) is printed without an error-code line,
    which is how it is recognised without reading its (translatable) words.
    """
    return returncode != 0 and bool(text.strip()) and _ERROR_CODE.search(text) is None


def parse_version(text: str) -> str | None:
    """The WSL version from the first line of `wsl --version` (`WSL version: 2.3.26.0`)."""
    for line in text.splitlines():
        if line.strip():
            match = _VERSION.search(line)
            return match.group(1) if match else None
    return None
