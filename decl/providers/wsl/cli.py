"""Run wsl.exe on a host through its Connection: management commands and in-distro ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from decl.connections.base import CommandResult, Connection
from decl.errors import ProviderError
from decl.providers.wsl.output import (
    ListedDistro,
    decode,
    is_no_distributions,
    parse_error,
    parse_list_verbose,
)

PROGRAM = "wsl.exe"
LIST_TIMEOUT = 120.0
# Import, install, export and version conversion copy whole file systems.
LONG_TIMEOUT = 3600.0


@dataclass(frozen=True)
class WslOutput:
    """A management command's exit code and its decoded output (stdout, then stderr)."""

    returncode: int
    text: str
    errors: str

    @property
    def ok(self) -> bool:
        """Exit code 0."""
        return self.returncode == 0


class WslCli:
    """wsl.exe on one host."""

    def __init__(self, conn: Connection, program: str = PROGRAM) -> None:
        self.conn = conn
        self.program = program

    def run(self, args: Sequence[str], timeout: float | None = LIST_TIMEOUT) -> WslOutput:
        """Run a management command (`--list`, `--import`...) and decode what it printed."""
        result = self.conn.run([self.program, *args], timeout=timeout)
        return WslOutput(result.returncode, decode(result.stdout), decode(result.stderr))

    def manage(self, args: Sequence[str], what: str, timeout: float | None = LONG_TIMEOUT) -> str:
        """Run a management command; raise ProviderError with wsl.exe's words when it fails."""
        out = self.run(args, timeout=timeout)
        if not out.ok:
            message = parse_error(out.text if out.text.strip() else out.errors)
            raise ProviderError(f"{what}: wsl.exe {args[0]} failed (exit code "
                                f"{out.returncode}): {message}")
        return out.text

    def list_verbose(self) -> list[ListedDistro]:
        """Every registered distro (`wsl.exe -l -v`); [] when none is installed."""
        out = self.run(["--list", "--verbose"])
        if out.ok:
            return parse_list_verbose(out.text)
        if is_no_distributions(out.returncode, out.text):
            return []
        message = parse_error(out.text if out.text.strip() else out.errors)
        raise ProviderError(f"wsl.exe --list --verbose failed (exit code {out.returncode}): "
                            f"{message}")

    def exec(
        self,
        distro: str,
        argv: Sequence[str],
        *,
        user: str = "root",
        input: bytes | None = None,
        timeout: float | None = LIST_TIMEOUT,
    ) -> CommandResult:
        """Run a Linux command in a distro (`wsl.exe -d NAME -u USER --exec ...`): raw bytes."""
        return self.conn.run([self.program, "--distribution", distro, "--user", user, "--exec",
                              *argv], input=input, timeout=timeout)

    def exec_checked(self, distro: str, argv: Sequence[str], what: str, *,
                     input: bytes | None = None) -> bytes:
        """exec() that raises ProviderError naming the distro when the command fails.

        When wsl.exe itself fails (a missing distro...), its UTF-16 error is decoded.
        """
        result = self.exec(distro, argv, input=input)
        if result.returncode != 0:
            stdout = decode(result.stdout)
            if "Wsl/" in stdout:
                detail = str(parse_error(stdout))
            else:
                detail = (result.err.strip() or stdout.strip() or "no output").splitlines()[-1]
            raise ProviderError(f"{what} failed in distro {distro!r} (exit code "
                                f"{result.returncode}): {detail}")
        return result.stdout
