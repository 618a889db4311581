"""The local host: subprocess with argv lists, LANG=C, timeouts, atomic writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence

from decl.connections.base import CommandResult, CommandTimeout, Connection, LineSplitter
from decl.connections.reaper import run_watched
from decl.connections.secret_env import check_command_line
from decl.files import write_atomic


class LocalConnection(Connection):
    """Runs on this machine."""

    is_local = True

    def __init__(self, host: str = "local", shell: str = "posix") -> None:
        self.host = host
        self.shell = shell

    def run(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run argv directly (no shell) with LANG=C unless the caller overrides it."""
        check_command_line(self.host, argv)
        full_env = {**os.environ, "LANG": "C", "LC_ALL": "C", **(env or {})}
        try:
            # A session (process group on Windows) of its own: Ctrl-C on the terminal reaches
            # decl, which lets running changes finish, instead of killing the tools half-way.
            # The reaper kills the tool if decl dies first.
            done = run_watched(list(argv), input=input, timeout=timeout, env=full_env, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise CommandTimeout(f"{argv[0]} did not finish within {timeout} s and was killed") \
                from None
        except FileNotFoundError:
            return CommandResult(tuple(argv), 127, b"", f"{argv[0]}: command not found".encode())
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    def run_streaming(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run argv, calling on_line with each output line as the tool writes it."""
        check_command_line(self.host, argv)
        full_env = {**os.environ, "LANG": "C", "LC_ALL": "C", **(env or {})}
        from decl.connections.reaper import REAPER, kill_group
        from decl.platforms import current_system, spawn_options

        system = current_system()
        try:
            # Its own session or group, as run() does; listed with the reaper while it runs.
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=full_env, cwd=cwd,
                                    **spawn_options(system))
        except FileNotFoundError:
            return CommandResult(tuple(argv), 127, b"", f"{argv[0]}: command not found".encode())
        REAPER.started(proc.pid, list(argv))
        guard = threading.Lock()

        def said(line: str) -> None:
            with guard:
                on_line(line)

        chunks: dict[str, list[bytes]] = {"out": [], "err": []}

        def pump(stream: object, name: str) -> None:
            splitter = LineSplitter(said)
            for data in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
                chunks[name].append(data)
                splitter.feed(data)
            splitter.flush()

        readers = [threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True)]
        for reader in readers:
            reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, system)
            proc.kill()
            proc.wait()
            raise CommandTimeout(f"{argv[0]} did not finish within {timeout} s and was killed") \
                from None
        except BaseException:
            kill_group(proc.pid, system)
            proc.kill()
            proc.wait()
            raise
        finally:
            REAPER.ended(proc.pid)
            for reader in readers:
                reader.join(timeout=5)
        return CommandResult(tuple(argv), proc.returncode, b"".join(chunks["out"]),
                             b"".join(chunks["err"]))

    def read_file(self, path: str) -> bytes:
        """Read a file."""
        with open(path, "rb") as handle:
            return handle.read()

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write atomically: temp file beside the target, fsync, rename."""
        write_atomic(path, data, mode)

    def exists(self, path: str) -> bool:
        """os.path.lexists."""
        return os.path.lexists(path)

    def makedirs(self, path: str) -> None:
        """os.makedirs(exist_ok=True)."""
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> None:
        """Remove a file or an empty directory; absent is fine."""
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def expand_user(self, path: str) -> str:
        """os.path.expanduser."""
        return os.path.expanduser(path)

    def which(self, program: str) -> str | None:
        """shutil.which (PATHEXT on Windows), else the tool's install location on this OS."""
        found = shutil.which(program)
        if found:
            return found
        from decl.platforms import TOOL_LOCATIONS, find_local_tool

        return find_local_tool(program) if program in TOOL_LOCATIONS else None
