"""Turn an argv list into the one command line an SSH server hands to the remote shell.

SSH carries a command as a single string, which the remote user's shell parses. So every
argv element is quoted as a literal for that shell; nothing from a manifest is ever pasted
into a command unquoted.

`shell: posix` (sh, bash, dash, zsh)::

    shlex.join(argv)
    cd 'DIR' && shlex.join(argv)                       # with cwd
    K='V' K2='V2' shlex.join(argv)                     # with env (names checked)
    cd 'DIR' && K='V' shlex.join(argv)                 # both

(Prefix assignments rather than `env`, so that a missing program gets the shell's own
"not found" and exit code 127. SshConnection also puts LANG=C LC_ALL=C first, and a pid
marker in front: see decl.connections.ssh.)

`shell: powershell` (Windows OpenSSH with PowerShell as the default shell)::

    & 'prog' 'arg1' 'arg2'; exit $LASTEXITCODE

Every element is a PowerShell single-quoted (verbatim) literal: no `$`, backtick or
subexpression is expanded inside it. PowerShell treats the Unicode quotes U+2018, U+2019,
U+201A and U+201B as single quotes too, so each of them, like `'`, is doubled.
With cwd: `Set-Location -LiteralPath 'DIR'; ` is put in front; with env:
`$env:NAME = 'VALUE'; ` for each variable (names checked). Remote Windows commands read
their own output encoding; decl does not translate it.

NUL bytes cannot be passed in a command line by either shell and are refused.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

POWERSHELL_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class QuotingError(ValueError):
    """A value that cannot be passed safely (NUL byte, bad variable name, empty argv)."""


def _check_argv(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, (str, bytes)):
        raise QuotingError("a command must be an argv list, not a string")
    items = [str(item) for item in argv]
    if not items:
        raise QuotingError("empty command")
    for item in items:
        if "\x00" in item:
            raise QuotingError("a command argument contains a NUL byte")
    return items


def _check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name):
            raise QuotingError(f"invalid environment variable name {name!r}")
        if "\x00" in str(value):
            raise QuotingError(f"environment variable {name} contains a NUL byte")
        checked[name] = str(value)
    return checked


def posix_command(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> str:
    """The POSIX command line for argv, with optional cwd and environment."""
    items = _check_argv(argv)
    variables = _check_env(env)
    command = shlex.join(items)
    if variables:
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
        command = f"{assignments} {command}"
    if cwd is not None:
        if "\x00" in cwd:
            raise QuotingError("working directory contains a NUL byte")
        command = f"cd {shlex.quote(cwd)} && {command}"
    return command


def powershell_quote(value: str) -> str:
    """One PowerShell single-quoted literal, every kind of single quote doubled."""
    if "\x00" in value:
        raise QuotingError("a command argument contains a NUL byte")
    out = []
    for char in value:
        out.append(char * 2 if char in POWERSHELL_QUOTES else char)
    return "'" + "".join(out) + "'"


def powershell_command(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> str:
    """The PowerShell command line for argv: `& 'prog' 'a1'; exit $LASTEXITCODE`."""
    items = _check_argv(argv)
    variables = _check_env(env)
    prefix = ""
    if cwd is not None:
        prefix += f"Set-Location -LiteralPath {powershell_quote(cwd)}; "
    for name, value in variables.items():
        prefix += f"$env:{name} = {powershell_quote(value)}; "
    call = "& " + " ".join(powershell_quote(item) for item in items)
    return f"{prefix}{call}; exit $LASTEXITCODE"


def command_line(
    argv: Sequence[str],
    shell: str = "posix",
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> str:
    """The command line for `shell` ("posix" or "powershell")."""
    if shell == "posix":
        return posix_command(argv, env, cwd)
    if shell == "powershell":
        return powershell_command(argv, env, cwd)
    raise QuotingError(f"unknown shell {shell!r} (posix or powershell)")
