"""Desired spec -> SDK arguments, and the update API body."""

from __future__ import annotations

from decl.manifest.model import Container, Host
from decl.providers.base import DesiredContext
from decl.providers.docker import create
from decl.providers.docker.client import engine_url
from decl.providers.docker.provider import container_spec

CONTEXT = DesiredContext(project="lab", base_dir="/base")


def test_container_kwargs_carry_every_field_and_the_marks():
    spec = container_spec(Container(
        image="decl-test/busybox:1", command="sleep 5", env={"A": "1"},
        ports=["127.0.0.1:8080:80", "9000"], volumes=["data:/data"], networks=["b", "a"],
        restart="on-failure:2", memory="64MiB", cpus=0.5, user="nobody", workdir="/tmp",
        hostname="h1", labels={"tier": "x"}, init=True,
        healthcheck={"test": ["CMD", "true"], "interval": "10s"},
    ), CONTEXT)
    kwargs = create.container_kwargs("db", spec, {"io.decl.project": "lab"})
    assert kwargs["name"] == "db"
    assert kwargs["command"] == ["sleep", "5"]
    assert kwargs["entrypoint"] is None
    assert kwargs["environment"] == {"A": "1"}
    assert kwargs["ports"] == {"80/tcp": [("127.0.0.1", "8080")], "9000/tcp": [("", "")]}
    assert kwargs["volumes"] == ["data:/data:rw"]
    assert kwargs["network"] == "a" and create.extra_networks(spec) == ["b"]
    assert kwargs["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert kwargs["mem_limit"] == 64 * 1024**2
    assert kwargs["nano_cpus"] == 500_000_000
    assert (kwargs["user"], kwargs["working_dir"], kwargs["hostname"]) == ("nobody", "/tmp", "h1")
    assert kwargs["labels"] == {"tier": "x", "io.decl.project": "lab"}
    assert kwargs["init"] is True
    assert kwargs["healthcheck"] == {"test": ["CMD", "true"], "interval": 10_000_000_000,
                                     "timeout": 30_000_000_000, "retries": 3}


def test_update_body_moves_swap_with_memory():
    body = create.update_body({"memory": 128 * 1024**2, "cpus": 1.5, "restart": "always"})
    assert body == {"Memory": 128 * 1024**2, "MemorySwap": 256 * 1024**2,
                    "NanoCpus": 1_500_000_000,
                    "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}


def test_engine_urls():
    assert engine_url("local", None, {"DOCKER_HOST": "unix:///x.sock"}) == "unix:///x.sock"
    assert engine_url("local", Host(docker_url="tcp://1.2.3.4:2376"), {}) == "tcp://1.2.3.4:2376"
    assert engine_url("local", None, {}) == "unix:///var/run/docker.sock"
    nas = Host(address="10.0.0.5", user="admin", port=2222)
    assert engine_url("nas", nas, {"DOCKER_HOST": "unix:///ignored"}) == \
        "ssh://admin@10.0.0.5:2222"
    assert engine_url("nas", Host(), {}) == "ssh://nas"
    assert engine_url("nas", Host(docker_url="tcp://nas:2376"), {}) == "tcp://nas:2376"
