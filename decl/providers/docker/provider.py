"""The Docker provider: containers, networks and volumes through the Docker engine API.

Works with any engine speaking the Docker API: the local socket, `ssh://` (paramiko),
`tcp://` with TLS, and Podman's docker-compatible socket.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from decl.core.plan import Action, Change
from decl.core.resource import MARK_PROJECT, Desired, Marks, Observed, address_of
from decl.core.traits import KindTraits, Policy
from decl.errors import ConnectionFailed, ProviderError
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.docker import create, images, normalise
from decl.providers.docker import spec as canon
from decl.providers.docker.client import engine_url, get_client
from decl.providers.docker.reader import (
    EngineError,
    EngineNotFound,
    Reader,
    UnixReader,
    reader_for,
)

CONTAINER_TRAITS = KindTraits(
    policies={"restart": Policy.LIVE, "memory": Policy.LIVE, "cpus": Policy.LIVE,
              "pull": Policy.IGNORE},
    default_policy=Policy.REPLACE,
    size_fields=frozenset({"memory"}),
)


def in_use_by_others(observed: Observed) -> str | None:
    """Why a network or volume must be kept: containers outside this project still use it."""
    foreign = [u for u in observed.handle.get("users", []) if u.endswith("(not in this project)")]
    if not foreign:
        return None
    return f"{observed.kind} {observed.name} is still used by {', '.join(foreign)}"


NETWORK_TRAITS = KindTraits(default_policy=Policy.REPLACE, has_run_state=False,
                            keep=in_use_by_others)
VOLUME_TRAITS = KindTraits(
    default_policy=Policy.REPLACE, has_run_state=False, default_prevent_destroy=True,
    destroys_data="the volume's data", keep=in_use_by_others,
)
STOP_TIMEOUT = 10


class DockerProvider(Provider):
    """Containers, networks and volumes on a Docker (or Podman) engine."""

    name = "docker"
    kinds = ("container", "network", "volume")
    traits = {"container": CONTAINER_TRAITS, "network": NETWORK_TRAITS,
              "volume": VOLUME_TRAITS}

    # -- the manifest side -----------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The canonical spec of a manifest container, network or volume."""
        if kind == "container":
            return container_spec(model, context)
        if kind == "network":
            if model.gateway and not model.subnet:
                raise ProviderError(f"network {name}: a gateway needs a subnet")
            return {"driver": model.driver, "subnet": model.subnet, "gateway": model.gateway,
                    "internal": model.internal}
        return {"driver": model.driver, "options": dict(model.options)}

    # -- discovery ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Import the docker SDK (0.2 s) while discovery reads the engine over its socket."""
        import docker  # noqa: F401
        import docker.errors  # noqa: F401
        import docker.types  # noqa: F401

    def check(self, conn: Any) -> Availability:
        """Ask the engine for its version."""
        try:
            version = _reader(conn).version()
        except ConnectionFailed as exc:
            return Availability(False, detail=exc.detail)
        except (EngineError, EngineNotFound, OSError) as exc:
            return Availability(False, detail=f"the engine at {engine_url(conn.host, conn.config)}"
                                f" did not answer: {type(exc).__name__}: {exc}")
        flavour = "podman" if _reader(conn).is_podman else "docker"
        return Availability(True, version=f"{flavour} {version.get('Version')} "
                            f"(API {version.get('ApiVersion')})")

    def discover(self, conn: Any, project: str, wanted: list[Desired]) -> Discovery:
        """One pass per host: a container list, the inspects of the containers that matter,
        the network and volume lists."""
        try:
            return _Discoverer(_reader(conn), conn.host, project, wanted).run()
        except EngineError as exc:
            raise ProviderError(f"the docker engine on host {conn.host} refused a query: "
                                f"{exc.message}") from None
        except OSError as exc:  # requests' errors are OSErrors too
            raise ConnectionFailed(conn.host, "docker", f"{type(exc).__name__}: {exc}") from None

    def observe(self, conn: Any, project: str, desired: Desired) -> Observed | None:
        """A container after a change: one inspect (and its image), not a whole pass."""
        if desired.kind != "container":
            return super().observe(conn, project, desired)
        discoverer = _Discoverer(_reader(conn), conn.host, project, [desired])
        try:
            discoverer._container(desired.address, desired.name, desired.name)
        except EngineError as exc:
            raise ProviderError(f"the docker engine on host {conn.host} refused a query: "
                                f"{exc.message}") from None
        return next(iter(discoverer.result.observed), None)

    # -- changes -----------------------------------------------------------------------

    def apply(
        self,
        change: Change,
        desired: Desired | None,
        observed: Observed | None,
        conn: Any,
        progress: Progress,
    ) -> None:
        """Carry out one change on the engine."""
        reader = _reader(conn)
        if (isinstance(reader, UnixReader) and change.action is Action.CREATE
                and desired is not None and LocalCreate(reader, change, desired, progress).run()):
            return
        import docker.errors

        client = get_client(conn.host, conn.config, conn)
        what = f"{change.kind} {change.name}"
        try:
            if change.kind == "container":
                _ContainerChange(client, change, desired, observed, progress).run()
            elif change.kind == "network":
                _apply_network(client, change, desired, observed, progress)
            else:
                _apply_volume(client, change, desired, observed, progress)
        except docker.errors.APIError as exc:
            raise ProviderError(f"{change.action.value} {what} on host {conn.host}: "
                                f"{exc.explanation or exc}") from None
        except docker.errors.DockerException as exc:
            raise ProviderError(f"{change.action.value} {what} on host {conn.host}: {exc}") \
                from None


def container_spec(model: Any, context: DesiredContext) -> dict[str, Any]:
    """The canonical spec of a manifest container (see spec.py for the forms)."""
    for key in model.labels:
        if key.startswith(normalise.DECL_LABEL_PREFIX):
            raise ProviderError(f"label {key!r}: the io.decl. prefix is reserved for decl's "
                                "own marks")
    remote = context.host != "local"
    return {
        "image": canon.image_ref(model.image),
        "pull": model.pull,
        "command": canon.argv(model.command),
        "entrypoint": canon.argv(model.entrypoint),
        "env": {k: str(v) for k, v in sorted(model.env.items())},
        "ports": canon.ports(list(model.ports)),
        "volumes": canon.volumes(list(model.volumes), context.base_dir, expand_home=not remote),
        "networks": sorted(set(model.networks)),
        "restart": canon.restart(model.restart),
        "memory": model.memory,
        "cpus": canon.cpus(model.cpus),
        "user": model.user,
        "workdir": model.workdir,
        "hostname": model.hostname,
        "labels": {k: str(v) for k, v in sorted(model.labels.items())},
        "init": bool(model.init),
        "healthcheck": canon.healthcheck(model.healthcheck),
    }


def _reader(conn: Any) -> Reader:
    """The read-only API of a host's engine."""
    return reader_for(conn.host, engine_url(conn.host, conn.config),
                      lambda: get_client(conn.host, conn.config, conn))


class _Discoverer:
    """The state of one discovery pass on one host."""

    def __init__(self, reader: Reader, host: str, project: str, wanted: list[Desired]) -> None:
        self.reader = reader
        self.host = host
        self.project = project
        self.wanted = {(d.kind, d.name): d for d in wanted if d.provider == DockerProvider.name}
        self.images = images.ImageCache(reader)
        self.result = Discovery()

    def _address(self, kind: str, name: str, marks: Marks | None) -> str | None:
        if (kind, name) in self.wanted:
            return address_of(kind, name)
        if marks is not None and marks.project == self.project:
            return marks.address or address_of(kind, name)
        return None

    def run(self) -> Discovery:
        summaries = self.reader.containers()
        users: dict[str, dict[str, list[str]]] = {"network": {}, "volume": {}}
        for summary in summaries:
            name = normalise.container_name(summary)
            owner = (summary.get("Labels") or {}).get(MARK_PROJECT)
            user = name if owner == self.project else f"{name} (not in this project)"
            for net in ((summary.get("NetworkSettings") or {}).get("Networks") or {}):
                users["network"].setdefault(net, []).append(user)
            for mount in summary.get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Name"):
                    users["volume"].setdefault(mount["Name"], []).append(user)
            marks = Marks.from_labels(summary.get("Labels"))
            address = self._address("container", name, marks)
            if address is None:
                continue
            if ("container", name) in self.wanted:
                self._container(address, name, summary["Id"])
            else:
                self._orphan(address, name, summary, marks)
        self._images_for_never()
        for net in self.reader.networks():
            self._network(net, users["network"].get(net.get("Name") or "", []))
        for vol in self.reader.volumes():
            self._volume(vol, users["volume"].get(vol.get("Name") or "", []))
        return self.result

    def _orphan(self, address: str, name: str, summary: dict[str, Any],
                marks: Marks | None) -> None:
        """An orphan needs no inspection: the list summary says enough to delete it."""
        status = summary.get("State") or ""
        self.result.observed.append(Observed(
            address=address, kind="container", name=name, provider=DockerProvider.name,
            host=self.host, state=normalise.container_state({"State": {"Status": status}}),
            spec={"image": canon.image_ref(summary.get("Image") or "")}, marks=marks,
            handle={"id": summary["Id"]},
        ))

    def _container(self, address: str, name: str, container_id: str) -> None:
        try:
            attrs = self.reader.inspect_container(container_id)
        except EngineNotFound:  # removed meanwhile
            return
        if (attrs.get("Name") or "").lstrip("/") != name:
            return  # the engine matched an ID prefix, not this name
        desired = self.wanted.get(("container", name))
        want = desired.spec if desired is not None else None
        image_attrs = self.images.get(attrs.get("Image") or "")
        if want is not None:
            value = images.compare_value(want["image"], want.get("pull", "missing"), attrs,
                                         self.images)
        else:
            value = canon.image_ref((attrs.get("Config") or {}).get("Image") or "")
        spec = normalise.container_spec(attrs, image_attrs, want, value,
                                        podman=self.reader.is_podman)
        self.result.observed.append(Observed(
            address=address, kind="container", name=name, provider=DockerProvider.name,
            host=self.host, state=normalise.container_state(attrs), spec=spec,
            marks=normalise.marks_of(attrs), handle={"id": attrs["Id"]},
        ))

    def _images_for_never(self) -> None:
        for (kind, _name), desired in self.wanted.items():
            if kind != "container" or desired.state == "absent":
                continue
            ref = desired.spec["image"]
            if desired.spec.get("pull") == "never" and self.images.get(ref) is None:
                self.result.problems[desired.address] = (
                    f"image {ref} is not on host {self.host} and pull: never forbids pulling "
                    "it (pull it or build it first, or set pull: missing)"
                )

    def _network(self, attrs: dict[str, Any], users: list[str]) -> None:
        name = attrs.get("Name") or ""
        marks = normalise.marks_of(attrs)
        address = self._address("network", name, marks)
        if address is None:
            return
        foreign = [u for u in users if u.endswith("(not in this project)")]
        desired = self.wanted.get(("network", name))
        if (foreign and desired is not None and desired.state == "absent"
                and marks is not None and marks.project == self.project):
            self.result.problems[address] = (
                f"network {name} is still used by {', '.join(foreign)}: it is not deleted "
                "while containers outside this manifest use it"
            )
        self._cannot_adopt(address, "network", name, marks)
        self.result.observed.append(Observed(
            address=address, kind="network", name=name, provider=DockerProvider.name,
            host=self.host, state="present", spec=normalise.network_spec(attrs), marks=marks,
            handle={"id": attrs.get("Id"), "users": users},
        ))

    def _cannot_adopt(self, address: str, kind: str, name: str, marks: Marks | None) -> None:
        desired = self.wanted.get((kind, name))
        if desired is not None and desired.adopt and marks is None:
            self.result.problems[address] = (
                f"{kind} {name} exists without marks, and the engine cannot add labels to an "
                f"existing {kind}: decl cannot adopt it (recreate it by hand, or leave it out "
                "of the manifest and refer to it by name)"
            )

    def _volume(self, attrs: dict[str, Any], users: list[str]) -> None:
        name = attrs.get("Name") or ""
        marks = normalise.marks_of(attrs)
        address = self._address("volume", name, marks)
        if address is None:
            return
        self._cannot_adopt(address, "volume", name, marks)
        self.result.observed.append(Observed(
            address=address, kind="volume", name=name, provider=DockerProvider.name,
            host=self.host, state="present", spec=normalise.volume_spec(attrs), marks=marks,
            handle={"id": name, "users": users},
        ))


class _ContainerChange:
    """One change to one container."""

    def __init__(self, client: Any, change: Change, desired: Desired | None,
                 observed: Observed | None, progress: Progress) -> None:
        self.client = client
        self.change = change
        self.desired = desired
        self.observed = observed
        self.progress = progress
        self.name = change.name

    def run(self) -> None:
        action = self.change.action
        if action is Action.CREATE:
            self._pull()
            self._create()
        elif action in (Action.REPLACE, Action.ADOPT):
            self._pull()
            self._remove()
            self._create()
        elif action in (Action.UPDATE, Action.UPDATE_RESTART):
            self._update()
        elif action is Action.DELETE:
            self._remove()
        elif action is Action.START:
            self._start()
        elif action is Action.STOP:
            self._stop()

    def _handle(self) -> str:
        if self.observed is not None and self.observed.handle.get("id"):
            return str(self.observed.handle["id"])
        return self.name

    def _pull(self) -> None:
        spec = self._spec()
        images.ensure(self.client, spec["image"], spec.get("pull", "missing"), self.progress)

    def _spec(self) -> dict[str, Any]:
        if self.desired is None:
            raise ProviderError(f"container {self.name}: no manifest entry to create it from")
        return self.desired.spec

    def _create(self) -> None:
        assert self.desired is not None
        spec = self._spec()
        labels = self.desired.marks(_project(self.change, self.observed)).as_labels()
        kwargs = create.container_kwargs(self.name, spec, labels)
        self.progress(f"creating container {self.name}", None)
        container_id = create.create_container(self.client, kwargs)
        for network in create.extra_networks(spec):
            self.client.api.connect_container_to_network(container_id, network)
        if self.change.target_state == "running":
            self.progress(f"starting container {self.name}", None)
            self.client.api.start(container_id)

    def _remove(self) -> None:
        import docker.errors

        self.progress(f"removing container {self.name}", None)
        try:
            self.client.api.remove_container(self._handle(), force=True, v=False)
        except docker.errors.NotFound:
            pass

    def _update(self) -> None:
        changed = {f.path.split(".")[0] for f in self.change.fields}
        assert self.desired is not None
        body = create.update_body({k: self.desired.spec.get(k) for k in changed})
        if body:
            import docker.errors

            self.progress(f"updating container {self.name}: {', '.join(sorted(changed))}", None)
            api = self.client.api
            response = api._post_json(api._url("/containers/{0}/update", self._handle()),
                                      data=body)
            try:
                api._raise_for_status(response)
            except docker.errors.NotFound:
                # Podman before 5 has no update endpoint in its docker API: recreate.
                api.inspect_container(self._handle())  # the container itself is there
                self.progress(f"the engine cannot update containers in place: recreating "
                              f"{self.name}", None)
                self._pull()
                self._remove()
                self._create()
                return
        state = self.observed.state if self.observed is not None else "stopped"
        if self.change.target_state == "running" and state != "running":
            self._start()
        elif self.change.target_state == "stopped" and state == "running":
            self._stop()

    def _start(self) -> None:
        self.progress(f"starting container {self.name}", None)
        if self.observed is not None and self.observed.state == "paused":
            self.client.api.unpause(self._handle())
            return
        self.client.api.start(self._handle())

    def _stop(self) -> None:
        self.progress(f"stopping container {self.name}", None)
        self.client.api.stop(self._handle(), timeout=STOP_TIMEOUT)


def _apply_network(client: Any, change: Change, desired: Desired | None,
                   observed: Observed | None, progress: Progress) -> None:
    import docker.errors
    import docker.types

    name = change.name
    if change.action in (Action.DELETE, Action.REPLACE):
        net = client.api.inspect_network(name)
        attached = normalise.network_users(net)
        if attached:
            raise ProviderError(f"network {name} is still used by container(s) "
                                f"{', '.join(attached)}: not deleted")
        progress(f"removing network {name}", None)
        try:
            client.api.remove_network(name)
        except docker.errors.NotFound:
            pass
    if change.action in (Action.CREATE, Action.REPLACE):
        assert desired is not None
        spec = desired.spec
        labels = desired.marks(_project(change, observed)).as_labels()
        kwargs = create.network_kwargs(name, spec, labels)
        if spec.get("subnet"):
            kwargs["ipam"] = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=spec["subnet"], gateway=spec.get("gateway"))])
        progress(f"creating network {name}", None)
        client.networks.create(**kwargs)
    if change.action is Action.ADOPT:
        raise ProviderError(f"network {name}: the engine cannot add labels to an existing "
                            "network; remove it by hand and let decl create it")


def _apply_volume(client: Any, change: Change, desired: Desired | None,
                  observed: Observed | None, progress: Progress) -> None:
    import docker.errors

    name = change.name
    if change.action in (Action.DELETE, Action.REPLACE):
        progress(f"removing volume {name}", None)
        try:
            client.api.remove_volume(name)
        except docker.errors.NotFound:
            pass
    if change.action in (Action.CREATE, Action.REPLACE):
        assert desired is not None
        labels = desired.marks(_project(change, observed)).as_labels()
        progress(f"creating volume {name}", None)
        client.volumes.create(**create.volume_kwargs(name, desired.spec, labels))
    if change.action is Action.ADOPT:
        raise ProviderError(f"volume {name}: the engine cannot add labels to an existing "
                            "volume; decl cannot adopt it")


def _project(change: Change, observed: Observed | None) -> str:
    """The project whose marks apply() writes."""
    if change.project:
        return change.project
    if observed is not None and observed.marks is not None and observed.marks.project:
        return observed.marks.project
    raise ProviderError(f"{change.address}: the change names no project to mark the object with")


class LocalCreate:
    """Create a container, network or volume on a local engine straight over its socket.

    Creating from nothing is the one change where the docker SDK's import (requests,
    paramiko: about 0.2 s) would cost more than the work; the bodies are the ones the SDK
    sends (create.container_body, tested against it). Anything that needs a pull goes
    through the SDK instead (`run()` returns False).
    """

    def __init__(self, engine: UnixReader, change: Change, desired: Desired,
                 progress: Progress) -> None:
        self.engine = engine
        self.change = change
        self.desired = desired
        self.progress = progress

    def run(self) -> bool:
        """True when the object was created here; False to let the SDK path do it."""
        spec = self.desired.spec
        labels = self.desired.marks(self.change.project).as_labels()
        name = self.change.name
        try:
            if self.change.kind == "network":
                self.progress(f"creating network {name}", None)
                self.engine.post("/networks/create", None, create.network_body(name, spec, labels))
            elif self.change.kind == "volume":
                self.progress(f"creating volume {name}", None)
                self.engine.post("/volumes/create", None, create.volume_body(name, spec, labels))
            else:
                try:
                    self.engine.inspect_image(spec["image"])
                except EngineNotFound:
                    return False  # a pull is needed: the SDK path shows its progress
                if spec.get("pull") == "always":
                    return False
                self._container(name, spec, labels)
        except EngineError as exc:
            raise ProviderError(f"create {self.change.kind} {name} on host "
                                f"{self.engine.host}: {exc.message}") from None
        return True

    def _container(self, name: str, spec: dict[str, Any], labels: dict[str, str]) -> None:
        self.progress(f"creating container {name}", None)
        created = self.engine.post("/containers/create", {"name": name},
                                   create.container_body(name, spec, labels))
        container_id = created["Id"]
        for network in create.extra_networks(spec):
            self.engine.post(f"/networks/{quote(network, safe='')}/connect", None,
                             {"Container": container_id})
        if self.change.target_state == "running":
            self.progress(f"starting container {name}", None)
            self.engine.post(f"/containers/{container_id}/start")
