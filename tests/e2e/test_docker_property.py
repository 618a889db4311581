"""Property: for random container specs applied one after another, plan is empty after each.

The same container is carried through every example, so the transitions (replace, live
update, stop, start) are exercised too. Unmarked objects on the engine are never touched.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.docker_engine import TEST_IMAGE, docker_engine  # noqa: F401
from tests.e2e.docker_helpers import apply, container, decl, write_manifest

pytestmark = pytest.mark.backend("docker")

RUNS = [  # (entrypoint, command): every pair keeps the container running
    (None, ["sleep", "3600"]),
    (None, "sleep 3600"),
    (["sleep"], ["3600"]),
    ("/bin/sleep 3600", None),
    (["/bin/sh", "-c"], ["sleep 3600"]),
]
NAMES = st.text(alphabet="ABCDEFGHIJ_", min_size=1, max_size=4)
VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=8)


@st.composite
def container_specs(draw, bind_dir: str) -> dict:
    entrypoint, command = draw(st.sampled_from(RUNS))
    state = draw(st.sampled_from(["running", "running", "stopped"]))
    spec: dict = {
        "image": TEST_IMAGE, "pull": draw(st.sampled_from(["missing", "never"])),
        "state": state,
        "env": draw(st.dictionaries(NAMES, VALUES, max_size=3)),
        "ports": draw(st.lists(st.sampled_from(
            ["80", "127.0.0.1::81", "8053/udp", "127.0.0.1::90-91"]), max_size=2, unique=True)),
        "volumes": draw(st.lists(st.sampled_from(
            ["prop-a:/a", "prop-b:/b:ro", f"{bind_dir}:/host", f"{bind_dir}:/host-ro:ro"]),
            max_size=3, unique_by=lambda v: v.split(":")[1])),
        "networks": draw(st.lists(st.sampled_from(["prop-n1", "prop-n2"]), max_size=2,
                                  unique=True)),
        "restart": draw(st.sampled_from(["no", "always", "unless-stopped", "on-failure",
                                         "on-failure:3"])),
        "init": True if state == "stopped" else draw(st.booleans()),
        "labels": draw(st.dictionaries(st.sampled_from(["tier", "team", "x.y"]), VALUES,
                                       max_size=2)),
    }
    if entrypoint is not None:
        spec["entrypoint"] = entrypoint
    if command is not None:
        spec["command"] = command
    optional = {
        "memory": st.sampled_from(["32MiB", "48MiB", "64MiB", 100 * 1024 * 1024]),
        "cpus": st.floats(min_value=0.01, max_value=2.0, allow_nan=False),
        "user": st.sampled_from(["nobody", "0:0", "65534"]),
        "workdir": st.sampled_from(["/tmp", "/data"]),
        "hostname": st.sampled_from(["alpha", "beta-1"]),
        "healthcheck": st.builds(
            lambda test, interval, retries: {"test": test, "interval": interval,
                                             "retries": retries},
            st.sampled_from([["CMD", "true"], ["CMD-SHELL", "true"], ["NONE"]]),
            st.sampled_from([None, "5s", "1m30s", "1500ms"]),
            st.sampled_from([None, 0, 3])),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    return spec


@pytest.fixture(scope="module")
def bystander(docker_engine):  # noqa: F811
    """An unmarked container that must never be touched."""
    done = docker_engine.docker("run", "-d", "--init", "--name", "prop-bystander", TEST_IMAGE,
                                "sleep", "3600", check=True)
    return done.stdout.decode().strip()


@settings(max_examples=int(os.environ.get("DECL_PROPERTY_EXAMPLES", "10")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_apply_then_plan_is_empty(tmp_path_factory, bystander, data):
    bind_dir = str(tmp_path_factory.getbasetemp() / "prop-bind")
    os.makedirs(bind_dir, exist_ok=True)
    spec = data.draw(container_specs(bind_dir))
    manifest = write_manifest(
        str(tmp_path_factory.getbasetemp() / "prop.yaml"), "prop",
        containers={"prop-c": spec},
        networks={"prop-n1": {}, "prop-n2": {"internal": True}},
        volumes={"prop-a": {}, "prop-b": {}},
    )
    apply(manifest)
    done = decl("plan", "--detailed-exitcode", "-f", manifest)
    assert done.returncode == 0, f"{spec}\n{done.stdout}{done.stderr}"
    info = container(_client(), "prop-c")
    assert info["State"]["Running"] == (spec["state"] == "running")
    by = container(_client(), "prop-bystander")
    assert by["Id"] == bystander and by["State"]["Running"]
    assert not (by["Config"]["Labels"] or {}).get("io.decl.project")


_CLIENT = []


def _client():
    if not _CLIENT:
        import docker

        _CLIENT.append(docker.DockerClient(base_url=os.environ["DOCKER_HOST"]))
    return _CLIENT[0]
