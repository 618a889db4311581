"""Inspect data -> the same comparable spec the manifest side gives (pure functions).

What the engine fills in by itself is taken out so that it never shows as a difference:
environment variables and labels inherited from the image, the image's command and
entrypoint when the manifest leaves them to the image, decl's own labels, the default
`bridge` attachment, `:rw` on binds, string host ports.
"""

from __future__ import annotations

from typing import Any

from decl.core.resource import Marks
from decl.providers.docker import spec as canon

DECL_LABEL_PREFIX = "io.decl."
# Variables Podman puts in every container's Config.Env (Docker adds none).
PODMAN_ENV = frozenset({"HOME", "HOSTNAME", "TERM", "container"})


def container_state(attrs: dict[str, Any]) -> str:
    """`running`, `paused` or `stopped` (created, exited and dead count as stopped)."""
    status = (attrs.get("State") or {}).get("Status", "")
    if status in ("running", "restarting"):
        return "running"
    if status == "paused":
        return "paused"
    return "stopped"


def _without_inherited(
    values: dict[str, str], inherited: dict[str, str], wanted: dict[str, Any] | None
) -> dict[str, str]:
    """Drop entries equal to the image's, except those the manifest names itself."""
    wanted = wanted or {}
    return {k: v for k, v in sorted(values.items())
            if k in wanted or inherited.get(k, object()) != v}


def _random_ports_as_asked(observed: list[str], wanted: list[str] | None) -> list[str]:
    """Podman records the host port it picked for `IP::PORT`: compare it as asked."""
    if not wanted:
        return observed
    random = {(ip, cp, proto) for text in wanted
              for ip, hp, cp, proto in canon.port_bindings(text) if not hp}
    result = set()
    for text in observed:
        (ip, hp, cp, proto), = canon.port_bindings(text)
        if hp and text not in wanted and (ip, cp, proto) in random:
            text = canon.port_text(ip, "", cp, proto)
        result.add(text)
    return sorted(result)


def _argv_or_empty(value: Any) -> list[str]:
    return list(value) if value else []


def container_spec(
    attrs: dict[str, Any],
    image_attrs: dict[str, Any] | None,
    desired: dict[str, Any] | None,
    image_value: str,
    podman: bool = False,
) -> dict[str, Any]:
    """The comparable spec of a container from `docker inspect` data.

    `image_attrs` is the inspect data of the container's image (None if gone); `desired` the
    manifest's spec for it (None for an orphan); `image_value` what the image compares as
    (worked out by the caller, who may have asked the registry). With `podman`, what
    Podman adds by itself (a few variables, mount options) is left out too.
    """
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    image_config = (image_attrs or {}).get("Config") or {}

    entrypoint = config.get("Entrypoint") or None
    image_entrypoint = image_config.get("Entrypoint") or None
    if desired is not None:
        entrypoint_given = desired.get("entrypoint") != canon.IMAGE_DEFAULT
        command_given = desired.get("command") != canon.IMAGE_DEFAULT
    else:
        entrypoint_given = entrypoint != image_entrypoint
        command_given = True
    if not entrypoint_given and entrypoint == image_entrypoint:
        entrypoint_value: Any = canon.IMAGE_DEFAULT
    else:
        entrypoint_value = _argv_or_empty(entrypoint)
    # The engine copies the image's CMD only when the entrypoint is not overridden.
    default_cmd = None if entrypoint_given else (image_config.get("Cmd") or None)
    command = config.get("Cmd") or None
    if command == default_cmd and (desired is None or not command_given):
        command_value: Any = canon.IMAGE_DEFAULT
    else:
        command_value = _argv_or_empty(command)

    labels = {k: v for k, v in (config.get("Labels") or {}).items()
              if not k.startswith(DECL_LABEL_PREFIX)}
    want = desired or {}
    env = canon.env_pairs(config.get("Env"))
    image_env = canon.env_pairs(image_config.get("Env"))
    drop = canon.DEFAULT_BIND_OPTIONS
    if podman:
        env = {k: v for k, v in env.items() if k not in PODMAN_ENV or k in (want.get("env") or {})}
        drop = drop | canon.PODMAN_VOLUME_OPTIONS
    networks = dict((attrs.get("NetworkSettings") or {}).get("Networks") or {})
    if host.get("NetworkMode") in ("default", "", None):
        networks.pop("bridge", None)

    return {
        "image": image_value,
        "command": command_value,
        "entrypoint": entrypoint_value,
        "env": _without_inherited(env, image_env, want.get("env")),
        "ports": _random_ports_as_asked(canon.ports_from_bindings(host.get("PortBindings")),
                                        want.get("ports")),
        "volumes": sorted({canon.volume(b, expand_home=False, drop=drop)
                           for b in host.get("Binds") or []}),
        "networks": sorted(networks),
        "restart": canon.restart_from_policy(host.get("RestartPolicy")),
        "memory": host.get("Memory") or None,
        "cpus": (host.get("NanoCpus") or 0) / 1e9 or None,
        "user": config.get("User") or None,
        "workdir": config.get("WorkingDir") or None,
        "hostname": config.get("Hostname") or None,
        "labels": _without_inherited(labels, image_config.get("Labels") or {},
                                     want.get("labels")),
        "init": bool(host.get("Init")),
        "healthcheck": canon.healthcheck_from_config(config.get("Healthcheck")),
    }


def container_name(attrs: dict[str, Any]) -> str:
    """The name without the engine's leading slash."""
    name = attrs.get("Name") or ""
    if not name and attrs.get("Names"):
        name = attrs["Names"][0]
    return name.lstrip("/")


def labels_of(attrs: dict[str, Any]) -> dict[str, str]:
    """Labels of a container, network or volume inspect document."""
    if "Config" in attrs:
        return dict((attrs.get("Config") or {}).get("Labels") or {})
    return dict(attrs.get("Labels") or {})


def marks_of(attrs: dict[str, Any]) -> Marks | None:
    """decl's marks on an object, if any."""
    return Marks.from_labels(labels_of(attrs))


def network_spec(attrs: dict[str, Any]) -> dict[str, Any]:
    """The comparable spec of a network from `docker network inspect` data."""
    pools = [c for c in ((attrs.get("IPAM") or {}).get("Config") or [])
             if ":" not in (c.get("Subnet") or "")]
    first = pools[0] if pools else {}
    return {
        "driver": attrs.get("Driver") or "bridge",
        "subnet": first.get("Subnet") or None,
        "gateway": first.get("Gateway") or None,
        "internal": bool(attrs.get("Internal")),
    }


def network_users(attrs: dict[str, Any]) -> list[str]:
    """Names of the containers attached to a network (needs a non-sparse inspect)."""
    return sorted((c.get("Name") or cid[:12]) for cid, c in (attrs.get("Containers") or {}).items())


def volume_spec(attrs: dict[str, Any]) -> dict[str, Any]:
    """The comparable spec of a volume from `docker volume inspect` data."""
    return {"driver": attrs.get("Driver") or "local", "options": dict(attrs.get("Options") or {})}
