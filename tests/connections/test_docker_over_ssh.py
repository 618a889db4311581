"""The docker SDK through decl's SSH connection (`docker system dial-stdio` on the host)."""

from __future__ import annotations

import pytest

from decl.connections.docker_ssh import docker_client
from decl.connections.ssh import SshConnection
from decl.manifest.model import Host
from tests.docker_engine import TEST_IMAGE, docker_engine  # noqa: F401
from tests.sshd import sshd_factory  # noqa: F401

pytestmark = pytest.mark.backend("sshd")


def test_docker_api_over_the_hosts_own_ssh_connection(docker_engine, sshd_factory):  # noqa: F811
    server = sshd_factory(env={"DOCKER_HOST": docker_engine.host})
    conn = SshConnection.open("box", Host(**server.manifest_host()))
    try:
        client = docker_client(conn)
        assert any(TEST_IMAGE in image.tags for image in client.images.list())
        output = client.containers.run(TEST_IMAGE, ["echo", "it's $(here)"], remove=True)
        assert output == b"it's $(here)\n"
        client.close()
        # Every API call rode on the one SSH login decl made.
        assert server.log().count("Accepted publickey") == 1
    finally:
        conn.close()
