"""A lock per remote host, held over the SSH connection for a whole apply.

Two machines applying one project to the same host must not interleave. decl starts one
long-running process on the host that takes an OS lock on
`<the host's decl state dir>/locks/PROJECT.lock` and waits for its stdin to close; decl
closes it when the apply ends. If decl dies or the connection drops, sshd closes the
session, the process sees end of input and exits, and the kernel drops the lock: no stale
lock to clean up. The lock file holds the holder's description (pid, machine, start time,
command), printed to whoever finds the lock taken.

While it holds the lock, the holder also reaps: decl sends it the process group of each
command it runs on the host ("+ID" when it starts, "-ID" when it ends); at end of input it
kills the groups still running, so no tool decl started on the host outlives a decl that died.

The file is the host user's project lock (decl.engine.statedir.ProjectLock uses the same path
and the same kind of lock), so a decl running on the host itself and one reaching it over
SSH exclude each other too.

- POSIX hosts: flock(1) (util-linux) when the host has it, else perl's flock (macOS has
  perl but no flock(1)); both are flock(2).
- Windows hosts (`shell: powershell`): decl first asks the host for its state dir
  (DECL_STATE_DIR, LOCALAPPDATA, USERPROFILE, then decl.platforms.state_dir), then starts a
  PowerShell that opens `locks\\PROJECT.lock` with `[System.IO.File]::Open(path,
  'OpenOrCreate', 'ReadWrite', 'None')`: FileShare.None, so every other open of the file
  fails with a sharing violation (IOException, HResult 0x80070020) until the handle is
  closed, which Windows does when the process ends, however it ends. The holder goes into
  `locks\\PROJECT.holder` (the locked file cannot be read by anyone else), the script prints
  the ready line and reads its input to the end. A second holder's Open fails (exit 1, the
  error record on stderr): decl reads the holder file and names it. Scripts go as
  -EncodedCommand (base64 of UTF-16LE), so no quote of the holder meets Windows' command-line
  parsing. The holder does not reap on these hosts: PowerShell commands carry no process
  group decl could name (decl.connections.ssh). Facts and sources: docs/facts/windows-lock.md.
"""

from __future__ import annotations

import base64
import json
import ntpath
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from decl.connections.quoting import powershell_quote
from decl.errors import LockHeldError, ProviderError
from decl.platforms import WINDOWS, state_dir

TAKEN = "DECL-LOCK-TAKEN"
HELD = "DECL-LOCK-HELD"
ANSWER_TIMEOUT = 30.0
RELEASE_WAIT = 10.0
# How long a lock whose holder (a decl of this machine) has ended may take to drop.
ENDED_HOLDER_GRACE = 15.0

POSIX_SCRIPT = r"""
project=$1; holder=$2; method=${3:-auto}
if [ -n "${DECL_STATE_DIR:-}" ]; then state=$DECL_STATE_DIR
elif [ -n "${XDG_STATE_HOME:-}" ]; then state=$XDG_STATE_HOME/decl
elif [ "$(uname -s)" = Darwin ]; then state="$HOME/Library/Application Support/decl"
else state=$HOME/.local/state/decl
fi
reap() {
  # "+ID" / "-ID" lines: process groups of decl's commands on this host. At end of input
  # (decl finished, died, or the connection dropped) the groups still running are killed.
  groups=" "
  while IFS= read -r line; do
    case $line in
      +[0-9]*) groups="$groups${line#+} " ;;
      -[0-9]*) groups=$(printf '%s' "$groups" | sed "s/ ${line#-} / /") ;;
    esac
  done
  for group in $groups; do kill -9 "-$group" 2>/dev/null; done
}
if ! mkdir -p "$state/locks" 2>/dev/null; then
  # A read-only home: a private directory of this user's in the temporary directory.
  state="${TMPDIR:-/tmp}/decl-$(id -u)"
  (umask 077 && mkdir -p "$state/locks") || exit 3
fi
lock="$state/locks/$project.lock"
if [ "$method" != perl ] && command -v flock >/dev/null 2>&1; then
  exec 9>>"$lock" || exit 3
  if ! flock -n 9; then echo DECL-LOCK-HELD; cat "$lock"; exit 4; fi
  printf '%s' "$holder" > "$lock"
  echo DECL-LOCK-TAKEN
  reap
  : > "$lock"
  exit 0
fi
exec perl -e '
use Fcntl qw(:flock);
my ($lock, $holder) = @ARGV;
open(my $fh, ">>", $lock) or exit 3;
if (!flock($fh, LOCK_EX | LOCK_NB)) {
  print "DECL-LOCK-HELD\n";
  if (open(my $in, "<", $lock)) { local $/; my $text = <$in>; print $text if defined $text; }
  exit 4;
}
if (open(my $out, ">", $lock)) { print $out $holder; close $out; }
$| = 1;
print "DECL-LOCK-TAKEN\n";
my %groups;
while (my $line = <STDIN>) {
  if ($line =~ /^\+(\d+)$/) { $groups{$1} = 1; }
  elsif ($line =~ /^-(\d+)$/) { delete $groups{$1}; }
}
kill("KILL", -$_) for keys %groups;
if (open(my $out, ">", $lock)) { close $out; }
exit 0;
' "$lock" "$holder"
"""

# The Windows host's environment, one `NAME=value` line each (an unset variable: empty).
POWERSHELL_ENV_SCRIPT = ("'DECL_STATE_DIR=' + $env:DECL_STATE_DIR\n"
                         "'LOCALAPPDATA=' + $env:LOCALAPPDATA\n"
                         "'USERPROFILE=' + $env:USERPROFILE\n")
# Marks in the error record of a failed Open that mean "someone else has it open": the
# exception's type (FullyQualifiedErrorId, not translated) and the English message.
SHARING_VIOLATION = ("IOException", "being used by another process")


def supported(shell: str) -> bool:
    """Whether hosts of this shell get a host lock (both shells decl knows)."""
    return shell in ("posix", "powershell")


def powershell_argv(script: str) -> list[str]:
    """powershell.exe running `script`, passed as -EncodedCommand (base64 of UTF-16LE)."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded]


def windows_lock_paths(env_lines: str) -> tuple[str, str, str]:
    """(locks directory, state dir, home) from the host's answer to POWERSHELL_ENV_SCRIPT."""
    env: dict[str, str] = {}
    for line in env_lines.splitlines():
        name, sep, value = line.strip("\r").partition("=")
        if sep and value:
            env[name] = value
    home = env.get("USERPROFILE", "")
    state = state_dir(WINDOWS, env, home)
    return ntpath.join(state, "locks"), state, home


def powershell_lock_script(locks: str, project: str, holder: str) -> str:
    """The PowerShell that holds `locks\\PROJECT.lock` while its input stays open.

    Every value is a single-quoted literal (decl.connections.quoting.powershell_quote).
    """
    lock = powershell_quote(ntpath.join(locks, f"{project}.lock"))
    info = powershell_quote(ntpath.join(locks, f"{project}.holder"))
    return (
        "$ErrorActionPreference = 'Stop'\n"
        f"$null = [System.IO.Directory]::CreateDirectory({powershell_quote(locks)})\n"
        f"$lock = [System.IO.File]::Open({lock}, 'OpenOrCreate', 'ReadWrite', 'None')\n"
        f"[System.IO.File]::WriteAllText({info}, {powershell_quote(holder)})\n"
        f"[Console]::WriteLine('{TAKEN}')\n"
        "$null = [Console]::In.ReadToEnd()\n"
        f"[System.IO.File]::WriteAllText({info}, '')\n"
        "$lock.Close()\n"
        "exit 0\n"
    )


def powershell_holder_script(locks: str, project: str) -> str:
    """Reads the holder file beside a project's lock file."""
    info = powershell_quote(ntpath.join(locks, f"{project}.holder"))
    return f"[Console]::Write([System.IO.File]::ReadAllText({info}))\n"


def lock_argv(project: str, holder: str, method: str = "auto") -> list[str]:
    """The remote command holding the lock (the script is a constant; values are arguments)."""
    return ["sh", "-c", POSIX_SCRIPT, "decl-host-lock", project, holder, method]


def describe_holder(text: str) -> str:
    """`pid N on MACHINE since TIME (COMMAND)` from a lock file's content."""
    try:
        info = json.loads(text)
        return (f"pid {info['pid']} on {info['host']} since {info['started']} "
                f"({info['command']})")
    except (ValueError, KeyError, TypeError):
        return "another decl (no holder recorded)"


class HostLock:
    """The project's lock on one remote host, held while the channel stays open."""

    def __init__(self, conn: Any, project: str, holder: dict[str, Any],
                 method: str = "auto") -> None:
        self.conn = conn
        self.project = project
        self.holder = json.dumps(holder, sort_keys=True)
        self.method = method
        self._channel: Any = None
        self._send_lock = threading.Lock()

    def acquire(self, timeout: float = ANSWER_TIMEOUT, grace: float = ENDED_HOLDER_GRACE,
                ended: Callable[[int], bool] | None = None) -> None:
        """Take the lock or raise LockHeldError naming the holder.

        A holder that is a decl of this machine whose process has already ended (`ended`,
        default `local_process_ended`) is still letting go (its host side exits once sshd
        sees the connection close): decl tries again for up to `grace` seconds before
        refusing, so `apply` then `destroy` in a row does not trip on the first's lock."""
        ended = ended or local_process_ended
        deadline = time.monotonic() + grace
        while True:
            try:
                self._acquire_once(timeout)
                return
            except HostLockHeld as exc:
                if not (holder_has_ended(exc.holder, socket.gethostname(), ended)
                        and time.monotonic() < deadline):
                    raise
            time.sleep(0.25)

    def _acquire_once(self, timeout: float) -> None:
        if getattr(self.conn, "shell", "posix") == "powershell":
            self._acquire_windows(timeout)
            return
        argv = lock_argv(self.project, self.holder, self.method)
        channel = self.conn.exec_stream(argv)
        answer, rest = _first_line(channel, timeout)
        if answer == TAKEN:
            self._channel = channel
            self.conn.remote_tools = self._tell
            return
        try:
            if answer == HELD:
                holder = rest + _read_to_end(channel, timeout)
                if _same_holder(holder, self.holder):
                    # This very decl holds it: another host entry (an alias, or the local
                    # machine) reaches the same account. Nothing to take twice.
                    return
                raise _held(self.conn.host, self.project, holder)
            status = channel.recv_exit_status() if channel.exit_status_ready() else None
            error = _stderr(channel)
            raise ProviderError(
                f"host {self.conn.host}: could not take the project lock "
                f"(exit {status}): {error or answer or 'no answer'}")
        finally:
            channel.close()

    def _acquire_windows(self, timeout: float) -> None:
        """The PowerShell lock: an exclusive open (FileShare.None) held by a waiting process."""
        found = self.conn.run(powershell_argv(POWERSHELL_ENV_SCRIPT), timeout=timeout)
        if not found.ok:
            raise ProviderError(f"host {self.conn.host}: could not read the state directory "
                                f"for the project lock: {found.err.strip() or found.out}")
        locks, _, _ = windows_lock_paths(found.out)
        if not ntpath.isabs(locks):
            raise ProviderError(f"host {self.conn.host}: the host reports neither "
                                "DECL_STATE_DIR, LOCALAPPDATA nor USERPROFILE: no place for "
                                "the project lock; nothing was changed")
        channel = self.conn.exec_stream(
            powershell_argv(powershell_lock_script(locks, self.project, self.holder)))
        answer, _ = _first_line(channel, timeout)
        if answer == TAKEN:
            self._channel = channel
            return
        try:
            _read_to_end(channel, timeout)
            status = channel.recv_exit_status() if channel.exit_status_ready() else None
            error = _all_stderr(channel)
        finally:
            channel.close()
        if not any(mark in error for mark in SHARING_VIOLATION):
            raise ProviderError(
                f"host {self.conn.host}: could not take the project lock "
                f"(exit {status}): {error or answer or 'no answer'}")
        read = self.conn.run(powershell_argv(powershell_holder_script(locks, self.project)),
                             timeout=timeout)
        holder = read.out if read.ok else ""
        if _same_holder(holder, self.holder):
            return  # this very decl holds it, through another host entry
        raise _held(self.conn.host, self.project, holder)

    def _tell(self, event: str, group: int) -> None:
        """Pass a command's process group to the holder, which kills it if decl dies."""
        channel = self._channel
        if channel is None:
            return
        with self._send_lock:
            try:
                channel.sendall(f"{'+' if event == 'started' else '-'}{group}\n".encode())
            except (OSError, EOFError):
                pass

    def release(self) -> None:
        """Close the lock holder's input: it clears the holder and exits, the lock drops."""
        release_all([self])

    def _let_go(self) -> Any:
        """Close the holder's input (it clears the holder and exits); its channel, or None."""
        if getattr(self.conn, "remote_tools", None) == self._tell:
            self.conn.remote_tools = None
        channel, self._channel = self._channel, None
        if channel is not None:
            from decl.connections.ssh_channels import send_eof

            try:
                send_eof(channel)
            except (OSError, EOFError):
                pass
        return channel


def release_all(locks: list[HostLock], wait: float = RELEASE_WAIT) -> None:
    """Release the locks: every holder is told at once, then each one's end is awaited
    (within `wait` seconds in all), so N hosts cost one round trip, not N."""
    channels = [channel for channel in (lock._let_go() for lock in locks) if channel]
    deadline = time.monotonic() + wait
    for channel in channels:
        try:
            _wait_exit(channel, deadline)
        except (OSError, EOFError):
            pass
        finally:
            channel.close()


def _wait_exit(channel: Any, deadline: float) -> None:
    """Until the command on `channel` has ended (its exit status came) or the deadline."""
    event = getattr(channel, "status_event", None)  # paramiko sets it with the status
    while not channel.exit_status_ready():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if event is not None:
            event.wait(min(0.5, left))
        else:
            time.sleep(min(0.02, left))


class HostLockHeld(LockHeldError):
    """The host's project lock is held; `holder` is the lock file's text."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def _held(host: str, project: str, holder: str) -> HostLockHeld:
    return HostLockHeld(f"host {host} is locked for project {project} by "
                        f"{describe_holder(holder.strip())}; wait for it to finish", holder)


def local_process_ended(pid: int, *, windows: bool = sys.platform == "win32",
                        probe: Callable[[int, int], None] = os.kill) -> bool:
    """Whether process `pid` of this machine has ended. False when it runs or cannot be
    told: on Windows os.kill would end the process rather than probe it."""
    if windows:
        return False
    try:
        probe(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # EPERM: it exists, under another user
    return False


def holder_has_ended(holder: str, hostname: str, ended: Callable[[int], bool]) -> bool:
    """Whether the lock file names a decl of this machine (`hostname`) that has ended."""
    try:
        found = json.loads(holder.strip())
        return bool(found["host"] == hostname and isinstance(found["pid"], int)
                    and ended(found["pid"]))
    except (ValueError, KeyError, TypeError):
        return False


def _same_holder(found: str, ours: str) -> bool:
    """Whether the lock file names this process (same pid on the same machine)."""
    try:
        a, b = json.loads(found.strip()), json.loads(ours)
        return bool(a["pid"] == b["pid"] and a["host"] == b["host"])
    except (ValueError, KeyError, TypeError):
        return False


def _first_line(channel: Any, timeout: float) -> tuple[str, str]:
    """The first stdout line and whatever came after it."""
    data = b""
    deadline = time.monotonic() + timeout
    channel.settimeout(0.2)
    while b"\n" not in data and time.monotonic() < deadline:
        try:
            chunk = channel.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line.decode(errors="replace").strip(), rest.decode(errors="replace")


def _read_to_end(channel: Any, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = channel.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def _all_stderr(channel: Any) -> str:
    """Everything the (ended) command wrote on stderr."""
    data = b""
    try:
        while channel.recv_stderr_ready():
            chunk = channel.recv_stderr(65536)
            if not chunk:
                break
            data += chunk
    except (OSError, EOFError):
        pass
    return data.decode(errors="replace").strip()


def _stderr(channel: Any) -> str:
    try:
        if channel.recv_stderr_ready():
            return str(channel.recv_stderr(4096).decode(errors="replace").strip())
    except (OSError, EOFError):
        pass
    return ""
