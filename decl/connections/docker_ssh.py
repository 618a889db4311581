"""A docker SDK client that reaches a host's engine through decl's own SSH connection.

docker-py's `ssh://` support opens a second SSH connection of its own, with only
~/.ssh/config and the system known_hosts: the host's `known_hosts`, `identity_file`,
passphrase, `accept_new_host_key` and jump host would not apply. This client instead runs
`docker system dial-stdio` (what the docker CLI does for ssh:// engines) on a channel of
the host's shared SshConnection, one channel per HTTP connection, and speaks the Docker API
over it. The host needs the docker CLI on its PATH, as for the CLI's own ssh:// support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decl.connections.ssh import SshConnection

DIAL = ("docker", "system", "dial-stdio")


def docker_client(conn: SshConnection, timeout: float = 120, version: str = "auto",
                  max_pool_size: int = 10) -> Any:
    """A docker.DockerClient whose every request goes through `conn` (an SshConnection)."""
    import docker
    from docker.constants import DEFAULT_DOCKER_API_VERSION
    from docker.transport.sshconn import SSHConnection, SSHConnectionPool, SSHHTTPAdapter

    class _Channel(SSHConnection):  # type: ignore[misc]
        def connect(self) -> None:
            channel = conn.exec_stream(list(DIAL))
            channel.settimeout(self.timeout)
            self.sock = channel

    class _Pool(SSHConnectionPool):  # type: ignore[misc]
        def _new_conn(self) -> _Channel:
            return _Channel(None, self.timeout, conn.host)

    class _Adapter(SSHHTTPAdapter):  # type: ignore[misc]
        def __init__(self) -> None:
            # shell_out=True: docker-py makes no paramiko client of its own.
            super().__init__(f"ssh://{conn.host}", timeout=timeout, shell_out=True,
                             max_pool_size=max_pool_size)

        def get_connection(self, url: Any, proxies: Any = None) -> _Pool:
            with self.pools.lock:
                pool: _Pool | None = self.pools.get(url)
                if pool is None:
                    pool = _Pool(None, timeout=self.timeout, maxsize=self.max_pool_size,
                                 host=conn.host)
                    self.pools[url] = pool
            return pool

    fixed = DEFAULT_DOCKER_API_VERSION if version == "auto" else version
    api = docker.APIClient(base_url="tcp://decl-ssh.invalid:2375", version=fixed,
                           timeout=timeout, max_pool_size=max_pool_size)
    adapter = _Adapter()
    api.mount("http+docker://ssh", adapter)
    api._custom_adapter = adapter
    api._unmount("http://", "https://")
    api.base_url = "http+docker://ssh"
    if version == "auto":
        api._version = api._retrieve_server_version()
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    return client
