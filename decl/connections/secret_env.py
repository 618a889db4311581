"""Secrets to tools without their command line: through the environment or a file of mode 0600.

A command line is readable by every user of the host (/proc/PID/cmdline, `ps`, Windows'
process list), and an SSH command line is also in the remote sshd's logs at high verbosity.
Every provider hands secret-bearing values to a tool through this module:

- `run_with_env(conn, argv, env)`: locally, the values go in the tool's process environment
  (readable by the user only: /proc/PID/environ is mode 0400). On a remote POSIX host, the
  variables that hold a secret are written to a 0600 file that a small `sh` wrapper sources
  and deletes before it execs the tool; the others stay on the command line. On a PowerShell
  host the secret ones are refused (no such file mechanism yet) instead of being leaked.
- `private_file(conn, data)`: a temporary 0600 file on the host holding `data` (a
  requirements list, user data...), removed on exit, for tools that read a file.
- `carries_secret(text)`: whether a value holds a secret this process has read
  (decl.redact.remember), in any spelling.
- `check_command_line(host, argv, env)`: the last line of defence, called by every
  connection before it starts a command: an argv element (or, where the environment goes on
  the command line, a variable) that holds a secret stops the command with a clear error
  instead of leaking it. Spellings shorter than GUARD_MIN characters are not looked for (a
  4-letter secret would stop every command that happens to contain those letters).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from decl.errors import ProviderError
from decl.redact import known_secrets

# Sourced from the 0600 file, which it deletes first: no copy outlives the tool's start.
WRAPPER = 'set -a; . "$0"; rm -f -- "$0"; set +a; exec "$@"'


def carries_secret(text: str) -> bool:
    """Whether `text` holds any spelling of a secret this process has read."""
    return known_secrets().contains(text)


GUARD_MIN = 6


def check_command_line(host: str, argv: Sequence[str],
                       env: Mapping[str, str] | None = None) -> None:
    """Raise ProviderError, naming the tool and the argument, if argv or env (when it goes
    on the command line) holds a secret this process has read."""
    forms = [form for form in known_secrets().secrets if len(form) >= GUARD_MIN]
    if not forms:
        return
    for index, item in enumerate(argv):
        if any(form in item for form in forms):
            shown = known_secrets()(item)
            shown = shown if len(shown) <= 200 else shown[:200] + "..."
            raise ProviderError(
                f"host {host}: a secret value would go on the command line of {argv[0]} "
                f"(argument {index}: {shown}), where other users of the host can read it; "
                "decl passes secrets only through the environment or a file of mode 0600, and "
                "this value has no such way: nothing was run")
    for name, value in (env or {}).items():
        if any(form in value for form in forms):
            raise ProviderError(
                f"host {host}: the variable {name} for {argv[0]} holds a secret and would go "
                "on the command line: nothing was run")


def run_with_env(conn: Any, argv: Sequence[str], env: Mapping[str, str], *,
                 timeout: float | None = None,
                 on_line: Callable[[str], None] | None = None,
                 private: Collection[str] = ()) -> Any:
    """Run argv with env, no variable holding a secret on a command line; the result.

    `private` names variables kept off a remote command line even when they hold no value
    read with secret() (an index URL may carry a password written in the manifest).
    """

    def run(command: Sequence[str], run_env: Mapping[str, str]) -> Any:
        if on_line is None:
            return conn.run(list(command), env=dict(run_env), timeout=timeout)
        return conn.run_streaming(list(command), on_line, env=dict(run_env), timeout=timeout)

    hidden = {k: v for k, v in env.items() if k in private or carries_secret(v)}
    if getattr(conn, "is_local", False) or not hidden:
        return run(argv, env)
    plain = {k: v for k, v in env.items() if k not in hidden}
    if getattr(conn, "shell", "posix") != "posix":
        raise ProviderError(f"host {conn.host}: {', '.join(sorted(hidden))} hold a secret and "
                            "would go on a PowerShell command line; nothing was run")
    body = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(hidden.items()))
    with private_file(conn, body.encode()) as path:
        return run(["sh", "-c", WRAPPER, path, *argv], plain)


@contextlib.contextmanager
def private_file(conn: Any, data: bytes, suffix: str = "") -> Iterator[str]:
    """A new file of mode 0600 holding `data` on the host of `conn`; removed on exit (also
    when a wrapper has already deleted it: that removal's error is ignored)."""
    if getattr(conn, "is_local", False):
        handle, path = tempfile.mkstemp(prefix=".decl-", suffix=suffix)  # mode 0600
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
        return
    path = f"/tmp/.decl-{uuid.uuid4().hex}{suffix}"
    conn.write_file(path, data, mode=0o600)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ProviderError):
            conn.remove(path)


def secret_arguments(argv: Sequence[str]) -> list[int]:
    """The positions of argv elements that hold a secret (to move them elsewhere)."""
    return [index for index, item in enumerate(argv) if carries_secret(item)]
