"""The Connection protocol every provider uses: run an argv, read and write files."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from decl.errors import ProviderError


@dataclass(frozen=True)
class CommandResult:
    """What a command did: exit code and its two streams, kept apart."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """Exit code 0."""
        return self.returncode == 0

    @property
    def out(self) -> str:
        """stdout as text (UTF-8, undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        """stderr as text."""
        return self.stderr.decode("utf-8", "replace")

    def check(self, what: str) -> CommandResult:
        """Raise ProviderError naming `what` and the tool's own words unless exit code 0."""
        if not self.ok:
            words = (self.err.strip() or self.out.strip() or "no output").splitlines()
            tail = "\n".join(words[-6:])
            raise ProviderError(f"{what} failed (exit code {self.returncode}): {tail}")
        return self


class CommandTimeout(ProviderError):
    """A command ran longer than its timeout and was killed."""


class Connection(abc.ABC):
    """A host decl acts on. Commands are argv lists: never strings built from input."""

    host: str = "local"
    shell: str = "posix"
    is_local: bool = True
    # The manifest's Host model for this host (None for `local` when not declared).
    config: Any = None

    @abc.abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run a command and wait for it; a timeout kills it and raises CommandTimeout."""

    def run_streaming(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run a command and call `on_line` with each line of its output (stdout and stderr)
        as it comes, for progress. The default waits for the command and replays its lines;
        connections that can stream override it."""
        result = self.run(argv, timeout=timeout, env=env, cwd=cwd)
        for line in (result.out + result.err).splitlines():
            on_line(line)
        return result

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """Read a whole file; FileNotFoundError when absent."""

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write a file atomically (temporary file in the same directory, then rename)."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a path exists on the host."""

    @abc.abstractmethod
    def makedirs(self, path: str) -> None:
        """Create a directory and its parents (no error when it exists)."""

    @abc.abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file (no error when absent)."""

    @abc.abstractmethod
    def expand_user(self, path: str) -> str:
        """Expand a leading ~ the way the host's user would."""

    def which(self, program: str) -> str | None:
        """Full path of a program on the host's PATH, or None."""
        if self.shell == "powershell":
            from decl.connections.quoting import powershell_quote

            script = (f"(Get-Command -Name {powershell_quote(program)} "
                      "-ErrorAction SilentlyContinue).Source")
            result = self.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
                               script])
        else:
            result = self.run(["sh", "-c", 'command -v "$1"', "sh", program])
        path = result.out.strip()
        return path or None if result.ok else None

    def upload(self, local_path: str, remote_path: str) -> None:
        """Copy a local file to the host."""
        with open(local_path, "rb") as handle:
            self.write_file(remote_path, handle.read())

    def download(self, remote_path: str, local_path: str) -> None:
        """Copy a file from the host to this machine."""
        data = self.read_file(remote_path)
        with open(local_path, "wb") as handle:
            handle.write(data)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class LineSplitter:
    """Bytes in, whole lines out (to a callback); the last partial line on flush()."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        """Add bytes; call on_line for every line they complete (CR or LF ends a line)."""
        self._buffer += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.on_line(line.decode("utf-8", "replace"))

    def flush(self) -> None:
        """Pass on what is left."""
        if self._buffer:
            line, self._buffer = self._buffer, b""
            self.on_line(line.decode("utf-8", "replace"))
