"""A Docker engine of the tests' own: dockerd in a temp dir, a busybox image, a local registry.

The daemon runs with vfs storage, no iptables and no default bridge, on a socket in a
temporary directory, so that it never meets a system daemon. `DOCKER_HOST` points at it for
the whole session. The test image is made by `docker import` of a root file system holding
the static busybox: no registry is needed. The local registry (Debian's `docker-registry`)
listens on 127.0.0.1 only and is started by the tests that pull.

Usable without pytest too (bench/ starts the same engine): see `Engine.start()`.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

import pytest

from tests.backends import missing_backend

TEST_IMAGE = "decl-test/busybox:1"
BUSYBOX_LINKS = ("sh", "sleep", "true", "false", "cat", "echo", "env", "ls", "httpd", "id")


def _wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout} s")


def busybox_rootfs_tar(extra_env: dict[str, str] | None = None) -> bytes:
    """A tar of a root file system with /bin/busybox and links to it."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "data", "etc"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for name in BUSYBOX_LINKS:
            info = tarfile.TarInfo(f"bin/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


@dataclass
class Engine:
    """A running dockerd of our own."""

    root: str
    host: str = ""
    proc: subprocess.Popen | None = None
    registry_proc: subprocess.Popen | None = None
    registry: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, root: str | None = None) -> Engine:
        """Start dockerd in `root` (a new temp dir by default) and build the test image."""
        if os.geteuid() != 0:
            raise RuntimeError("dockerd needs root")
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        # Unix socket paths are limited to 108 bytes: keep the directory short.
        root = root or tempfile.mkdtemp(prefix="decl-dk-", dir="/tmp")
        sock = os.path.join(root, "docker.sock")
        engine = cls(root=root, host=f"unix://{sock}")
        log = open(os.path.join(root, "dockerd.log"), "wb")  # noqa: SIM115 - kept for the daemon
        engine.proc = subprocess.Popen(
            ["dockerd", "--data-root", f"{root}/data", "--exec-root", f"{root}/exec",
             "--pidfile", f"{root}/pid", "-H", engine.host, "--storage-driver=vfs",
             "--iptables=false", "--bridge=none"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        engine.env = {"DOCKER_HOST": engine.host}
        try:
            _wait_for(lambda: engine.docker("version").returncode == 0 or engine.proc.poll()
                      is not None, 30, "dockerd")
            if engine.proc.poll() is not None:
                raise RuntimeError("dockerd exited: " + engine.log_tail())
            engine.import_image(TEST_IMAGE)
        except BaseException:
            engine.stop()
            raise
        return engine

    def log_tail(self, lines: int = 20) -> str:
        """The end of dockerd's log."""
        try:
            with open(os.path.join(self.root, "dockerd.log"), "rb") as handle:
                return b"".join(handle.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def docker(self, *args: str, input: bytes | None = None, check: bool = False):
        """Run the docker CLI against this engine."""
        done = subprocess.run(["docker", *args], input=input, capture_output=True,
                              env={**os.environ, **self.env}, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.decode().strip()}")
        return done

    def import_image(self, ref: str, env: dict[str, str] | None = None,
                     labels: dict[str, str] | None = None, cmd: str = '["/bin/sh"]') -> str:
        """`docker import` the busybox root file system as `ref`; returns the image ID."""
        changes = ["-c", f"CMD {cmd}", "-c", 'ENV PATH=/bin']
        for key, value in (env or {}).items():
            changes += ["-c", f"ENV {key}={value}"]
        for key, value in (labels or {}).items():
            changes += ["-c", f"LABEL {key}={value}"]
        done = self.docker("import", *changes, "-", ref, input=busybox_rootfs_tar(), check=True)
        return done.stdout.decode().strip()

    def start_registry(self) -> str:
        """Start Debian's docker-registry on 127.0.0.1:<free port>; returns host:port."""
        if self.registry:
            return self.registry
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = os.path.join(self.root, "registry.yml")
        with open(config, "w") as handle:
            handle.write(
                "version: 0.1\nlog: {level: error}\n"
                f"storage: {{filesystem: {{rootdirectory: {self.root}/registry}}}}\n"
                f"http: {{addr: 127.0.0.1:{port}}}\n"
            )
        log = open(os.path.join(self.root, "registry.log"), "wb")  # noqa: SIM115
        self.registry_proc = subprocess.Popen([binary, "serve", config], stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return self.registry_proc.poll() is not None

        _wait_for(ready, 15, "docker-registry")
        if self.registry_proc.poll() is not None:
            raise RuntimeError("docker-registry exited")
        self.registry = f"127.0.0.1:{port}"
        return self.registry

    def stop(self) -> None:
        """Stop what we started, by pid, and remove the temp dir.

        Containers and networks go first: a stopped dockerd leaves its bridges on the host.
        """
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.decode().split()
            if ids:
                self.docker("rm", "-f", *ids)
            self.docker("network", "prune", "-f")
        for proc in (self.registry_proc, self.proc):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        subprocess.run(["umount", "-R", f"{self.root}/exec"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PodmanEngine:
    """Podman's docker-compatible API service in a temp dir (vfs storage, own conf)."""

    root: str
    host: str = ""
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls) -> PodmanEngine:
        """Start `podman system service` on a socket of its own and import the test image."""
        if shutil.which("podman") is None:
            raise RuntimeError("podman is not installed (apt-get install podman catatonit)")
        root = tempfile.mkdtemp(prefix="decl-pm-", dir="/tmp")
        conf = os.path.join(root, "containers.conf")
        with open(conf, "w") as handle:
            # Without these limits podman cannot start containers on these machines.
            handle.write('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                         '"nproc=4096:4096"]\n'
                         f'[network]\nnetwork_config_dir = "{root}/networks"\n')
        engine = cls(root=root, host=f"unix://{root}/podman.sock")
        engine.env = {"CONTAINERS_CONF": conf, "DOCKER_HOST": engine.host}
        log = open(os.path.join(root, "podman.log"), "wb")  # noqa: SIM115
        engine.proc = subprocess.Popen(
            [*engine.podman_argv(), "system", "service", "--time=0", engine.host],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **engine.env},
        )
        try:
            _wait_for(lambda: os.path.exists(f"{root}/podman.sock") or engine.proc.poll()
                      is not None, 30, "podman system service")
            if engine.proc.poll() is not None:
                raise RuntimeError("podman system service exited")
            done = subprocess.run(["docker", "import", "-c", 'CMD ["/bin/sh"]', "-c",
                                   "ENV PATH=/bin", "-", TEST_IMAGE],
                                  input=busybox_rootfs_tar(), capture_output=True,
                                  env={**os.environ, **engine.env}, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"docker import into podman: {done.stderr.decode()}")
        except BaseException:
            engine.stop()
            raise
        return engine

    def podman_argv(self) -> list[str]:
        """podman with this engine's storage."""
        return ["podman", "--root", f"{self.root}/root", "--runroot", f"{self.root}/run",
                "--storage-driver", "vfs"]

    def stop(self) -> None:
        """Remove the containers (their conmon processes outlive the service), stop it."""
        env = {**os.environ, **self.env}
        subprocess.run([*self.podman_argv(), "rm", "-af", "-t", "0"], capture_output=True,
                       env=env, timeout=120)
        # Networks live in this engine's own network_config_dir: all of them are ours.
        listed = subprocess.run([*self.podman_argv(), "network", "ls", "--format",
                                 "{{.Name}}"], capture_output=True, env=env, timeout=60)
        for name in listed.stdout.decode().split():
            if name != "podman":
                subprocess.run([*self.podman_argv(), "network", "rm", "-f", name],
                               capture_output=True, env=env, timeout=60)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        subprocess.run(["umount", "-R", f"{self.root}/run"], capture_output=True)
        subprocess.run(["umount", "-R", f"{self.root}/root"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_engine():
    """The session's own dockerd (DOCKER_HOST set for the whole session)."""
    if os.geteuid() != 0:
        missing_backend("docker", "dockerd needs root")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        missing_backend("docker", "dockerd/docker not installed (apt-get install docker.io)")
    if shutil.which("busybox") is None:
        missing_backend("docker", "busybox not installed (apt-get install busybox-static)")
    try:
        engine = Engine.start()
    except RuntimeError as exc:
        missing_backend("docker", str(exc))
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = engine.host
    try:
        yield engine
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
        engine.stop()


@pytest.fixture(scope="session")
def docker_registry(docker_engine):
    """The local registry on 127.0.0.1 (host:port)."""
    if shutil.which("docker-registry") is None:
        missing_backend("docker", "docker-registry not installed (apt-get install docker-registry)")
    return docker_engine.start_registry()


@pytest.fixture(scope="module")
def podman_engine():
    """Podman's docker-compatible socket; DOCKER_HOST points at it for the module."""
    if os.geteuid() != 0:
        missing_backend("podman", "the podman service of the tests runs as root")
    if shutil.which("podman") is None or shutil.which("docker") is None:
        missing_backend("podman", "podman not installed (apt-get install podman catatonit)")
    try:
        engine = PodmanEngine.start()
    except RuntimeError as exc:
        missing_backend("podman", str(exc))
    saved = {k: os.environ.get(k) for k in engine.env}
    os.environ.update(engine.env)
    try:
        yield engine
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        engine.stop()
