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
- Windows hosts (`shell: powershell`) get no host lock yet: a script for them could not be
  verified here (the tests' PowerShell is a fake that knows the providers' commands only).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from decl.errors import LockHeldError, ProviderError

TAKEN = "DECL-LOCK-TAKEN"
HELD = "DECL-LOCK-HELD"
ANSWER_TIMEOUT = 30.0
RELEASE_WAIT = 10.0

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

def supported(shell: str) -> bool:
    """Whether hosts of this shell get a host lock (POSIX only, for now)."""
    return shell == "posix"


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

    def acquire(self, timeout: float = ANSWER_TIMEOUT) -> None:
        """Take the lock or raise LockHeldError naming the holder."""
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
                raise LockHeldError(
                    f"host {self.conn.host} is locked for project {self.project} by "
                    f"{describe_holder(holder.strip())}; wait for it to finish")
            status = channel.recv_exit_status() if channel.exit_status_ready() else None
            error = _stderr(channel)
            raise ProviderError(
                f"host {self.conn.host}: could not take the project lock "
                f"(exit {status}): {error or answer or 'no answer'}")
        finally:
            channel.close()

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
            try:
                channel.shutdown_write()
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


def _stderr(channel: Any) -> str:
    try:
        if channel.recv_stderr_ready():
            return str(channel.recv_stderr(4096).decode(errors="replace").strip())
    except (OSError, EOFError):
        pass
    return ""
