"""A service with a network and a volume, against a real dockerd of the tests' own."""

from __future__ import annotations

import pytest

from tests.docker_engine import docker_engine  # noqa: F401 - session fixture
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

pytestmark = pytest.mark.backend("docker")


@pytest.fixture
def client(docker_engine):  # noqa: F811
    import docker

    api = docker.DockerClient(base_url=docker_engine.host)
    yield api
    api.close()


def service(tmp_path, project, mode="one", memory="64MiB"):
    return write_manifest(
        str(tmp_path / "decl.yaml"), project,
        containers={f"{project}-db": busybox(
            networks=[f"{project}-net"], volumes=[f"{project}-data:/data"],
            env={"MODE": mode}, memory=memory, restart="unless-stopped",
            ports=["127.0.0.1::8080"])},
        networks={f"{project}-net": {"subnet": "10.77.0.0/24"}},
        volumes={f"{project}-data": {}},
    )


def test_create_then_plan_is_empty_then_env_replaces_and_memory_updates(tmp_path, client):
    manifest = service(tmp_path, "svc1")
    apply(manifest)
    info = container(client, "svc1-db")
    assert info["State"]["Running"]
    assert info["Config"]["Labels"]["io.decl.project"] == "svc1"
    assert info["Config"]["Labels"]["io.decl.address"] == "container.svc1-db"
    assert set(info["NetworkSettings"]["Networks"]) == {"svc1-net"}
    assert client.volumes.get("svc1-data").attrs["Labels"]["io.decl.project"] == "svc1"
    assert_no_changes(manifest)

    # memory: updated in place, same container
    manifest = service(tmp_path, "svc1", memory="96MiB")
    plan = plan_json(manifest)
    assert actions(plan) == {"container.svc1-db": "update"}
    apply(manifest)
    after = container(client, "svc1-db")
    assert after["Id"] == info["Id"]
    assert after["HostConfig"]["Memory"] == 96 * 1024**2
    assert_no_changes(manifest)

    # env: a replace whose cause names the field
    manifest = service(tmp_path, "svc1", mode="two", memory="96MiB")
    plan = plan_json(manifest)
    assert actions(plan) == {"container.svc1-db": "replace"}
    assert "env.MODE" in plan["changes"][0]["cause"]
    apply(manifest)
    replaced = container(client, "svc1-db")
    assert replaced["Id"] != info["Id"]
    assert "MODE=two" in replaced["Config"]["Env"]
    assert_no_changes(manifest)


def test_stopped_outside_decl_is_drift_and_started_again(tmp_path, client):
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc2",
                              containers={"svc2-app": busybox()})
    apply(manifest)
    client.containers.get("svc2-app").stop(timeout=5)
    plan = plan_json(manifest)
    change = plan["changes"][0]
    assert (change["action"], change["origin"]) == ("start", "drift")
    assert "stopped" in change["cause"]
    apply(manifest)
    assert container(client, "svc2-app")["State"]["Running"]
    assert_no_changes(manifest)


def test_unlabelled_container_with_the_same_name_is_a_conflict_and_untouched(tmp_path, client):
    theirs = client.containers.run("decl-test/busybox:1", ["sleep", "3600"], name="svc3-web",
                                   detach=True, init=True, environment={"OWNER": "someone"})
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc3",
                              containers={"svc3-web": busybox(env={"OWNER": "decl"})})
    plan = plan_json(manifest)
    assert actions(plan) == {"container.svc3-web": "conflict"}
    assert "adopt: true" in plan["changes"][0]["cause"]
    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode != 0
    info = container(client, "svc3-web")
    assert info["Id"] == theirs.id and info["State"]["Running"]
    assert "OWNER=someone" in info["Config"]["Env"]
    assert not (info["Config"]["Labels"] or {}).get("io.decl.project")

    # adopt: true takes it over (recreated with the manifest's settings and the marks)
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc3",
                              containers={"svc3-web": busybox(env={"OWNER": "decl"},
                                                              adopt=True)})
    assert actions(plan_json(manifest)) == {"container.svc3-web": "adopt"}
    apply(manifest)
    info = container(client, "svc3-web")
    assert info["Config"]["Labels"]["io.decl.project"] == "svc3"
    assert "OWNER=decl" in info["Config"]["Env"]
    assert_no_changes(manifest)


def test_prune_removes_an_orphan_and_nothing_else(tmp_path, client):
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc4",
                              containers={"svc4-keep": busybox(), "svc4-gone": busybox()})
    apply(manifest)
    foreign = client.containers.run("decl-test/busybox:1", ["sleep", "3600"], name="svc4-other",
                                    detach=True, init=True)
    other_project = write_manifest(str(tmp_path / "other.yaml"), "svc4b",
                                   containers={"svc4b-x": busybox()})
    apply(other_project)

    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc4",
                              containers={"svc4-keep": busybox()})
    plan = plan_json(manifest)
    assert [o["address"] for o in plan["orphans"]] == ["container.svc4-gone"]
    assert actions(plan) == {}  # listed, not deleted without --prune
    apply(manifest)
    assert container(client, "svc4-gone") is not None

    apply(manifest, "--prune")
    assert container(client, "svc4-gone") is None
    assert container(client, "svc4-keep")["State"]["Running"]
    assert container(client, "svc4-other")["Id"] == foreign.id
    assert container(client, "svc4b-x") is not None
    assert_no_changes(manifest)


def test_destroy_keeps_a_protected_volume(tmp_path, client):
    manifest = write_manifest(
        str(tmp_path / "decl.yaml"), "svc5",
        containers={"svc5-db": busybox(volumes=["svc5-keep:/data", "svc5-scratch:/tmp"],
                                       networks=["svc5-net"])},
        networks={"svc5-net": {}},
        volumes={"svc5-keep": {}, "svc5-scratch": {"lifecycle": {"prevent_destroy": False}}},
    )
    apply(manifest)
    done = decl("destroy", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert container(client, "svc5-db") is None
    names = {v.name for v in client.volumes.list()}
    assert "svc5-keep" in names
    assert "svc5-scratch" not in names
    assert "svc5-net" not in {n.name for n in client.networks.list()}


def test_state_absent_volume_is_an_error_unless_unprotected(tmp_path, client):
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc6",
                              volumes={"svc6-data": {}})
    apply(manifest)
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc6",
                              volumes={"svc6-data": {"state": "absent"}})
    plan = plan_json(manifest)
    assert plan["errors"] and "prevent_destroy" in plan["errors"][0]["message"]
    assert decl("apply", "-y", "-f", manifest).returncode != 0
    assert client.volumes.get("svc6-data")


def test_network_used_by_a_foreign_container_is_not_deleted(tmp_path, client):
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc7",
                              networks={"svc7-net": {}})
    apply(manifest)
    client.containers.run("decl-test/busybox:1", ["sleep", "3600"], name="svc7-visitor",
                          detach=True, init=True, network="svc7-net")
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc7",
                              networks={"svc7-net": {"state": "absent"}})
    plan = plan_json(manifest)
    assert plan["errors"], plan
    assert "svc7-visitor" in plan["errors"][0]["message"]
    # decl destroy: the apply refuses and says why; the network stays
    done = decl("destroy", "-y", "-f", manifest)
    assert "svc7-visitor" in done.stdout + done.stderr
    assert client.networks.get("svc7-net")
    # With the network wanted present, destroy keeps it and the plan says why.
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc7", networks={"svc7-net": {}})
    done = decl("destroy", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept: network svc7-net is still used by svc7-visitor (not in this project)" in \
        done.stdout
    assert client.networks.get("svc7-net")
    # As an orphan, --prune keeps it too, with a note.
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc7")
    done = decl("apply", "-y", "--prune", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "orphan kept: network svc7-net is still used by svc7-visitor" in done.stdout
    assert client.networks.get("svc7-net")


def test_bad_engine_url_makes_the_provider_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "svc8",
                              containers={"svc8-x": busybox()})
    plan = plan_json(manifest)
    assert plan["unavailable"], plan
    assert "nothing.sock" in plan["unavailable"][0]["message"]
