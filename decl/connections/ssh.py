"""A host reached over SSH (paramiko): one transport per host, shared by every provider.

- Host keys are checked against known_hosts (the host's `known_hosts`, else ~/.ssh/config's
  UserKnownHostsFile, else ~/.ssh/known_hosts). An unknown key is refused with a message
  saying how to trust it, unless the host sets `accept_new_host_key: true` (the key is then
  appended to that file). A key that differs from a recorded one is always refused. There is
  no AutoAddPolicy anywhere.
- Authentication: the host's identity file (passphrase from `identity_passphrase_env`),
  IdentityFile entries of ~/.ssh/config (else ~/.ssh/id_*), then ssh-agent keys.
- Jump hosts (`proxy_jump` or ProxyJump) through direct-tcpip channels; ProxyCommand too.
- Commands: argv lists, quoted for the host's shell by decl.connections.quoting; exit code,
  stdout and stderr kept apart. On a `posix` host the line sent is
  `printf '\036%s\036' "$$"; ` + the quoted command: the remote shell's pid (which sshd made
  a process group leader) comes first on stdout between two RS characters and is stripped
  from the result. A timeout sends the SSH `signal` request (OpenSSH's sshd does killpg, but
  not for root sessions), then `kill -TERM`/`-KILL -- -PID` on that group from a second
  channel, then closes the channel. On a `powershell` host only the `signal` request and
  the close are available.
- Files over SFTP; writes are atomic (temporary name, then posix-rename).
- EOF, `signal` and close of a channel go through decl.connections.ssh_channels, so that none
  is sent after paramiko's answer to the server's CLOSE (sshd would drop the connection).
- Thread-safe: channels of one transport are used from many threads; at most
  MAX_CHANNELS commands run at once per host (OpenSSH's MaxSessions defaults to 10). A
  session the host refuses (more sessions than its MaxSessions, with streams, SFTP and
  kills) is asked for again, backing off, for up to SESSION_WAIT seconds.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import posixpath
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import paramiko

from decl.connections.base import CommandResult, CommandTimeout, Connection, LineSplitter
from decl.connections.filecache import FileCache
from decl.connections.quoting import QuotingError, command_line, powershell_quote
from decl.connections.secret_env import check_command_line
from decl.connections.ssh_channels import OrderedTransport, close_channel, send_eof, send_signal
from decl.connections.ssh_jumps import JUMPS
from decl.connections.sshconfig import SshTarget, resolve
from decl.errors import ConnectionFailed, ProviderError

MAX_CHANNELS = 8
# paramiko logs a refused channel at ERROR; without a handler Python would print it on
# stderr (decl reports failures itself; `--debug` still shows paramiko's records).
logging.getLogger("paramiko").addHandler(logging.NullHandler())
PID_PREFIX = "printf '\\036%s\\036' \"$$\"; "
PID_MARK = b"\x1e"
KILL_GRACE = 2.0
# A host may refuse a new session while others are open (sshd's MaxSessions, 10 by default,
# counts every session of the connection: commands, streams, SFTP, kills). Such a refusal
# is retried (backing off up to SESSION_RETRY_MAX s between tries) for SESSION_WAIT s.
SESSION_WAIT = 30.0
SESSION_RETRY_MAX = 0.5
_KNOWN_HOSTS_LOCK = threading.Lock()
# Parsed known_hosts files and loaded private keys, shared by every connection of a run
# (re-read when the file changes: decl.connections.filecache).
_HOST_KEYS = FileCache()
_PRIVATE_KEYS = FileCache()


class _HostKeyUnknown(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class _HostKeyMismatch(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _short_type(key_name: str) -> str:
    return key_name.replace("ssh-", "").replace("ecdsa-sha2-", "ecdsa-")


# --------------------------------------------------------------------------------------------
# Opening a transport


def _known_keys(target: SshTarget) -> list[paramiko.PKey]:
    """Keys recorded for the target in its known_hosts file (hashed entries included)."""
    path = target.known_hosts
    if not os.path.exists(path):
        return []
    keys = _HOST_KEYS.get(path, path, lambda: _read_known_hosts(path))
    if isinstance(keys, str):
        raise ConnectionFailed(target.name, "host key unknown", keys)
    found = keys.lookup(target.known_hosts_name)
    return list(found.values()) if found else []


def _read_known_hosts(path: str) -> paramiko.HostKeys | str:
    """The parsed file, or why it cannot be read."""
    try:
        return paramiko.HostKeys(path)
    except (OSError, paramiko.SSHException) as exc:
        return f"cannot read {path}: {exc}"


def _preferred_key_types(transport: paramiko.Transport, known: list[paramiko.PKey]) -> None:
    """Ask for the key types already recorded first, as OpenSSH does."""
    if not known:
        return
    wanted: list[str] = []
    for key in known:
        name = key.get_name()
        if name == "ssh-rsa":
            wanted += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        else:
            wanted.append(name)
    options = transport.get_security_options()
    available = list(options.key_types)
    first = [k for k in wanted if k in available]
    options.key_types = first + [k for k in available if k not in first]


def _verify_host_key(target: SshTarget, key: paramiko.PKey, known: list[paramiko.PKey]) -> None:
    """Accept a recorded key; refuse an unknown one (unless accept_new) or a changed one."""
    shown = f"{key.get_name()} key {fingerprint(key)}"
    if any(k.asbytes() == key.asbytes() for k in known):
        return
    name = target.known_hosts_name
    if known:
        recorded = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in known)
        raise _HostKeyMismatch(
            f"WARNING: HOST KEY HAS CHANGED for {name}. The host presented {shown}, but "
            f"{target.known_hosts} records {recorded}. Someone may be intercepting the "
            f"connection (man-in-the-middle), or the host was reinstalled. decl refuses to "
            f"connect. If the change is expected, check the new key's fingerprint on the "
            f"host, then remove the old one: ssh-keygen -R '{name}' -f {target.known_hosts}"
        )
    if not target.accept_new_host_key:
        port = f" -p {target.port}" if target.port != 22 else ""
        raise _HostKeyUnknown(
            f"{name} presented {shown}, which is not in {target.known_hosts}. "
            f"To trust it, compare the fingerprint with the host's own "
            f"(on the host: ssh-keygen -lf /etc/ssh/ssh_host_{_short_type(key.get_name())}"
            f"_key.pub), then either connect once with `ssh{port} "
            f"-o UserKnownHostsFile={target.known_hosts} {target.user}@{target.hostname}` and "
            f"answer yes, or set `accept_new_host_key: true` on host '{target.name}' "
            f"to record it on the next connection."
        )
    _record_host_key(target.known_hosts, name, key)


def _record_host_key(path: str, name: str, key: paramiko.PKey) -> None:
    """Append one known_hosts line (file 0600, directory 0700 when created)."""
    with _KNOWN_HOSTS_LOCK:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        needs_newline = False
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, "rb") as handle:
                handle.seek(-1, os.SEEK_END)
                needs_newline = handle.read(1) != b"\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as handle:
            if needs_newline:
                handle.write("\n")
            handle.write(f"{name} {key.get_name()} {key.get_base64()}\n")


def _load_identities(target: SshTarget) -> tuple[list[tuple[str, paramiko.PKey]], list[str]]:
    """Private keys to offer, and problems met loading them (no secret in any message)."""
    passphrase = None
    problems: list[str] = []
    if target.passphrase_env:
        passphrase = os.environ.get(target.passphrase_env)
        if passphrase is None:
            problems.append(
                f"environment variable {target.passphrase_env} (identity_passphrase_env) "
                f"is not set"
            )
    keys: list[tuple[str, paramiko.PKey]] = []
    for path in target.identity_files:
        if not os.path.isfile(path):
            problems.append(f"identity file {path} not found")
            continue
        key, problem = _cached_key(path, passphrase)
        if key is not None:
            keys.append((path, key))
        elif problem:
            problems.append(problem)
    return keys, problems


def _cached_key(path: str, passphrase: str | None) -> tuple[paramiko.PKey | None, str]:
    """_load_key, once per run for each file and passphrase (kept by its digest)."""
    digest = None if passphrase is None else hashlib.sha256(passphrase.encode()).hexdigest()
    loaded: tuple[paramiko.PKey | None, str] = _PRIVATE_KEYS.get(
        (path, digest), path, lambda: _load_key(path, passphrase))
    return loaded


def _load_key(path: str, passphrase: str | None) -> tuple[paramiko.PKey | None, str]:
    """One private key, or why it cannot be used (never quoting the passphrase)."""
    secret = passphrase.encode() if passphrase is not None else None
    try:
        return paramiko.PKey.from_path(path, secret), ""
    except (TypeError, ValueError, paramiko.SSHException) as exc:
        first = exc
    except OSError as exc:
        return None, f"identity file {path} could not be read: {exc.strerror or exc}"
    encrypted = isinstance(first, (TypeError, paramiko.PasswordRequiredException))
    if secret is not None:
        try:
            return paramiko.PKey.from_path(path, None), ""  # not encrypted after all
        except (TypeError, paramiko.PasswordRequiredException):
            return None, f"identity file {path}: wrong passphrase"
        except (ValueError, paramiko.SSHException, OSError):
            pass
    if encrypted:
        return None, (f"identity file {path} is encrypted: put its passphrase in an environment "
                      f"variable named by identity_passphrase_env, or load it into ssh-agent")
    return None, f"identity file {path} could not be loaded: {first}"


def _authenticate(transport: paramiko.Transport, target: SshTarget) -> None:
    keys, problems = _load_identities(target)
    tried: list[str] = []
    agent = None
    if os.environ.get("SSH_AUTH_SOCK"):
        try:
            agent = paramiko.Agent()
            keys += [("ssh-agent", key) for key in agent.get_keys()]
        except paramiko.SSHException as exc:
            problems.append(f"ssh-agent: {exc}")
    try:
        for source, key in keys:
            tried.append(f"{source} ({_short_type(key.get_name())} {fingerprint(key)})")
            try:
                transport.auth_publickey(target.user, key)
            except paramiko.BadAuthenticationType as exc:
                problems.append(f"the server does not accept public keys (allows: "
                                f"{', '.join(exc.allowed_types)})")
                break
            except paramiko.AuthenticationException:
                continue
            if transport.is_authenticated():
                return
    finally:
        if agent is not None:
            agent.close()
    if not transport.is_active():
        raise ConnectionFailed(target.name, "unreachable",
                               f"{target.label} closed the connection during authentication")
    detail = f"{target.label} refused "
    detail += ("the keys offered: " + "; ".join(tried)) if tried else "us: no key to offer"
    if problems:
        detail += ". " + "; ".join(problems)
    detail += (f". Check that the public key is in ~{target.user}/.ssh/authorized_keys "
               f"on the host and that the user is right")
    raise ConnectionFailed(target.name, "authentication failed", detail)


def _open_socket(target: SshTarget, via: paramiko.Transport | None) -> Any:
    if via is not None:
        try:
            return via.open_channel(
                "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
                timeout=target.connect_timeout,
            )
        except paramiko.ChannelException as exc:
            raise ConnectionFailed(target.name, "unreachable",
                                   f"the jump host could not reach {target.hostname}:"
                                   f"{target.port}: {exc.text}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectionFailed(target.name, "unreachable",
                                   f"through the jump host: {exc or type(exc).__name__}") \
                from None
    if target.proxy_command:
        return paramiko.ProxyCommand(target.proxy_command)
    try:
        sock = socket.create_connection((target.hostname, target.port),
                                        timeout=target.connect_timeout)
    except TimeoutError:
        raise ConnectionFailed(target.name, "timeout",
                               f"no answer from {target.hostname}:{target.port} within "
                               f"{target.connect_timeout:g} s") from None
    except socket.gaierror as exc:
        raise ConnectionFailed(target.name, "unreachable",
                               f"cannot resolve {target.hostname}: {exc.strerror}") from None
    except OSError as exc:
        raise ConnectionFailed(target.name, "unreachable",
                               f"{target.hostname}:{target.port}: "
                               f"{exc.strerror or exc}") from None
    # Many small request/answer packets: without this, Nagle's algorithm and delayed ACKs
    # add ~40 ms to a command now and then.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def open_transport(target: SshTarget, via: paramiko.Transport | None = None) -> paramiko.Transport:
    """Connect, verify the host key, authenticate. Raises ConnectionFailed with its kind."""
    sock = _open_socket(target, via)
    transport = OrderedTransport(sock)
    transport.banner_timeout = target.connect_timeout
    transport.handshake_timeout = target.connect_timeout
    transport.auth_timeout = target.connect_timeout
    try:
        known = _known_keys(target)
        _preferred_key_types(transport, known)
        try:
            transport.start_client(timeout=target.connect_timeout)
        except paramiko.SSHException as exc:
            words = str(exc) or type(exc).__name__
            kind = "timeout" if "timeout" in words.lower() else "unreachable"
            raise ConnectionFailed(target.name, kind,
                                   f"SSH handshake with {target.hostname}:{target.port} "
                                   f"failed: {words}") from None
        except (EOFError, OSError) as exc:
            raise ConnectionFailed(target.name, "unreachable",
                                   f"{target.hostname}:{target.port} closed the connection "
                                   f"during the handshake ({exc or type(exc).__name__})") \
                from None
        try:
            _verify_host_key(target, transport.get_remote_server_key(), known)
        except _HostKeyUnknown as exc:
            raise ConnectionFailed(target.name, "host key unknown", str(exc)) from None
        except _HostKeyMismatch as exc:
            raise ConnectionFailed(target.name, "host key mismatch", str(exc)) from None
        try:
            _authenticate(transport, target)
        except paramiko.SSHException as exc:
            raise ConnectionFailed(target.name, "unreachable",
                                   f"{target.label}: {exc}") from None
        if target.keepalive:
            transport.set_keepalive(target.keepalive)
        return transport
    except BaseException:
        transport.close()
        raise


# --------------------------------------------------------------------------------------------
# The connection


class SshConnection(Connection):
    """A remote host over SSH. Use `SshConnection.open(name, host_config)`."""

    is_local = False

    def __init__(self, host: str, target: SshTarget, config: Any = None) -> None:
        self.host = host
        self.target = target
        self.config = config
        self.shell = getattr(config, "shell", None) or "posix"
        self.command_timeout: float | None = getattr(config, "command_timeout", None)
        self._lock = threading.RLock()
        self._sftp_lock = threading.Lock()
        self._channels = threading.BoundedSemaphore(MAX_CHANNELS)
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._home: str | None = None
        self._closed = False
        # Told ("started"/"ended", remote process group) of every command on a POSIX host,
        # while an apply holds this host's lock (decl.connections.hostlock reaps them).
        self.remote_tools: Callable[[str, int], None] | None = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, host_name: str, config: Any) -> SshConnection:
        """Resolve the host's settings, connect and authenticate (ConnectionFailed if not)."""
        try:
            target = resolve(host_name, config)
        except (ValueError, paramiko.SSHException, ImportError) as exc:
            raise ConnectionFailed(host_name, "unreachable",
                                   f"bad SSH settings (manifest or ~/.ssh/config): {exc}") \
                from None
        connection = cls(host_name, target, config)
        connection._connect()
        return connection

    def _connect(self) -> None:
        # The jump hosts' connections are shared with every host behind the same chain
        # (decl.connections.ssh_jumps): one login on a bastion, not one per host.
        chain = self.target.jumps
        try:
            jumps = JUMPS.acquire(chain, open_transport)
        except ConnectionFailed as exc:
            failed = next((j for j in chain if j.name == exc.host), None)
            where = f"jump host {failed.label}: " if failed is not None else "jump host: "
            raise ConnectionFailed(self.host, exc.kind, where + exc.detail) from None
        try:
            transport = open_transport(self.target, jumps[-1] if jumps else None)
        except BaseException as exc:
            JUMPS.release(chain)
            if isinstance(exc, ConnectionFailed):
                raise ConnectionFailed(self.host, exc.kind, exc.detail) from None
            raise
        self._transport = transport
        self._sftp = None

    def _live_transport(self) -> paramiko.Transport:
        """The transport, reopened once if it dropped since the last command."""
        with self._lock:
            if self._closed:
                raise ConnectionFailed(self.host, "unreachable", "connection closed")
            if self._transport is None or not self._transport.is_active():
                self._drop()
                self._connect()
            assert self._transport is not None
            return self._transport

    def _drop(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._sftp = None
        if self._transport is not None:
            self._transport.close()
            JUMPS.release(self.target.jumps)  # closed when no other host goes through them
        self._transport = None

    def close(self) -> None:
        """Close the SFTP session, the transport and any jump transports."""
        with self._lock:
            self._closed = True
            self._drop()

    def _lost(self, what: str, exc: BaseException | None = None) -> ConnectionFailed:
        reason = f" ({exc})" if exc is not None and str(exc) else ""
        return ConnectionFailed(self.host, "unreachable",
                                f"connection to {self.target.label} lost {what}{reason}")

    # -- commands --------------------------------------------------------------------------

    def command_line(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> str:
        """The exact string sent to the host for argv (see decl.connections.quoting)."""
        if self.shell == "posix":
            env = {"LANG": "C", "LC_ALL": "C", **(env or {})}
        try:
            return command_line(argv, self.shell, env, cwd)
        except QuotingError as exc:
            raise ProviderError(f"host {self.host}: {exc}") from None

    def run(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run argv on the host; a timeout kills the remote command and raises CommandTimeout."""
        return self._run(argv, input, timeout, env, cwd, None)

    def run_streaming(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Run argv on the host, calling on_line with each output line as it arrives."""
        return self._run(argv, None, timeout, env, cwd, on_line)

    def _run(
        self,
        argv: Sequence[str],
        input: bytes | None,
        timeout: float | None,
        env: Mapping[str, str] | None,
        cwd: str | None,
        on_line: Callable[[str], None] | None,
    ) -> CommandResult:
        check_command_line(self.host, argv, env)
        line = self.command_line(argv, env, cwd)
        if self.shell == "posix":
            line = PID_PREFIX + line
        timeout = timeout if timeout is not None else self.command_timeout
        with self._channels:
            transport = self._live_transport()
            try:
                channel = self._open_session(transport)
                channel.exec_command(line)
            except paramiko.ChannelException as exc:
                raise ConnectionFailed(self.host, "unreachable",
                                       f"the host refused a new session: {exc.text}") from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise self._lost(f"before running {argv[0]}", exc) from None
            try:
                return self._collect(channel, tuple(argv), input, timeout, on_line)
            finally:
                close_channel(channel)

    def _collect(
        self,
        channel: paramiko.Channel,
        argv: tuple[str, ...],
        input: bytes | None,
        timeout: float | None,
        on_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        writer = None
        if input:
            writer = threading.Thread(target=_feed, args=(channel, input), daemon=True)
            writer.start()
        else:
            send_eof(channel)
        out: list[bytes] = []
        err: list[bytes] = []
        marked = self.shell == "posix"
        reported: list[int] = []
        try:
            return self._wait(channel, argv, timeout, writer, out, err, marked, reported,
                              on_line)
        finally:
            hook = self.remote_tools
            for pid in reported:
                if hook is not None:
                    hook("ended", pid)

    def _wait(self, channel: paramiko.Channel, argv: tuple[str, ...], timeout: float | None,
              writer: threading.Thread | None, out: list[bytes], err: list[bytes],
              marked: bool, reported: list[int],
              on_line: Callable[[str], None] | None = None) -> CommandResult:
        """Read until the command ends; the remote pid goes to `remote_tools` (and `reported`)."""
        pid: int | None = None
        deadline = None if timeout is None else time.monotonic() + timeout
        ready = channel.fileno()
        live = _LiveLines(on_line, marked) if on_line is not None else None
        while True:
            _drain(channel, out, err)
            if marked and pid is None and out:
                pid = _remote_pid(out)
                hook = self.remote_tools
                if pid is not None and hook is not None:
                    reported.append(pid)
                    hook("started", pid)
            if live is not None:
                live.update(out, err)
            if channel.closed or (channel.eof_received and channel.exit_status_ready()):
                break
            wait = 0.5
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._kill(channel, pid)
                    raise CommandTimeout(
                        f"{argv[0]} did not finish within {timeout:g} s on host "
                        f"{self.host} and was killed"
                    )
                wait = min(wait, left)
            if channel.eof_received:
                # All output is in; only the exit status is to come. The channel's pipe
                # stays readable after EOF, so select() would return at once, again and
                # again (a busy loop holding the GIL until sshd sends the status).
                channel.status_event.wait(wait)
            else:
                select.select([ready], [], [], wait)
        _drain(channel, out, err)
        if live is not None:
            live.update(out, err)
            live.flush()
        stdout = _strip_pid(b"".join(out)) if marked else b"".join(out)
        if writer is not None:
            writer.join(timeout=1)
        # paramiko marks the status ready with -1 when the channel closes without one.
        if not channel.exit_status_ready() or channel.exit_status == -1:
            # sshd sends EOF before exit-status/exit-signal and close: no EOF, no status,
            # a closed channel means the connection went away.
            transport = self._transport
            if not channel.eof_received or transport is None or not transport.is_active():
                raise self._lost(f"while running {argv[0]}")
            # The command ended on a signal (exit-signal, which paramiko does not keep).
            return CommandResult(argv, -1, stdout, b"".join(err))
        return CommandResult(argv, channel.recv_exit_status(), stdout, b"".join(err))

    def _open_session(self, transport: paramiko.Transport,
                      wait: float = SESSION_WAIT) -> paramiko.Channel:
        """A new session channel; a refusal by the host is retried for `wait` seconds.

        Raises paramiko.ChannelException when the host still refuses, SSHException/EOFError/
        OSError when the connection is gone.
        """
        deadline = time.monotonic() + wait
        pause = 0.02
        while True:
            try:
                return transport.open_session(timeout=self.target.connect_timeout)
            except paramiko.ChannelException:
                if time.monotonic() + pause > deadline:
                    raise
            except paramiko.SSHException as exc:
                # paramiko keeps one last error per transport: of two refusals at once, one
                # gets the ChannelException and the other this, the connection still up.
                if str(exc) != "Unable to open channel." or not transport.is_active():
                    raise
                if time.monotonic() + pause > deadline:
                    raise paramiko.ChannelException(1, "refused") from None
            time.sleep(pause)
            pause = min(pause * 2, SESSION_RETRY_MAX)

    def _kill(self, channel: paramiko.Channel, pid: int | None) -> None:
        """Signal the remote process group (TERM, then KILL), then close the channel."""
        for signal_name in ("TERM", "KILL"):
            send_signal(channel, signal_name)
            if pid is not None and pid > 1:
                self._kill_group(pid, signal_name)
            end = time.monotonic() + KILL_GRACE
            while time.monotonic() < end and not channel.exit_status_ready() \
                    and not channel.closed:
                time.sleep(0.05)
            if channel.exit_status_ready() or channel.closed:
                break
        close_channel(channel)

    def _kill_group(self, pid: int, signal_name: str) -> None:
        transport = self._transport
        if transport is None or not transport.is_active():
            return
        try:
            channel = self._open_session(transport, KILL_GRACE)
            channel.exec_command(self.command_line(["kill", f"-{signal_name}", "--", f"-{pid}"]))
            send_eof(channel)
            end = time.monotonic() + KILL_GRACE
            while not channel.exit_status_ready() and time.monotonic() < end:
                time.sleep(0.02)
            close_channel(channel)
        except (paramiko.SSHException, EOFError, OSError):
            pass

    def exec_stream(self, argv: Sequence[str]) -> paramiko.Channel:
        """Start argv and return its channel as a socket-like stream (stdin/stdout).

        For tools that speak a protocol over stdio, e.g. `docker system dial-stdio` to reach
        the host's Docker engine through this connection. The caller closes the channel.
        """
        check_command_line(self.host, argv)
        transport = self._live_transport()
        try:
            channel = self._open_session(transport)
            channel.exec_command(self.command_line(argv))
        except paramiko.ChannelException as exc:
            raise ConnectionFailed(self.host, "unreachable",
                                   f"the host refused a new session: {exc.text}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(f"before running {argv[0]}", exc) from None
        return channel

    def which(self, program: str) -> str | None:
        """Full path of a program on the host's PATH, or None."""
        if self.shell == "powershell":
            result = self.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
                               f"(Get-Command -Name {powershell_quote(program)} "
                               f"-ErrorAction SilentlyContinue).Source"])
        else:
            result = self.run(["sh", "-c", 'command -v "$1"', "sh", program])
        path = result.out.strip()
        return (path or None) if result.ok else None

    # -- files -----------------------------------------------------------------------------

    def _sftp_client(self) -> paramiko.SFTPClient:
        transport = self._live_transport()
        with self._lock:
            if self._sftp is None or self._sftp.get_channel() is None \
                    or self._sftp.get_channel().closed:
                try:
                    channel = self._open_session(transport)
                    channel.invoke_subsystem("sftp")
                    self._sftp = paramiko.SFTPClient(channel)
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    raise ConnectionFailed(self.host, "unreachable",
                                           f"SFTP is not available: {exc}") from None
                if self._sftp is None:
                    raise ConnectionFailed(self.host, "unreachable", "SFTP is not available")
            return self._sftp

    def _sftp_call(self, what: str, func: Any) -> Any:
        with self._sftp_lock:
            sftp = self._sftp_client()
            try:
                return func(sftp)
            except (EOFError, paramiko.SSHException) as exc:
                raise self._lost(f"during {what}", exc) from None

    def _path(self, path: str) -> str:
        return self.expand_user(path) if path.startswith("~") else path

    def read_file(self, path: str) -> bytes:
        """Read a whole file over SFTP; FileNotFoundError when absent."""
        path = self._path(path)

        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as handle:
                handle.prefetch()
                return bytes(handle.read())

        return bytes(self._sftp_call(f"reading {path}", read))

    def _atomic(self, what: str, path: str, fill: Any) -> None:
        """Fill a temporary file beside `path` with `fill(sftp, temp)`, then posix-rename it."""
        path = self._path(path)
        temp = posixpath.join(posixpath.dirname(path) or ".",
                              f".decl-{uuid.uuid4().hex[:12]}.tmp")

        def run(sftp: paramiko.SFTPClient) -> None:
            try:
                fill(sftp, temp)
                _rename(sftp, temp, path)
            except BaseException:
                try:
                    sftp.remove(temp)
                except (OSError, paramiko.SSHException, EOFError):
                    pass
                raise

        self._sftp_call(f"{what} {path}", run)

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write atomically: a temporary file beside the target, then posix-rename."""

        def write(sftp: paramiko.SFTPClient, temp: str) -> None:
            with sftp.open(temp, "wb") as handle:
                handle.set_pipelined(True)
                handle.write(data)
            if mode is not None:
                sftp.chmod(temp, mode)

        self._atomic("writing", path, write)

    def upload(self, local_path: str, remote_path: str) -> None:
        """Copy a local file to the host (atomically, like write_file)."""
        self._atomic("uploading to", remote_path,
                     lambda sftp, temp: sftp.put(local_path, temp))

    def download(self, remote_path: str, local_path: str) -> None:
        """Copy a file from the host to this machine."""
        remote_path = self._path(remote_path)
        self._sftp_call(f"downloading {remote_path}",
                        lambda sftp: sftp.get(remote_path, local_path))

    def exists(self, path: str) -> bool:
        """Whether the path exists (lstat: a dangling symlink exists)."""
        path = self._path(path)

        def check(sftp: paramiko.SFTPClient) -> bool:
            try:
                sftp.lstat(path)
            except FileNotFoundError:
                return False
            return True

        return bool(self._sftp_call(f"checking {path}", check))

    def makedirs(self, path: str) -> None:
        """Create a directory and its parents (no error when it exists)."""
        path = self._path(path)

        def make(sftp: paramiko.SFTPClient) -> None:
            missing: list[str] = []
            current = path.rstrip("/") or "/"
            while current not in ("", "/", "."):
                try:
                    sftp.stat(current)
                    break
                except FileNotFoundError:
                    missing.append(current)
                    current = posixpath.dirname(current)
            for directory in reversed(missing):
                try:
                    sftp.mkdir(directory)
                except OSError:
                    try:
                        sftp.stat(directory)  # made by someone else meanwhile
                    except FileNotFoundError:
                        raise ProviderError(f"host {self.host}: cannot create {directory}") \
                            from None

        self._sftp_call(f"creating {path}", make)

    def remove(self, path: str) -> None:
        """Remove a file or an empty directory; absent is fine."""
        path = self._path(path)

        def rm(sftp: paramiko.SFTPClient) -> None:
            try:
                sftp.remove(path)
            except FileNotFoundError:
                pass
            except OSError:
                sftp.rmdir(path)

        self._sftp_call(f"removing {path}", rm)

    def expand_user(self, path: str) -> str:
        """Expand a leading ~ or ~user with the remote user's home (asked once)."""
        if not path.startswith("~"):
            return path
        head, sep, rest = path[1:].partition("/")
        if head:
            home = self._home_of(head)
            if home is None:
                return path
        else:
            home = self._own_home()
        home = home.rstrip("/") or "/"
        return posixpath.join(home, rest) if sep else home

    def _own_home(self) -> str:
        if self._home is None:
            if self.shell == "powershell":
                result = self.run(["cmd.exe", "/d", "/c", "echo %USERPROFILE%"])
            else:
                result = self.run(["sh", "-c", 'printf "%s" "$HOME"'])
            home = result.out.strip()
            if not result.ok or not home:
                home = self._sftp_call("finding the home directory",
                                       lambda sftp: sftp.normalize("."))
            self._home = home
        return self._home

    def _home_of(self, user: str) -> str | None:
        result = self.run(["getent", "passwd", user])
        fields = result.out.strip().split(":")
        return fields[5] if result.ok and len(fields) >= 7 else None


def _rename(sftp: paramiko.SFTPClient, source: str, target: str) -> None:
    """posix-rename (replaces the target atomically); plain rename where unsupported."""
    try:
        sftp.posix_rename(source, target)
    except OSError as exc:
        if "unsupported" not in str(exc).lower() and "not supported" not in str(exc).lower():
            raise
        try:
            sftp.remove(target)
        except FileNotFoundError:
            pass
        sftp.rename(source, target)


def _remote_pid(out: list[bytes]) -> int | None:
    head = b"".join(out)[:64]
    if not head.startswith(PID_MARK):
        return None
    end = head.find(PID_MARK, 1)
    if end < 0:
        return None
    text = head[1:end]
    return int(text) if text.isdigit() else None


def _strip_pid(stdout: bytes) -> bytes:
    """Remove the leading pid marker written by PID_PREFIX."""
    if stdout.startswith(PID_MARK):
        end = stdout.find(PID_MARK, 1, 64)
        if end > 0 and stdout[1:end].isdigit():
            return stdout[end + 1:]
    return stdout


class _LiveLines:
    """Pass a running command's new output lines on, the pid marker left out."""

    def __init__(self, on_line: Callable[[str], None], marked: bool) -> None:
        self.out = LineSplitter(on_line)
        self.err = LineSplitter(on_line)
        self.marked = marked
        self.out_seen = 0  # bytes of stdout passed on (after the marker)
        self.out_chunks = 0
        self.err_chunks = 0
        self.started = not marked

    def update(self, out: list[bytes], err: list[bytes]) -> None:
        """Feed what arrived since the last call."""
        for chunk in err[self.err_chunks:]:
            self.err.feed(chunk)
        self.err_chunks = len(err)
        if len(out) == self.out_chunks:
            return
        if not self.started:
            whole = b"".join(out)
            body = _strip_pid(whole)
            if body is whole and whole.startswith(PID_MARK) and len(whole) < 64:
                return  # the marker is not complete yet
            self.started = True
            self.out.feed(body)
        else:
            for chunk in out[self.out_chunks:]:
                self.out.feed(chunk)
        self.out_chunks = len(out)

    def flush(self) -> None:
        """Pass on partial last lines."""
        self.out.flush()
        self.err.flush()


def _drain(channel: paramiko.Channel, out: list[bytes], err: list[bytes]) -> None:
    while channel.recv_ready():
        out.append(channel.recv(65536))
    while channel.recv_stderr_ready():
        err.append(channel.recv_stderr(65536))


def _feed(channel: paramiko.Channel, data: bytes) -> None:
    try:
        channel.sendall(data)
        send_eof(channel)
    except (OSError, EOFError, paramiko.SSHException):
        pass

