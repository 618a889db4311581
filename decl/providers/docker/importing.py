"""`decl import` for Docker: unmarked containers, networks and volumes, and the manifest
entries that describe containers exactly as the engine runs them."""

from __future__ import annotations

from typing import Any

from decl.core.resource import Marks, Observed
from decl.core.units import format_size
from decl.providers.base import ImportNotSupported
from decl.providers.docker import images, normalise
from decl.providers.docker import spec as canon
from decl.providers.docker.reader import EngineNotFound, Reader

# Networks every engine has: never offered for import.
BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "podman"})


def inventory(reader: Reader, host: str, provider: str) -> list[Observed]:
    """Every container, network and volume without decl's marks, read from the engine."""
    found: list[Observed] = []
    cache = images.ImageCache(reader)
    podman = reader.is_podman
    for summary in reader.containers():
        if Marks.from_labels(summary.get("Labels")) is not None:
            continue
        try:
            attrs = reader.inspect_container(summary["Id"])
        except EngineNotFound:  # removed meanwhile
            continue
        name = normalise.container_name(attrs)
        value = canon.image_ref((attrs.get("Config") or {}).get("Image") or "")
        spec = normalise.container_spec(attrs, cache.get(attrs.get("Image") or ""), None, value,
                                        podman=podman)
        found.append(Observed(
            address=f"container.{name}", kind="container", name=name, provider=provider,
            host=host, state=normalise.container_state(attrs), spec=spec, marks=None,
            handle={"id": attrs["Id"]}))
    for attrs in reader.networks():
        name = attrs.get("Name") or ""
        if name in BUILTIN_NETWORKS or normalise.marks_of(attrs) is not None:
            continue
        found.append(Observed(
            address=f"network.{name}", kind="network", name=name, provider=provider,
            host=host, state="present", spec=normalise.network_spec(attrs), marks=None,
            handle={"id": attrs.get("Id")}))
    for attrs in reader.volumes():
        name = attrs.get("Name") or ""
        if normalise.marks_of(attrs) is not None:
            continue
        found.append(Observed(
            address=f"volume.{name}", kind="volume", name=name, provider=provider, host=host,
            state="present", spec=normalise.volume_spec(attrs), marks=None,
            handle={"id": name}))
    return found


def to_manifest(observed: Observed) -> dict[str, Any]:
    """The manifest entry of an unmarked container (networks and volumes cannot be adopted:
    the engine cannot add labels to them)."""
    if observed.kind != "container":
        raise ImportNotSupported(
            f"the engine cannot add labels to an existing "
            f"{observed.kind}, so decl cannot adopt it; containers can use it by name without "
            "it being in the manifest")
    spec = observed.spec
    entry: dict[str, Any] = {"image": spec["image"]}
    if observed.state == "stopped":
        entry["state"] = "stopped"
    for key in ("command", "entrypoint"):
        if spec.get(key) != canon.IMAGE_DEFAULT:
            entry[key] = list(spec.get(key) or [])
    for key in ("env", "ports", "volumes", "networks", "labels"):
        if spec.get(key):
            entry[key] = spec[key]
    if spec.get("restart") not in (None, "no"):
        entry["restart"] = spec["restart"]
    if spec.get("memory"):
        entry["memory"] = format_size(int(spec["memory"]))
    for key in ("cpus", "user", "workdir"):
        if spec.get(key) is not None:
            entry[key] = spec[key]
    # The engine names the host after the container's ID unless it was given one.
    hostname = spec.get("hostname")
    if hostname and not str(observed.handle.get("id", "")).startswith(hostname):
        entry["hostname"] = hostname
    if spec.get("init"):
        entry["init"] = True
    if spec.get("healthcheck"):
        entry["healthcheck"] = {k: v for k, v in spec["healthcheck"].items() if v is not None}
    return entry
