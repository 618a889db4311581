"""libvirtd for the tests, and the small things VM tests need (disk images, an HTTP server).

`libvirtd` (session fixture): when `virsh -c qemu:///system version --daemon` already
answers, that daemon is used and left running; otherwise `virtlogd -d` and
`libvirtd -d -p PIDFILE` are started here and stopped by their pid at the end. libvirt's
`default` network is started if it is not active (it needs dnsmasq).
The /dev/kvm trap: where /dev/kvm exists with mode 0600 (no udev), libvirt probes QEMU
again on every `virsh define` (60 s each); as root the fixture gives it group kvm, mode 0660.

Usable without pytest (bench/ uses `start_libvirtd()`).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.backends import missing_backend

URI = "qemu:///system"


def virsh(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run virsh against the system daemon."""
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _answers() -> bool:
    try:
        return virsh("version", "--daemon", timeout=20).returncode == 0
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return False


def fix_kvm_permissions() -> None:
    """/dev/kvm 0600 makes every define take a minute: give it group kvm, mode 0660."""
    if os.geteuid() != 0 or not os.path.exists("/dev/kvm"):
        return
    mode = stat.S_IMODE(os.stat("/dev/kvm").st_mode)
    if mode & 0o060 == 0o060:
        return
    subprocess.run(["chgrp", "kvm", "/dev/kvm"], check=False, capture_output=True)
    os.chmod("/dev/kvm", mode | 0o060)


@dataclass
class Libvirtd:
    """A libvirtd the tests use; `pidfile` is set when the tests started it."""

    pidfile: str | None
    virtlogd_pid: int | None = None

    def stop(self) -> None:
        """Stop the daemons this fixture started (by pid), never a system one."""
        for pid in (self._pid(), self.virtlogd_pid):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 15)

    def _pid(self) -> int | None:
        if not self.pidfile:
            return None
        try:
            with open(self.pidfile) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None


def start_libvirtd(timeout: float = 60) -> Libvirtd:
    """Use the running libvirtd, or start one; RuntimeError when it cannot come up."""
    for tool in ("virsh", "libvirtd", "qemu-img"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            raise FileNotFoundError(f"{tool} is not installed")
    fix_kvm_permissions()
    if _answers():
        daemon = Libvirtd(pidfile=None)
    else:
        if os.geteuid() != 0:
            raise RuntimeError("starting libvirtd for qemu:///system needs root")
        directory = tempfile.mkdtemp(prefix="decl-libvirtd-")
        pidfile = os.path.join(directory, "libvirtd.pid")
        virtlogd_pid = None
        if subprocess.run(["pgrep", "-x", "virtlogd"], capture_output=True).returncode != 0:
            logd_pidfile = os.path.join(directory, "virtlogd.pid")
            subprocess.run(["virtlogd", "-d", "-p", logd_pidfile], check=False)
            with contextlib.suppress(OSError, ValueError):
                time.sleep(0.2)
                virtlogd_pid = int(open(logd_pidfile).read().strip())
        subprocess.run(["libvirtd", "-d", "-p", pidfile], check=True)
        daemon = Libvirtd(pidfile=pidfile, virtlogd_pid=virtlogd_pid)
        deadline = time.monotonic() + timeout
        while not _answers():
            if time.monotonic() > deadline:
                daemon.stop()
                raise RuntimeError(f"libvirtd did not answer within {timeout} s")
            time.sleep(0.5)
    info = virsh("net-info", "default")
    if info.returncode == 0 and "Active:         no" in info.stdout:
        virsh("net-start", "default")
    return daemon


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[Libvirtd]:
    """A libvirtd answering at qemu:///system for the whole session."""
    try:
        daemon = start_libvirtd()
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as exc:
        missing_backend("libvirt", str(exc))
        raise
    yield daemon
    daemon.stop()


def default_network_active() -> bool:
    """Whether libvirt's `default` network is up (nat mode needs it)."""
    return "default" in virsh("net-list", "--name").stdout.split()


def shared_dir(prefix: str) -> str:
    """A temp directory libvirt's qemu user can reach (0755 on the way down)."""
    base = "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(path, 0o755)
    return path


def make_qcow2(path: str, size: str = "16M") -> str:
    """A tiny qcow2 image made with qemu-img."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, size], check=True)
    return path


def undefine_all(prefix: str) -> None:
    """Remove test domains whose names start with `prefix` (cleanup after a failure)."""
    names = virsh("list", "--all", "--name").stdout.split()
    for name in names:
        if name.startswith(prefix):
            virsh("destroy", name)
            virsh("undefine", name, "--nvram")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/truncated/"):
            name = self.path[len("/truncated/"):]
            data = open(os.path.join(self.directory, name), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data) + 4096))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@contextlib.contextmanager
def http_server(directory: str) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port); yields the base URL.

    `/truncated/NAME` sends half of NAME while announcing more (a broken-off download).
    """
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
