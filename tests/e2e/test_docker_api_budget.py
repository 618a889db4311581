"""How many Engine API calls decl makes: counted by a proxy socket, never timed.

Creating a running container costs three calls (create, start, and the one inspect that
verifies it); the image, the network and the lists are asked once per run whatever the
number of containers. The budget is pinned as the difference between two applies of 2 and
6 containers, so the fixed calls of a run (version, lists) do not blur it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter

import pytest

from tests.docker_engine import docker_engine  # noqa: F401 - session fixture
from tests.e2e.api_counter import ApiCounter
from tests.e2e.docker_helpers import DECL, ROOT, busybox, write_manifest

pytestmark = pytest.mark.backend("docker")

WRITES = ("POST", "PUT", "DELETE")


def kinds(calls: Counter[str]) -> Counter[str]:
    """Routes with object names folded: 'GET /containers/api6-c0/json' -> '.../{name}/json'."""
    folded: Counter[str] = Counter()
    for name, count in calls.items():
        name = re.sub(r"^(GET|POST|DELETE) /(containers|networks|volumes)/(?!json$|create$)"
                      r"[^/]+", r"\1 /\2/{name}", name)
        name = re.sub(r"^GET /images/.+/json$", "GET /images/{ref}/json", name)
        folded[name] += count
    return folded


def apply_counted(counter: ApiCounter, tmp_path, n: int) -> Counter[str]:
    """`decl apply -y` of one network and N running containers through the proxy."""
    project = f"api{n}"
    manifest = write_manifest(
        str(tmp_path / f"{project}.yaml"), project,
        networks={f"{project}-net": {}},
        containers={f"{project}-c{i}": busybox(networks=[f"{project}-net"], pull="never")
                    for i in range(n)})
    counter.reset()
    done = subprocess.run([*DECL, "apply", "-y", "-f", manifest], capture_output=True,
                          text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "DOCKER_HOST": counter.url})
    assert done.returncode == 0, done.stdout + done.stderr
    return kinds(counter.reset())


@pytest.fixture
def counter(docker_engine):  # noqa: F811
    proxy = ApiCounter(docker_engine.host[len("unix://"):])
    yield proxy
    proxy.close()


def test_a_created_container_costs_three_calls_and_the_rest_is_once_per_run(tmp_path,
                                                                            counter):
    small = apply_counted(counter, tmp_path, 2)
    large = apply_counted(counter, tmp_path, 6)
    for n, calls in ((2, small), (6, large)):
        assert calls["POST /containers/create"] == n, calls
        assert calls["POST /containers/{name}/start"] == n, calls
        assert calls["GET /containers/{name}/json"] == n, calls  # the verify: one each
        assert calls["POST /networks/create"] == 1, calls
        assert calls["GET /networks/{name}"] == 1, calls  # the network's verify
        assert calls["GET /networks"] == 1, calls  # discovery's list, not one per verify
        assert calls["GET /containers/json"] == 1, calls
    # once per run, not per container: the image (discovery's check of `pull: never`, the
    # creates' presence check, the config the verify compares with)
    assert large["GET /images/{ref}/json"] == small["GET /images/{ref}/json"] <= 3, large
    extra = sum(large.values()) - sum(small.values())
    assert extra <= 3 * 4, (small, large)

    # the same manifest again: nothing written, one inspect per container
    again = apply_counted(counter, tmp_path, 6)
    assert not [name for name in again if name.startswith(WRITES)], again
    assert again["GET /containers/{name}/json"] == 6, again
    assert sum(again.values()) <= 6 + 6, again
