"""The same provider against Podman's docker-compatible socket."""

from __future__ import annotations

import pytest

from tests.docker_engine import podman_engine  # noqa: F401 - module fixture
from tests.e2e.docker_helpers import (
    actions,
    apply,
    assert_no_changes,
    busybox,
    container,
    decl,
    plan_json,
    write_manifest,
)

pytestmark = pytest.mark.backend("podman")


@pytest.fixture
def client(podman_engine):  # noqa: F811
    import docker

    api = docker.DockerClient(base_url=podman_engine.host)
    yield api
    api.close()


def service(tmp_path, mode="one", memory="64MiB"):
    return write_manifest(
        str(tmp_path / "decl.yaml"), "pm",
        containers={"pm-db": busybox(
            networks=["pm-net"], volumes=["pm-data:/data", f"{tmp_path}:/host:ro"],
            env={"MODE": mode}, memory=memory, restart="unless-stopped",
            ports=["127.0.0.1::8080"], healthcheck={"test": ["CMD", "true"]})},
        networks={"pm-net": {"subnet": "10.99.7.0/24"}},
        volumes={"pm-data": {}},
    )


def test_podman_service_lifecycle(tmp_path, client):
    done = decl("providers", "-f", service(tmp_path))
    assert "podman" in done.stdout
    manifest = service(tmp_path)
    apply(manifest)
    info = container(client, "pm-db")
    assert info["State"]["Running"]
    assert info["Config"]["Labels"]["io.decl.project"] == "pm"
    assert_no_changes(manifest)

    # Podman 4 has no update endpoint in its docker API: the update recreates, and says so.
    manifest = service(tmp_path, memory="96MiB")
    assert actions(plan_json(manifest)) == {"container.pm-db": "update"}
    done = apply(manifest)
    assert "cannot update containers in place" in done.stdout
    after = container(client, "pm-db")
    assert after["HostConfig"]["Memory"] == 96 * 1024**2
    assert after["Config"]["Labels"]["io.decl.project"] == "pm"
    assert_no_changes(manifest)

    manifest = service(tmp_path, mode="two", memory="96MiB")
    plan = plan_json(manifest)
    assert actions(plan) == {"container.pm-db": "replace"}
    assert "env.MODE" in plan["changes"][0]["cause"]
    apply(manifest)
    assert_no_changes(manifest)

    client.containers.get("pm-db").stop(timeout=5)
    assert actions(plan_json(manifest)) == {"container.pm-db": "start"}
    apply(manifest)
    assert container(client, "pm-db")["State"]["Running"]

    done = decl("destroy", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert container(client, "pm-db") is None
    assert "pm-data" in {v.name for v in client.volumes.list()}
