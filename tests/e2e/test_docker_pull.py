"""Image pulls against a local registry (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import pytest

from tests.docker_engine import TEST_IMAGE, docker_engine, docker_registry  # noqa: F401
from tests.e2e.docker_helpers import (
    actions,
    apply,
    assert_no_changes,
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


def push(engine, registry, ref: str, env: dict[str, str] | None = None) -> str:
    """Put a busybox image in the registry as `ref` and remove it locally; returns its ID."""
    image_id = engine.import_image(f"{registry}/{ref}", env=env)
    engine.docker("push", f"{registry}/{ref}", check=True)
    engine.docker("rmi", f"{registry}/{ref}", check=True)
    return image_id


def app(image: str, pull: str) -> dict:
    return {"image": image, "pull": pull, "command": ["sleep", "3600"], "init": True}


def test_pull_missing_pulls_with_progress_then_plan_is_empty(tmp_path, client, docker_engine,  # noqa: F811
                                                             docker_registry):  # noqa: F811
    image = f"{docker_registry}/decl/pull1:1"
    push(docker_engine, docker_registry, "decl/pull1:1")
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "pull1",
                              containers={"pull1-app": app(image, "missing")})
    done = apply(manifest)
    assert f"pulling {image}" in done.stdout
    assert container(client, "pull1-app")["State"]["Running"]
    assert_no_changes(manifest)


def test_pull_never_with_a_missing_image_fails_at_plan_time(tmp_path, client,
                                                            docker_registry):  # noqa: F811
    image = f"{docker_registry}/decl/absent:1"
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "pull2",
                              containers={"pull2-app": app(image, "never")},
                              networks={"pull2-net": {}})
    plan = plan_json(manifest)
    assert plan["errors"], plan
    assert image in plan["errors"][0]["message"] and "pull: never" in plan["errors"][0]["message"]
    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode != 0
    # nothing was half-done
    assert container(client, "pull2-app") is None
    assert "pull2-net" not in {n.name for n in client.networks.list()}


def test_failed_pull_names_the_image_and_the_registry_message(tmp_path, client,
                                                              docker_registry):  # noqa: F811
    image = f"{docker_registry}/decl/nosuch:9"
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "pull3",
                              containers={"pull3-app": app(image, "missing")})
    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert f"pulling image {image} failed" in text
    assert "manifest unknown" in text or "not found" in text
    assert container(client, "pull3-app") is None


def test_a_moved_tag_is_a_change_only_with_pull_always(tmp_path, client, docker_engine,  # noqa: F811
                                                       docker_registry):  # noqa: F811
    image = f"{docker_registry}/decl/moving:1"
    first = push(docker_engine, docker_registry, "decl/moving:1")
    always = write_manifest(str(tmp_path / "always.yaml"), "pull4",
                            containers={"pull4-a": app(image, "always")})
    missing = write_manifest(str(tmp_path / "missing.yaml"), "pull5",
                             containers={"pull5-m": app(image, "missing")})
    apply(always)
    apply(missing)
    assert container(client, "pull4-a")["Image"] == container(client, "pull5-m")["Image"]
    assert_no_changes(always)

    # the registry's tag now points at another image
    push(docker_engine, docker_registry, "decl/moving:1", env={"VERSION": "2"})
    assert_no_changes(missing)
    plan = plan_json(always)
    assert actions(plan) == {"container.pull4-a": "replace"}
    assert "image" in plan["changes"][0]["cause"]
    apply(always)
    info = container(client, "pull4-a")
    assert "VERSION=2" in (client.api.inspect_image(info["Image"])["Config"]["Env"] or [])
    assert_no_changes(always)
    # the pull moved the local tag too; with pull: missing that is still no change
    assert_no_changes(missing)
    assert first  # the first image ID was real


def test_image_compared_by_id_a_retag_is_no_change(tmp_path, client, docker_engine):  # noqa: F811
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "pull6",
                              containers={"pull6-app": app(TEST_IMAGE, "never")})
    apply(manifest)
    docker_engine.docker("tag", TEST_IMAGE, "decl-test/alias:7", check=True)
    manifest = write_manifest(str(tmp_path / "decl.yaml"), "pull6",
                              containers={"pull6-app": app("decl-test/alias:7", "never")})
    assert_no_changes(manifest)
