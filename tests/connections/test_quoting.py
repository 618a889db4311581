"""Command lines for the remote shell: POSIX (shlex) and PowerShell literal quoting."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from decl.connections.quoting import (
    QuotingError,
    command_line,
    posix_command,
    powershell_command,
    powershell_quote,
)

HOSTILE = [
    "plain",
    "with space",
    "it's",
    'double "quoted"',
    "$(touch /tmp/decl-canary)",
    "`touch /tmp/decl-canary`",
    "a; rm -rf /",
    "line1\nline2",
    "$HOME ${PATH} %PATH%",
    "tab\there",
    "* ? [a-z] ~",
    "back\\slash",
    "",
    "-n",
    "\u2018curly\u2019 \u201alow\u201b",
    "unicodé ✓",
]


def test_posix_is_shlex_join():
    assert posix_command(["echo", "a b", "it's"]) == shlex.join(["echo", "a b", "it's"])


def test_posix_round_trips_every_hostile_value():
    line = posix_command(["printf", "%s\\0", *HOSTILE])
    assert shlex.split(line) == ["printf", "%s\\0", *HOSTILE]


def test_posix_hostile_values_reach_a_real_shell_intact(tmp_path):
    canary = tmp_path / "canary"
    values = [*HOSTILE, f"$(touch {canary})", f"`touch {canary}`", f"; touch {canary}"]
    line = posix_command(["printf", "%s\\0", *values])
    done = subprocess.run(["sh", "-c", line], capture_output=True, check=True)
    assert done.stdout.split(b"\0")[:-1] == [v.encode() for v in values]
    assert not canary.exists()


def test_posix_cwd_and_env_are_quoted(tmp_path):
    odd = tmp_path / "dir with 'quote' $(x)"
    odd.mkdir()
    line = posix_command(["sh", "-c", 'pwd; printf "%s" "$V"'], env={"V": "a'b $(c)"},
                         cwd=str(odd))
    assert line.startswith(f"cd {shlex.quote(str(odd))} && V=")
    done = subprocess.run(["sh", "-c", line], capture_output=True, check=True, text=True)
    assert done.stdout == f"{odd}\na'b $(c)"


@pytest.mark.parametrize("name", ["A B", "1X", "X;Y", "A=B", "$(x)", ""])
def test_bad_environment_names_are_refused(name):
    with pytest.raises(QuotingError, match="invalid environment variable name"):
        posix_command(["true"], env={name: "v"})
    with pytest.raises(QuotingError, match="invalid environment variable name"):
        powershell_command(["true"], env={name: "v"})


def test_nul_bytes_and_strings_are_refused():
    with pytest.raises(QuotingError, match="NUL"):
        posix_command(["echo", "a\0b"])
    with pytest.raises(QuotingError, match="NUL"):
        powershell_command(["echo", "a\0b"])
    with pytest.raises(QuotingError, match="argv list"):
        posix_command("echo hi")  # type: ignore[arg-type]
    with pytest.raises(QuotingError, match="empty"):
        posix_command([])


def test_powershell_contract():
    assert powershell_command(["wsl.exe", "--list", "--verbose"]) == (
        "& 'wsl.exe' '--list' '--verbose'; exit $LASTEXITCODE"
    )
    assert powershell_command(["x", "it's"]) == "& 'x' 'it''s'; exit $LASTEXITCODE"


@pytest.mark.parametrize("quote", ["'", "\u2018", "\u2019", "\u201a", "\u201b"])
def test_powershell_doubles_every_single_quote_variant(quote):
    assert powershell_quote(f"a{quote}b") == f"'a{quote}{quote}b'"


def test_powershell_leaves_dollar_backtick_and_double_quotes_literal():
    value = '$(Remove-Item C:\\) `n "x" ; & y'
    assert powershell_quote(value) == "'" + value + "'"


def test_powershell_cwd_and_env():
    line = powershell_command(["prog"], env={"A": "it's"}, cwd="C:\\a b")
    assert line == ("Set-Location -LiteralPath 'C:\\a b'; $env:A = 'it''s'; "
                    "& 'prog'; exit $LASTEXITCODE")


def test_unknown_shell():
    with pytest.raises(QuotingError, match="unknown shell"):
        command_line(["x"], "cmd")
