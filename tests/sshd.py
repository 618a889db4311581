"""An OpenSSH server of the tests' own on 127.0.0.1, for tests that drive decl over SSH.

Usage in a test module::

    from tests.sshd import sshd, start_sshd   # noqa: F401  (sshd is a session fixture)

    def test_something(sshd, tmp_path):
        manifest = {"version": 1, "project": "t",
                    "hosts": {"box": sshd.manifest_host()},
                    "defaults": {"host": "box"}}
        ...

    def test_custom(tmp_path):
        server = start_sshd(tmp_path / "s", force_command="/bin/echo forced",
                            extra_config=["MaxSessions 20"])
        try:
            ...
        finally:
            server.stop()

`start_sshd(directory, ...)` makes a host key, a client key (`client`, no passphrase),
`authorized_keys`, an `sshd_config` (absolute paths, `ListenAddress 127.0.0.1`, a free port,
`PasswordAuthentication no`, `StrictModes no`, `UsePAM no`, `Subsystem sftp internal-sftp`),
starts `/usr/sbin/sshd -D -e -f sshd_config`, waits until the port answers with an SSH banner,
and writes `known_hosts` with the server's host key under `[127.0.0.1]:PORT`.
The login user is the user running the tests (root in CI). By default the server sets
`SetEnv SHLVL=1`, so that bash, as the login shell, does not source the test user's
~/.bashrc for every command (Debian's bash does so under sshd; a slow one, e.g. with
`pyenv init`, costs ~200 ms per command and PATH changes differ between machines); pass
`source_bashrc=True` for a host that behaves like an untuned login. Remote PATH is then
sshd's default, so give remote commands absolute interpreter paths (sys.executable).
The server is stopped by its pid (`stop()`); the session fixture `sshd` stops it at the
end of the session, `sshd_factory` servers at the end of the test.

When `sshd` or `ssh-keygen` is missing, the fixtures call `tests.backends.missing_backend`
(skip locally, fail under `DECL_REQUIRE_BACKENDS=1`). Nothing here needs a network other
than loopback.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


@dataclass
class SshdServer:
    """A running sshd of the tests' own."""

    directory: Path
    port: int
    user: str
    identity_file: str
    known_hosts: str
    host_key: str
    host_public_key: str
    pid: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    address: str = "127.0.0.1"

    def manifest_host(self, **overrides: Any) -> dict[str, Any]:
        """A mapping ready to paste under `hosts:` in a manifest (overrides win)."""
        host: dict[str, Any] = {
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity_file": self.identity_file,
            "known_hosts": self.known_hosts,
            "connect_timeout": 5,
        }
        host.update(overrides)
        return host

    def alive(self) -> bool:
        """Whether the sshd process is still running."""
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Stop the server (SIGTERM to its pid, then SIGKILL) and reap it."""
        if not self.alive():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def kill_sessions(self) -> None:
        """Stop the listener and every session process it forked (drops live connections)."""
        children = _children(self.pid)
        self.stop()
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log(self) -> str:
        """What sshd wrote on stderr so far (for assertion messages)."""
        try:
            return (self.directory / "sshd.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def find_sshd() -> str | None:
    """Path of the sshd binary, or None."""
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("sshd")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, comment: str = "decl-tests", passphrase: str = "") -> Path:
    """Make an ed25519 key pair at `path` (and `path`.pub)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True, capture_output=True,
    )
    return path


def start_sshd(
    directory: Path | str,
    *,
    force_command: str | None = None,
    extra_config: list[str] | tuple[str, ...] = (),
    host_key: Path | str | None = None,
    client_key: Path | str | None = None,
    port: int | None = None,
    timeout: float = 10.0,
    source_bashrc: bool = False,
    env: dict[str, str] | None = None,
) -> SshdServer:
    """Start an sshd in `directory` (created) and wait until it answers; see module doc.

    `host_key`/`client_key` reuse existing private keys (e.g. to restart the same server or to
    make a server with a different host key); otherwise new ones are made. `env` is set in
    every session (sshd `SetEnv`, merged with any SetEnv line of `extra_config`: sshd only
    honours the first SetEnv line). Values may not contain spaces or quotes. An `extra_config`
    line replaces the default line of the same keyword (sshd keeps a keyword's first value),
    e.g. `MaxSessions 2`.
    """
    sshd_bin = find_sshd()
    if sshd_bin is None or shutil.which("ssh-keygen") is None:
        raise FileNotFoundError("sshd or ssh-keygen not installed (Debian: openssh-server)")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if host_key is None:
        host_key = directory / "host_key"
        if not host_key.exists():
            keygen(host_key, "decl-tests-host")
    host_key = Path(host_key).resolve()
    if client_key is None:
        client_key = directory / "client"
        if not client_key.exists():
            keygen(client_key, "decl-tests-client")
    client_key = Path(client_key).resolve()
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(str(client_key) + ".pub").read_text())
    os.chmod(authorized, 0o600)
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    except OSError:
        pass
    port = port or free_port()
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "MaxStartups 100:30:200",
        "MaxSessions 50",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
    ]
    setenv = [] if source_bashrc else ["SHLVL=1"]
    setenv += [f"{k}={v}" for k, v in (env or {}).items()]
    for line in extra_config:
        keyword = line.split(None, 1)[0].lower()
        if keyword == "setenv":
            setenv += line.split()[1:]
            continue
        # sshd keeps the first value of a keyword: replace the default line, if any
        lines = [kept for kept in lines if kept.split(None, 1)[0].lower() != keyword
                 or keyword in ("port", "listenaddress", "hostkey")]
        lines.append(line)
    if setenv:
        lines.append("SetEnv " + " ".join(setenv))
    if force_command:
        lines.append(f"ForceCommand {force_command}")
    config = directory / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    log = open(directory / "sshd.log", "ab")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [sshd_bin, "-D", "-e", "-f", str(config)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    server = SshdServer(
        directory=directory,
        port=port,
        user=getpass.getuser(),
        identity_file=str(client_key),
        known_hosts=str(directory / "known_hosts"),
        host_key=str(host_key),
        host_public_key=Path(str(host_key) + ".pub").read_text().strip(),
        pid=process.pid,
        process=process,
    )
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {server.log()}")
        if _banner(port):
            break
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"sshd did not answer on port {port}: {server.log()}")
        time.sleep(0.02)
    write_known_hosts(server)
    return server


def write_known_hosts(server: SshdServer, path: Path | str | None = None) -> str:
    """Write `[127.0.0.1]:PORT KEYTYPE KEY` for the server's host key; return the path."""
    keytype, key = server.host_public_key.split()[:2]
    target = Path(path or server.known_hosts)
    target.write_text(f"[{server.address}]:{server.port} {keytype} {key}\n")
    return str(target)


def _banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(1.0)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Descendants of `pid` (from /proc), deepest last."""
    found: list[int] = []
    parents = {pid}
    try:
        entries = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return found
    changed = True
    while changed:
        changed = False
        for entry in entries:
            if entry in parents or entry in found:
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid in parents:
                found.append(entry)
                parents.add(entry)
                changed = True
    return found


def _start_or_skip(directory: Path, **kwargs: Any) -> SshdServer:
    from tests.backends import missing_backend

    try:
        return start_sshd(directory, **kwargs)
    except FileNotFoundError as exc:
        missing_backend("sshd", str(exc))
        raise  # unreachable: missing_backend skips or fails


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """A session-wide sshd on 127.0.0.1 (see SshdServer); stopped at the end of the session."""
    server = _start_or_skip(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def sshd_factory(tmp_path_factory: pytest.TempPathFactory):
    """Start extra sshd servers for one test: `sshd_factory(**start_sshd kwargs)`."""
    servers: list[SshdServer] = []

    def make(**kwargs: Any) -> SshdServer:
        server = _start_or_skip(tmp_path_factory.mktemp("sshd"), **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill_sessions()
