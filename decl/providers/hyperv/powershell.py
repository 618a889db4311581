"""PowerShell for the Hyper-V provider: literal quoting, running a script, reading its JSON.

Every value that enters a script is a single-quoted PowerShell literal (quotes doubled,
including the Unicode single quotes PowerShell also accepts), never interpolated. Scripts
contain no double quote at all: Windows PowerShell 5.1 does not escape them when it passes
an argument to a native program (as `& 'powershell.exe' ... '-Command' '<script>'` over SSH
does), so a script with one could be cut in pieces.
"""

from __future__ import annotations

import json
import re
from typing import Any

from decl.connections.base import CommandResult, Connection
from decl.connections.quoting import powershell_quote
from decl.errors import ProviderError

PROLOGUE = "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'"
SEPARATOR = "--decl--"
_CLIXML = re.compile(r"#< CLIXML.*", re.S)


def literal(value: Any) -> str:
    """A PowerShell literal: integers as digits, booleans as $true/$false, text quoted."""
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if '"' in text:
        raise ProviderError(f"{text!r} contains a double quote, which decl does not pass to "
                            "PowerShell (rename it)")
    return powershell_quote(text)


def command(name: str, *positional: str, **params: Any) -> str:
    """`Name pos -Param literal -Switch`; a value of True is a switch, None is left out."""
    parts = [name, *positional]
    for key, value in params.items():
        if value is None or value is False:
            continue
        parts.append(f"-{key}")
        if value is not True:
            parts.append(literal(value))
    return " ".join(parts)


def script(*statements: str) -> str:
    """The prologue and the statements, one per line."""
    return "\n".join([PROLOGUE, *statements])


def run(conn: Connection, exe: str, text: str, timeout: float | None = 600.0) -> CommandResult:
    """powershell.exe -NoProfile -NonInteractive -Command <script> on the host."""
    if '"' in text:
        raise ProviderError("internal error: a PowerShell script must not contain a double quote")
    return conn.run([exe, "-NoProfile", "-NonInteractive", "-Command", text], timeout=timeout)


def error_text(result: CommandResult) -> str:
    """The first line of PowerShell's error record (`Cmdlet : message`), without noise."""
    text = _CLIXML.sub("", result.err).strip() or result.out.strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return f"exit code {result.returncode}, no output"


def checked(conn: Connection, exe: str, text: str, what: str,
            timeout: float | None = 600.0) -> str:
    """Run a script; raise ProviderError naming `what` with PowerShell's words on failure."""
    result = run(conn, exe, text, timeout)
    if not result.ok:
        raise ProviderError(f"{what} failed: {error_text(result)}")
    return result.out


def parse_json_list(text: str) -> list[dict[str, Any]]:
    """ConvertTo-Json output as a list: nothing -> [], one object -> [it], an array as is."""
    text = text.strip().lstrip("\ufeff")
    if not text:
        return []
    data = json.loads(text)
    if data is None:
        return []
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    raise ValueError(f"expected a JSON object or array, got {type(data).__name__}")


def split_sections(text: str, count: int) -> list[str]:
    """Output of statements separated by `Write-Output '--decl--'` lines."""
    sections: list[list[str]] = [[]]
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() == SEPARATOR:
            sections.append([])
        else:
            sections[-1].append(line)
    out = ["\n".join(lines) for lines in sections]
    if len(out) != count:
        raise ValueError(f"expected {count} sections of output, got {len(out)}")
    return out
