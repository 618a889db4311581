"""The bodies decl posts to a local engine are the ones the docker SDK would send."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from decl.providers.docker import create

LABELS = {"io.decl.project": "p", "io.decl.address": "container.c1"}
FULL = {
    "image": "busybox:1", "command": ["sleep", "1"], "entrypoint": ["/bin/sh", "-c"],
    "env": {"A": "1", "B": "two words"}, "labels": {"x": "y"},
    "ports": ["127.0.0.1:8080:80/tcp", "53:53/udp", "9000"],
    "volumes": ["data:/data:rw", "/h:/c:ro"], "networks": ["n1", "n2"],
    "restart": "on-failure:3", "memory": 104857600, "cpus": 0.5, "user": "1000",
    "workdir": "/w", "hostname": "h", "init": True,
    "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "timeout": "1s", "retries": 3,
                    "start_period": "2s"},
}
MINIMAL = {"image": "busybox:1", "command": "(image default)", "entrypoint": "(image default)",
           "env": {}, "labels": {}, "ports": [], "volumes": [], "networks": [],
           "restart": "no", "memory": None, "cpus": None, "user": None, "workdir": None,
           "hostname": None, "init": False, "healthcheck": None}


def sdk_body(spec: dict[str, Any]) -> dict[str, Any]:
    """What docker-py posts for create.container_kwargs(spec), captured without an engine."""
    sent: dict[str, Any] = {}
    api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")

    def post_json(url, data=None, params=None, **kwargs):
        sent.update(url=url, data=data, params=params)
        return object()

    api._post_json = post_json
    api._result = lambda response, json=False: {"Id": "0" * 64}
    client = type("Client", (), {"api": api})()
    create.create_container(client, create.container_kwargs("c1", spec, LABELS))
    assert sent["params"] == {"name": "c1"}
    return sent["data"]


def meaningful(value: Any) -> Any:
    """Drop what the engine treats as unset (None, False, empty) at every level."""
    if isinstance(value, dict):
        kept = {k: meaningful(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, False, {}, [], "")}
    if isinstance(value, list):
        return [meaningful(v) for v in value]
    return value


@pytest.mark.parametrize("spec", [FULL, MINIMAL, {**MINIMAL, "networks": ["only"]}],
                         ids=["full", "minimal", "one-network"])
def test_container_body_matches_the_sdk(spec):
    ours = create.container_body("c1", spec, LABELS)
    theirs = sdk_body(spec)
    # docker-py 7 writes the first network as {name: None}; the API form is EndpointsConfig.
    their_networking = theirs.pop("NetworkingConfig", None)
    our_networking = ours.pop("NetworkingConfig", None)
    assert meaningful(ours) == meaningful(theirs)
    if spec["networks"]:
        assert our_networking == {"EndpointsConfig": {spec["networks"][0]: {}}}
        assert their_networking == {spec["networks"][0]: None}
    else:
        assert our_networking is None


def test_network_body_has_the_subnet():
    body = create.network_body("n", {"driver": "bridge", "subnet": "10.9.0.0/24",
                                     "gateway": "10.9.0.1", "internal": True}, {"k": "v"})
    assert body == {"Name": "n", "Driver": "bridge", "Internal": True, "Labels": {"k": "v"},
                    "CheckDuplicate": True,
                    "IPAM": {"Driver": "default",
                             "Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}}
