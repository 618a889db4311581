"""Inspect captures (docker 20.10, API 1.41) -> comparable specs, and the manifest side.

The captures in captures/ are verbatim `docker inspect` output of containers made with the
docker CLI (so binds lack `:rw`, as the CLI stores them):
- plain: `docker run -d --name plain --init decl-test/busybox:1 sleep 1000` (default network
  mode, on an engine without the default bridge), then `docker network connect labnet2 plain`
- c2: `docker run -d --name c2 --init --network labnet -p 127.0.0.1:18080:80 -p 9000
  -v pgdata:/data -m 64m --cpus 0.5 -e FOO=bar decl-test/busybox:1 sleep 1000`, then
  updated to memory 32MiB (swap 64MiB), 1.5 CPUs, restart unless-stopped
- hc: `docker run -d --name hc --init --entrypoint /bin/sh --health-cmd true
  --health-interval 1m30s --health-retries 3 -u nobody -w /tmp --hostname hc-host
  -l tier=back --restart on-failure:3 --network labnet -v /tmp/dkt/site:/site
  -v pgdata:/data:ro -p 5353:53/udp decl-test/busybox:1 -c "sleep 1000"`
"""

from __future__ import annotations

import json
import os

import pytest

from decl.manifest.model import Container
from decl.providers.base import DesiredContext
from decl.providers.docker import normalise
from decl.providers.docker import spec as canon
from decl.providers.docker.provider import DockerProvider, container_spec

CAPTURES = os.path.join(os.path.dirname(__file__), "captures")


def capture(name: str) -> dict:
    with open(os.path.join(CAPTURES, name + ".json")) as handle:
        return json.load(handle)


CONTEXT = DesiredContext(project="lab", base_dir="/tmp/dkt")


def desired_of(**fields) -> dict:
    return container_spec(Container(**fields), CONTEXT)


def observed_of(name: str, desired: dict | None) -> dict:
    attrs = capture(name)
    value = desired["image"] if desired else canon.image_ref(attrs["Config"]["Image"])
    return normalise.container_spec(attrs, capture("image_busybox"), desired, value)


def assert_converged(desired: dict, observed: dict) -> None:
    for key, want in desired.items():
        if key == "pull" or want is None:
            continue
        assert observed[key] == want, key


def test_plain_container_matches_a_minimal_manifest():
    desired = desired_of(image="decl-test/busybox:1", command=["sleep", "1000"], init=True,
                         networks=["labnet2"])
    observed = observed_of("container_plain", desired)
    assert_converged(desired, observed)
    # The image's PATH is inherited, not a difference; the default bridge is not listed.
    assert observed["env"] == {}
    assert observed["networks"] == ["labnet2"]
    assert observed["entrypoint"] == canon.IMAGE_DEFAULT


def test_c2_ports_volumes_env_and_live_fields():
    desired = desired_of(
        image="decl-test/busybox:1", command="sleep 1000", init=True, networks=["labnet"],
        ports=["127.0.0.1:18080:80", 9000], volumes=["pgdata:/data"], memory="32MiB",
        cpus=1.5, env={"FOO": "bar"}, restart="unless-stopped",
    )
    observed = observed_of("container_c2", desired)
    assert_converged(desired, observed)
    assert observed["ports"] == ["127.0.0.1:18080:80/tcp", "9000/tcp"]
    assert observed["volumes"] == ["pgdata:/data:rw"]
    assert observed["memory"] == 32 * 1024**2
    assert observed["cpus"] == 1.5


def test_hc_entrypoint_healthcheck_user_workdir_labels():
    desired = desired_of(
        image="decl-test/busybox:1", entrypoint="/bin/sh", command=["-c", "sleep 1000"],
        init=True, networks=["labnet"], ports=["5353:53/udp"], user="nobody", workdir="/tmp",
        hostname="hc-host", labels={"tier": "back"}, restart="on-failure:3",
        volumes=["./site:/site", "pgdata:/data:ro"],
        healthcheck={"test": ["CMD-SHELL", "true"], "interval": "90s", "retries": 3},
    )
    observed = observed_of("container_hc", desired)
    assert_converged(desired, observed)
    assert observed["healthcheck"]["interval"] == "1m30s"
    assert observed["restart"] == "on-failure:3"


def test_a_changed_env_value_shows_against_the_capture():
    desired = desired_of(image="decl-test/busybox:1", command="sleep 1000", init=True,
                         networks=["labnet"], env={"FOO": "baz"})
    observed = observed_of("container_c2", desired)
    assert observed["env"] == {"FOO": "bar"}
    assert observed["env"] != desired["env"]


def test_env_set_to_the_image_value_is_kept_when_the_manifest_names_it():
    desired = desired_of(image="decl-test/busybox:1", command="sleep 1000", env={"PATH": "/bin"})
    observed = observed_of("container_plain", desired)
    assert observed["env"] == {"PATH": "/bin"}


def test_command_left_to_the_image_compares_as_image_default():
    attrs = capture("container_plain")
    attrs["Config"]["Cmd"] = ["/bin/sh"]  # what the engine copies from the image
    desired = desired_of(image="decl-test/busybox:1")
    observed = normalise.container_spec(attrs, capture("image_busybox"), desired,
                                        desired["image"])
    assert observed["command"] == canon.IMAGE_DEFAULT == desired["command"]
    # ...but an explicit command equal to the image's is reported as a list.
    desired = desired_of(image="decl-test/busybox:1", command=["/bin/sh"])
    observed = normalise.container_spec(attrs, capture("image_busybox"), desired,
                                        desired["image"])
    assert observed["command"] == ["/bin/sh"] == desired["command"]


def test_entrypoint_override_without_command_does_not_inherit_cmd():
    attrs = capture("container_hc")
    attrs["Config"]["Cmd"] = None
    desired = desired_of(image="decl-test/busybox:1", entrypoint=["/bin/sh"])
    observed = normalise.container_spec(attrs, capture("image_busybox"), desired,
                                        desired["image"])
    assert observed["command"] == canon.IMAGE_DEFAULT


def test_orphan_container_spec_without_desired():
    observed = observed_of("container_hc", None)
    assert observed["entrypoint"] == ["/bin/sh"]
    assert observed["command"] == ["-c", "sleep 1000"]
    assert observed["labels"] == {"tier": "back"}


def test_state_and_name_and_marks():
    attrs = capture("container_c2")
    assert normalise.container_state(attrs) == "running"
    assert normalise.container_name(attrs) == "c2"
    assert normalise.marks_of(attrs) is None
    attrs["State"]["Status"] = "exited"
    assert normalise.container_state(attrs) == "stopped"
    attrs["Config"]["Labels"] = {"io.decl.project": "lab", "io.decl.address": "container.c2",
                                 "io.decl.spec-hash": "abc"}
    marks = normalise.marks_of(attrs)
    assert (marks.project, marks.address, marks.spec_hash) == ("lab", "container.c2", "abc")
    # decl's own labels never show as a label difference
    assert observed_of("container_plain", None)["labels"] == {}


def test_list_summary_names_have_a_slash_and_are_stripped():
    names = sorted(normalise.container_name(s) for s in capture("containers_list"))
    assert "c2" in names and all(not n.startswith("/") for n in names)


def test_network_and_volume_specs():
    # `docker network create --subnet 10.55.0.0/24 labnet`: no gateway in the IPAM config.
    assert normalise.network_spec(capture("network_labnet")) == {
        "driver": "bridge", "subnet": "10.55.0.0/24", "gateway": None, "internal": False,
    }
    provider = DockerProvider()
    from decl.manifest.model import DockerNetwork, DockerVolume

    want = provider.spec("network", "labnet", DockerNetwork(subnet="10.55.0.0/24"), CONTEXT)
    have = normalise.network_spec(capture("network_labnet"))
    assert {k: have[k] for k in want if want[k] is not None} == \
        {k: v for k, v in want.items() if v is not None}
    assert normalise.volume_spec(capture("volume_pgdata")) == \
        provider.spec("volume", "pgdata", DockerVolume(), CONTEXT)


@pytest.mark.parametrize("given, canonical", [
    ("80", ["80/tcp"]),
    ("8080:80", ["8080:80/tcp"]),
    ("127.0.0.1:8080:80/udp", ["127.0.0.1:8080:80/udp"]),
    ("127.0.0.1::80", ["127.0.0.1::80/tcp"]),
    ("8000-8001:9000-9001", ["8000:9000/tcp", "8001:9001/tcp"]),
    ("[::1]:8080:80", ["::1:8080:80/tcp"]),
])
def test_port_forms(given, canonical):
    assert canon.ports([given]) == canonical


@pytest.mark.parametrize("bad", ["http", "1:2:3:4", "80/xyz", "8000-8002:9000-9001", "0"])
def test_bad_ports_are_named(bad):
    with pytest.raises(Exception, match="port"):
        canon.ports([bad])


def test_port_bindings_round_trip_through_the_engine_form():
    from decl.providers.docker.create import port_map

    specs = canon.ports(["127.0.0.1:8080:80", "9000", "5353:53/udp"])
    bindings = {
        key: [{"HostIp": ip, "HostPort": port} for ip, port in value]
        for key, value in port_map(specs).items()
    }
    assert canon.ports_from_bindings(bindings) == specs


@pytest.mark.parametrize("given, canonical", [
    ("data:/data", "data:/data:rw"),
    ("data:/data:ro", "data:/data:ro"),
    ("./site:/site", "/base/site:/site:rw"),
    ("/srv:/srv:z", "/srv:/srv:rw,z"),
    ("/srv:/srv:ro,z", "/srv:/srv:ro,z"),
])
def test_volume_forms(given, canonical):
    assert canon.volume(given, "/base") == canonical
    assert canon.volume(canonical, "/elsewhere") == canonical  # idempotent


def test_volume_without_target_is_an_error():
    with pytest.raises(Exception, match="SOURCE:TARGET"):
        canon.volume("/data")


@pytest.mark.parametrize("text, ns, back", [
    ("30s", 30_000_000_000, "30s"), ("1m30s", 90_000_000_000, "1m30s"),
    ("500ms", 500_000_000, "500ms"), ("2h", 7_200_000_000_000, "2h"), ("90", 90_000_000_000,
                                                                          "1m30s"),
])
def test_durations(text, ns, back):
    assert canon.parse_duration(text) == ns
    assert canon.format_duration(ns) == back


def test_restart_forms():
    assert canon.restart("on-failure:0") == "on-failure"
    assert canon.restart_from_policy({"Name": "", "MaximumRetryCount": 0}) == "no"
    assert canon.restart_from_policy({"Name": "on-failure", "MaximumRetryCount": 3}) == \
        "on-failure:3"
    assert canon.restart_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_image_refs():
    assert canon.image_ref("busybox") == "busybox:latest"
    assert canon.image_ref("127.0.0.1:5000/x") == "127.0.0.1:5000/x:latest"
    assert canon.split_image_ref("127.0.0.1:5000/x:2") == ("127.0.0.1:5000/x", "2")
    assert canon.image_ref("x@sha256:ab") == "x@sha256:ab"


def test_reserved_label_prefix_is_refused():
    with pytest.raises(Exception, match="reserved"):
        desired_of(image="x", labels={"io.decl.project": "other"})


def test_cpus_round_like_the_engine():
    assert canon.cpus(0.3333333333333) == canon.nano_cpus(0.3333333333333) / 1e9
    assert canon.cpus(1.5) == 1.5
