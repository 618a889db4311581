"""A remote engine reached with `ssh://user@host:port` (paramiko), built from the Host."""

from __future__ import annotations

import pytest

from tests.backends import missing_backend
from tests.docker_engine import docker_engine  # noqa: F401 - session fixture
from tests.e2e.docker_helpers import (
    apply,
    assert_no_changes,
    busybox,
    container,
    decl,
    plan_json,
    write_manifest,
)

pytestmark = pytest.mark.backend("docker")


@pytest.fixture
def remote(tmp_path, docker_engine):  # noqa: F811
    from tests.sshd import start_sshd

    try:
        # The remote side runs `docker system dial-stdio`: point it at the tests' engine.
        server = start_sshd(tmp_path / "sshd", env={"DOCKER_HOST": docker_engine.host})
    except FileNotFoundError as exc:
        missing_backend("sshd", str(exc))
    yield server
    server.stop()


def test_container_on_an_ssh_host(tmp_path, remote, monkeypatch, docker_engine):  # noqa: F811
    import docker

    # `local`'s engine is elsewhere: only the ssh:// path can reach the tests' engine.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-local-engine.sock")
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "remote",
                              hosts={"box": remote.manifest_host()},
                              containers={"remote-app": busybox(host="box", env={"A": "1"})})
    done = decl("providers", "-f", manifest)
    assert "box" in done.stdout and "API" in done.stdout, done.stdout + done.stderr
    apply(manifest)
    assert_no_changes(manifest)
    client = docker.DockerClient(base_url=docker_engine.host)
    assert container(client, "remote-app")["Config"]["Labels"]["io.decl.project"] == "remote"
    client.close()


def test_unknown_host_key_is_refused(tmp_path, remote, docker_engine):  # noqa: F811
    host = remote.manifest_host(known_hosts=str(tmp_path / "empty_known_hosts"))
    (tmp_path / "empty_known_hosts").write_text("")
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "remote2", hosts={"box": host},
                              containers={"remote2-app": busybox(host="box")})
    plan = plan_json(manifest)
    assert plan["unavailable"], plan
