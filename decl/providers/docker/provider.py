"""The Docker provider: containers, networks and volumes through the Docker engine API.

Works with any engine speaking the Docker API: the local socket, `ssh://` (paramiko),
`tcp://` with TLS, and Podman's docker-compatible socket.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import MARK_PROJECT, Desired, Marks, Observed, address_of
from decl.core.traits import KindTraits, Policy
from decl.errors import ConnectionFailed, ProviderError
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportScope,
    Operation,
    Provider,
    ValidateContext,
    ValidationProblem,
    ensure_owned,
)
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
                            keep=in_use_by_others, delete_rank=1)
VOLUME_TRAITS = KindTraits(
    default_policy=Policy.REPLACE, has_run_state=False, default_prevent_destroy=True,
    destroys_data="the volume's data", keep=in_use_by_others, delete_rank=1,
)
STOP_TIMEOUT = 10


class DockerProvider(Provider):
    """Containers, networks and volumes on a Docker (or Podman) engine."""

    name = "docker"
    kinds = ("container", "network", "volume")
    traits = {"container": CONTAINER_TRAITS, "network": NETWORK_TRAITS,
              "volume": VOLUME_TRAITS}

    # -- the manifest side -----------------------------------------------------------

    @classmethod
    def validate(cls, kind: str, model: Any, context: ValidateContext
                 ) -> list[ValidationProblem]:
        """Port and volume syntax, reserved labels, durations, a gateway without subnet."""
        problems = super().validate(kind, model, context)
        if kind == "network" and model.gateway and not model.subnet:
            problems.append(ValidationProblem(context.at("gateway"),
                                              f"network {context.name}: a gateway needs a "
                                              "subnet"))
        if kind != "container":
            return problems
        checks: list[tuple[tuple[str | int, ...], Callable[[], object]]] = []
        for index, port in enumerate(model.ports):
            checks.append((("ports", index), functools.partial(canon.port_bindings, port)))
        for index, volume in enumerate(model.volumes):
            checks.append((("volumes", index),
                           functools.partial(canon.volume, volume, context.base_dir)))
        if model.healthcheck is not None:
            for name in ("interval", "timeout", "start_period"):
                value = getattr(model.healthcheck, name)
                checks.append((("healthcheck", name),
                               functools.partial(canon.parse_duration, value)))
        for path, check in checks:
            try:
                check()
            except ProviderError as exc:
                problems.append(ValidationProblem(context.at(*path), exc.message))
        for key in model.labels:
            if key.startswith(normalise.DECL_LABEL_PREFIX):
                problems.append(ValidationProblem(
                    context.at("labels", key), f"label {key!r}: the io.decl. prefix is "
                    "reserved for decl's own marks", key=True))
        return problems

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

    def needs_prepare(self, change: Change, conn: Connection) -> bool:
        """Every change but a create on a local engine goes through the SDK (a create there
        goes straight over the socket; one that needs a pull imports the SDK then)."""
        if change.action is not Action.CREATE:
            return True
        try:
            return not isinstance(_reader(conn), UnixReader)
        except ConnectionFailed:
            return True

    def check(self, conn: Connection) -> Availability:
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

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One pass per host: a container list, the inspects of the containers that matter,
        the network and volume lists."""
        try:
            return _Discoverer(_reader(conn), conn.host, project, wanted).run()
        except EngineError as exc:
            raise ProviderError(f"the docker engine on host {conn.host} refused a query: "
                                f"{exc.message}") from None
        except OSError as exc:  # requests' errors are OSErrors too
            raise ConnectionFailed(conn.host, "docker", f"{type(exc).__name__}: {exc}") from None

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """Containers, networks and volumes without decl's marks (for `decl import`)."""
        from decl.providers.docker import importing

        try:
            return importing.inventory(_reader(conn), conn.host, self.name)
        except EngineError as exc:
            raise ProviderError(f"the docker engine on host {conn.host} refused a query: "
                                f"{exc.message}") from None
        except OSError as exc:
            raise ConnectionFailed(conn.host, "docker", f"{type(exc).__name__}: {exc}") from None

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """A container's manifest entry, as the engine runs it."""
        from decl.providers.docker import importing

        return importing.to_manifest(observed)

    def observe(self, conn: Connection, project: str, desired: Desired) -> Observed | None:
        """One object after a change: one inspect (a container's image is remembered by
        ID for the run), not a whole pass."""
        discoverer = _Discoverer(_reader(conn), conn.host, project, [desired])
        try:
            if desired.kind == "container":
                discoverer._container(desired.address, desired.name, desired.name)
            elif not discoverer.inspect_one(desired.kind, desired.name):
                return super().observe(conn, project, desired)
        except EngineError as exc:
            raise ProviderError(f"the docker engine on host {conn.host} refused a query: "
                                f"{exc.message}") from None
        except OSError as exc:
            raise ConnectionFailed(conn.host, "docker", f"{type(exc).__name__}: {exc}") from None
        return next(iter(discoverer.result.observed), None)

    # -- changes -----------------------------------------------------------------------

    def create(self, op: Operation) -> None:
        """Create the object (straight over a local socket when no pull is needed)."""
        reader = _reader(op.conn)
        if isinstance(reader, UnixReader) and LocalCreate(reader, op).run():
            return
        with _engine_errors(op) as client:
            change = _change_for(op.change.kind)(client, op)
            change.prepare()
            change.create()

    def replace(self, op: Operation) -> None:
        """Pull first (a container), then remove the old object and create the new one."""
        with _engine_errors(op) as client:
            change = _change_for(op.change.kind)(client, op)
            change.prepare()
            change.remove(check=True)
            change.create()

    def adopt(self, op: Operation) -> None:
        """A container is recreated with this project's marks; the engine cannot add labels
        to an existing network or volume."""
        if op.change.kind != "container":
            raise ProviderError(f"{op.change.kind} {op.name}: the engine cannot add labels to "
                                f"an existing {op.change.kind}; remove it by hand and let "
                                "decl create it")
        with _engine_errors(op) as client:
            change = _ContainerChange(client, op)
            change.prepare()
            change.remove(check=False)
            change.create()

    def update(self, op: Operation) -> None:
        """Container limits and restart policy in place, then the run state."""
        with _engine_errors(op) as client:
            _change_for(op.change.kind)(client, op).update()

    def delete(self, op: Operation) -> None:
        """Remove the object after checking the marks it carries now."""
        with _engine_errors(op) as client:
            _change_for(op.change.kind)(client, op).remove(check=True)

    def start(self, op: Operation) -> None:
        """Start (or unpause) a container."""
        with _engine_errors(op) as client:
            _ContainerChange(client, op).start()

    def stop(self, op: Operation) -> None:
        """Stop a container."""
        with _engine_errors(op) as client:
            _ContainerChange(client, op).stop()


@contextlib.contextmanager
def _engine_errors(op: Operation) -> Iterator[Any]:
    """The docker SDK client of the operation's host; engine errors as ProviderErrors."""
    import docker.errors

    conn = op.conn
    what = f"{op.change.kind} {op.name}"
    try:
        yield get_client(conn.host, conn.config, conn)
    except docker.errors.APIError as exc:
        raise ProviderError(f"{op.action.value} {what} on host {conn.host}: "
                            f"{exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        raise ProviderError(f"{op.action.value} {what} on host {conn.host}: {exc}") from None


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


def _reader(conn: Connection) -> Reader:
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

    def inspect_one(self, kind: str, name: str) -> bool:
        """Observe one network or volume by a single inspect (the verify after a change).

        False when one inspect cannot tell (two networks share the name and the engine
        calls it ambiguous, or the name matched another network's ID); the caller then runs
        a whole pass. The handle carries no `users`
        (an inspect does not say which project the attached containers belong to).
        """
        path = f"/networks/{quote(name, safe='')}" if kind == "network" \
            else f"/volumes/{quote(name, safe='')}"
        try:
            attrs = self.reader.get(path)
        except EngineNotFound:
            return True
        except EngineError:
            return False
        if not isinstance(attrs, dict) or attrs.get("Name") != name:
            return False  # the engine matched another object (an ID prefix): a pass decides
        if kind == "network":
            self._network(attrs, None)
        else:
            self._volume(attrs, None)
        return True

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
        image_attrs = self.images.config(attrs.get("Image") or "")
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

    def _network(self, attrs: dict[str, Any], users: list[str] | None) -> None:
        name = attrs.get("Name") or ""
        marks = normalise.marks_of(attrs)
        address = self._address("network", name, marks)
        if address is None:
            return
        foreign = [u for u in users or [] if u.endswith("(not in this project)")]
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
            handle=_handle(attrs.get("Id"), users),
        ))

    def _cannot_adopt(self, address: str, kind: str, name: str, marks: Marks | None) -> None:
        desired = self.wanted.get((kind, name))
        if desired is not None and desired.adopt and marks is None:
            self.result.problems[address] = (
                f"{kind} {name} exists without marks, and the engine cannot add labels to an "
                f"existing {kind}: decl cannot adopt it (recreate it by hand, or leave it out "
                "of the manifest and refer to it by name)"
            )

    def _volume(self, attrs: dict[str, Any], users: list[str] | None) -> None:
        name = attrs.get("Name") or ""
        marks = normalise.marks_of(attrs)
        address = self._address("volume", name, marks)
        if address is None:
            return
        self._cannot_adopt(address, "volume", name, marks)
        self.result.observed.append(Observed(
            address=address, kind="volume", name=name, provider=DockerProvider.name,
            host=self.host, state="present", spec=normalise.volume_spec(attrs), marks=marks,
            handle=_handle(name, users),
        ))


def _handle(ident: Any, users: list[str] | None) -> dict[str, Any]:
    """An object's handle: its ID and, when a whole pass found them, its users."""
    return {"id": ident} if users is None else {"id": ident, "users": users}


class _ObjectChange:
    """One change to one engine object, through the SDK client."""

    kind = ""

    def __init__(self, client: Any, op: Operation) -> None:
        self.client = client
        self.op = op
        self.name = op.name

    def prepare(self) -> None:
        """Work that can happen before the old object goes (a pull)."""

    def labels(self) -> dict[str, str]:
        """The marks the new object carries."""
        return self.op.marks().as_labels()

    def create(self) -> None:
        raise NotImplementedError

    def remove(self, check: bool) -> None:
        raise NotImplementedError

    def update(self) -> None:
        raise ProviderError(f"{self.op.address}: a {self.kind} cannot change in place")

    def owned(self, labels: dict[str, str] | None) -> None:
        """The ownership check before a delete, on the labels the engine has now."""
        ensure_owned(self.op, Marks.from_labels(labels), f"{self.kind} {self.name!r}")


class _ContainerChange(_ObjectChange):
    """One change to one container."""

    kind = "container"

    def _handle(self) -> str:
        observed = self.op.observed
        if observed is not None and observed.handle.get("id"):
            return str(observed.handle["id"])
        return self.name

    def prepare(self) -> None:
        spec = self.op.need_desired().spec
        images.ensure(self.client, spec["image"], spec.get("pull", "missing"), self.op.progress)

    def create(self) -> None:
        spec = self.op.need_desired().spec
        kwargs = create.container_kwargs(self.name, spec, self.labels())
        self.op.progress(f"creating container {self.name}", None)
        container_id = create.create_container(self.client, kwargs)
        for network in create.extra_networks(spec):
            self.client.api.connect_container_to_network(container_id, network)
        if self.op.target_state == "running":
            self.op.progress(f"starting container {self.name}", None)
            self.client.api.start(container_id)

    def remove(self, check: bool) -> None:
        import docker.errors

        try:
            if check:
                self.owned(self.client.api.inspect_container(self._handle())
                           .get("Config", {}).get("Labels"))
            self.op.progress(f"removing container {self.name}", None)
            self.client.api.remove_container(self._handle(), force=True, v=False)
        except docker.errors.NotFound:
            pass

    def update(self) -> None:
        changed = self.op.changed_fields()
        desired = self.op.need_desired()
        body = create.update_body({k: desired.spec.get(k) for k in changed})
        if body:
            import docker.errors

            self.op.progress(f"updating container {self.name}: {', '.join(sorted(changed))}",
                             None)
            api = self.client.api
            response = api._post_json(api._url("/containers/{0}/update", self._handle()),
                                      data=body)
            try:
                api._raise_for_status(response)
            except docker.errors.NotFound:
                # Podman before 5 has no update endpoint in its docker API: recreate.
                api.inspect_container(self._handle())  # the container itself is there
                self.op.progress(f"the engine cannot update containers in place: recreating "
                                 f"{self.name}", None)
                self.prepare()
                self.remove(check=True)
                self.create()
                return
        observed = self.op.observed
        state = observed.state if observed is not None else "stopped"
        if self.op.target_state == "running" and state != "running":
            self.start()
        elif self.op.target_state == "stopped" and state == "running":
            self.stop()

    def start(self) -> None:
        self.op.progress(f"starting container {self.name}", None)
        observed = self.op.observed
        if observed is not None and observed.state == "paused":
            self.client.api.unpause(self._handle())
            return
        self.client.api.start(self._handle())

    def stop(self) -> None:
        self.op.progress(f"stopping container {self.name}", None)
        self.client.api.stop(self._handle(), timeout=STOP_TIMEOUT)


class _NetworkChange(_ObjectChange):
    kind = "network"

    def create(self) -> None:
        import docker.types

        spec = self.op.need_desired().spec
        kwargs = create.network_kwargs(self.name, spec, self.labels())
        if spec.get("subnet"):
            kwargs["ipam"] = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                subnet=spec["subnet"], gateway=spec.get("gateway"))])
        self.op.progress(f"creating network {self.name}", None)
        self.client.networks.create(**kwargs)

    def remove(self, check: bool) -> None:
        import docker.errors

        try:
            net = self.client.api.inspect_network(self.name)
        except docker.errors.NotFound:
            return
        if check:
            self.owned(net.get("Labels"))
        attached = normalise.network_users(net)
        if attached:
            raise ProviderError(f"network {self.name} is still used by container(s) "
                                f"{', '.join(attached)}: not deleted")
        self.op.progress(f"removing network {self.name}", None)
        try:
            self.client.api.remove_network(self.name)
        except docker.errors.NotFound:
            pass


class _VolumeChange(_ObjectChange):
    kind = "volume"

    def create(self) -> None:
        self.op.progress(f"creating volume {self.name}", None)
        self.client.volumes.create(**create.volume_kwargs(self.name,
                                                          self.op.need_desired().spec,
                                                          self.labels()))

    def remove(self, check: bool) -> None:
        import docker.errors

        try:
            if check:
                self.owned(self.client.api.inspect_volume(self.name).get("Labels"))
            self.op.progress(f"removing volume {self.name}", None)
            self.client.api.remove_volume(self.name)
        except docker.errors.NotFound:
            pass


# (engine socket, image) found present by this process: the containers of one apply that
# share an image inspect it once; the first to ask holds the lock while the others wait.
_IMAGES_PRESENT: set[tuple[str, str]] = set()
_IMAGES_LOCK = threading.Lock()


def _change_for(kind: str) -> type[_ObjectChange]:
    return {"container": _ContainerChange, "network": _NetworkChange,
            "volume": _VolumeChange}[kind]


class LocalCreate:
    """Create a container, network or volume on a local engine straight over its socket.

    Creating from nothing is the one change where the docker SDK's import (requests,
    paramiko: about 0.2 s) would cost more than the work; the bodies are the ones the SDK
    sends (create.container_body, tested against it). Anything that needs a pull goes
    through the SDK instead (`run()` returns False).
    """

    def __init__(self, engine: UnixReader, op: Operation) -> None:
        self.engine = engine
        self.op = op
        self.change = op.change
        self.desired = op.need_desired()
        self.progress = op.progress

    def run(self) -> bool:
        """True when the object was created here; False to let the SDK path do it."""
        spec = self.desired.spec
        labels = self.op.marks().as_labels()
        name = self.change.name
        try:
            if self.change.kind == "network":
                self.progress(f"creating network {name}", None)
                self.engine.post("/networks/create", None, create.network_body(name, spec, labels))
            elif self.change.kind == "volume":
                self.progress(f"creating volume {name}", None)
                self.engine.post("/volumes/create", None, create.volume_body(name, spec, labels))
            else:
                if spec.get("pull") == "always":
                    return False
                if not self._image_present(spec["image"]):
                    return False  # a pull is needed: the SDK path shows its progress
                self._container(name, spec, labels)
        except EngineError as exc:
            raise ProviderError(f"create {self.change.kind} {name} on host "
                                f"{self.engine.host}: {exc.message}") from None
        return True

    def _image_present(self, ref: str) -> bool:
        """Whether the image is on the engine: one inspect per image and run."""
        seen = (self.engine.path, ref)
        if seen in _IMAGES_PRESENT:
            return True
        with _IMAGES_LOCK:
            if seen not in _IMAGES_PRESENT:
                try:
                    self.engine.inspect_image(ref)
                except EngineNotFound:
                    return False
                _IMAGES_PRESENT.add(seen)
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
