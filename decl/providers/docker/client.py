"""One docker SDK client per host, made on first use (the only module importing `docker`)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, cast

from decl.connections.base import Connection
from decl.errors import ConnectionFailed

if TYPE_CHECKING:
    from decl.connections.ssh import SshConnection

_clients: dict[str, Any] = {}
_lock = threading.Lock()

# Seconds an engine call may take (pulls and stops run longer: they pass their own).
TIMEOUT = 120
# HTTP connections the SDK keeps open per engine: one per change that can run at once
# (`--parallelism` goes up to 64). The SDK's default of 10 would close and reopen a
# connection (over SSH: a new `docker system dial-stdio` channel) for every call beyond it.
MAX_POOL_SIZE = 64


def engine_url(host: str, config: Any, environ: dict[str, str] | None = None) -> str:
    """The engine URL for a host.

    `local`: DOCKER_HOST, else the host's `docker_url`, else the default socket. Another host:
    its `docker_url`, else `ssh://user@address:port` from its SSH settings.
    """
    environ = dict(os.environ if environ is None else environ)
    url = getattr(config, "docker_url", None)
    if host == "local":
        return str(environ.get("DOCKER_HOST") or url or "unix:///var/run/docker.sock")
    if url:
        return str(url)
    address = getattr(config, "address", None) or host
    user = getattr(config, "user", None)
    port = getattr(config, "port", None)
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    return f"ssh://{user + '@' if user else ''}{address}{':' + str(port) if port else ''}"


def tls_config(config: Any) -> Any:
    """A docker.tls.TLSConfig from the host's `docker_tls` files, or None."""
    files = getattr(config, "docker_tls", None)
    if not files:
        return None
    import docker.tls

    def path(key: str) -> str | None:
        value = files.get(key)
        return os.path.expanduser(value) if value else None

    cert = (path("client_cert"), path("client_key")) if files.get("client_cert") else None
    ca = path("ca_cert")
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=ca or True)


def get_client(host: str, config: Any, conn: Connection | None = None) -> Any:
    """The cached DockerClient for a host; ConnectionFailed when it cannot be made.

    A remote host without its own `docker_url` is reached through decl's SSH connection to it
    (`docker system dial-stdio` on its channels), so known_hosts, keys, passphrases and jump
    hosts apply exactly as for every other provider, over the same connection.
    """
    url = engine_url(host, config)
    if (conn is not None and not conn.is_local and hasattr(conn, "exec_stream")
            and not getattr(config, "docker_url", None)):
        url = f"decl-ssh://{host}"
    key = f"{host}|{url}"
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        try:
            import docker
        except ImportError as exc:  # pragma: no cover - docker is a dependency
            raise ConnectionFailed(host, "unavailable", f"the docker SDK is missing: {exc}") \
                from None
        kwargs: dict[str, Any] = {"base_url": url, "timeout": TIMEOUT, "version": "auto",
                                  "max_pool_size": MAX_POOL_SIZE}
        if url.startswith("tcp://"):
            tls = tls_config(config)
            if tls is not None:
                kwargs["tls"] = tls
        try:
            if url.startswith("decl-ssh://"):
                from decl.connections.docker_ssh import docker_client

                # an SshConnection: the url is decl-ssh:// only when conn has exec_stream
                client = docker_client(cast("SshConnection", conn), timeout=TIMEOUT,
                                       max_pool_size=MAX_POOL_SIZE)
            elif url.startswith("ssh://"):
                client = _ssh_client(url, config)
            else:
                client = docker.DockerClient(**kwargs)
        except docker.errors.DockerException as exc:
            raise ConnectionFailed(host, "docker", f"cannot reach the engine at {url}: "
                                   f"{_short(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - paramiko and socket errors
            raise ConnectionFailed(host, "docker", f"cannot reach the engine at {url}: "
                                   f"{type(exc).__name__}: {_short(exc)}") from None
        _clients[key] = client
        return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _ssh_client(url: str, config: Any) -> Any:
    """A DockerClient over `ssh://` through paramiko, honouring the manifest's SSH settings.

    The SDK's own SSH adapter reads only ~/.ssh/config and ~/.ssh/known_hosts; decl's adapter
    adds the host's identity_file, known_hosts, accept_new_host_key and connect_timeout. The
    remote side runs `docker system dial-stdio`, so the docker CLI must be installed there.
    """
    import docker
    from docker.transport.sshconn import SSHHTTPAdapter

    class Adapter(SSHHTTPAdapter):  # type: ignore[misc]
        def _create_paramiko_client(self, base_url: str) -> None:
            import paramiko

            super()._create_paramiko_client(base_url)
            identity = getattr(config, "identity_file", None)
            if identity:
                self.ssh_params["key_filename"] = os.path.expanduser(identity)
            known = getattr(config, "known_hosts", None)
            if known and os.path.exists(os.path.expanduser(known)):
                self.ssh_client.load_host_keys(os.path.expanduser(known))
            if getattr(config, "accept_new_host_key", False):
                self.ssh_client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            self.ssh_params["timeout"] = getattr(config, "connect_timeout", None) or 10

    # use_ssh_client=True only stops the SDK from connecting with its own adapter; ours
    # replaces it before any request.
    api = docker.APIClient(base_url=url, timeout=TIMEOUT, version="1.24", use_ssh_client=True,
                           max_pool_size=MAX_POOL_SIZE)
    adapter = Adapter(url, TIMEOUT, shell_out=False, max_pool_size=MAX_POOL_SIZE)
    api._custom_adapter = adapter
    api.mount("http+docker://ssh", adapter)
    api._version = api.version(api_version=False)["ApiVersion"]
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client
