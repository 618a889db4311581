"""Desired spec -> keyword arguments for the docker SDK (pure functions)."""

from __future__ import annotations

from typing import Any

from decl.providers.docker import spec as canon


def _argv(value: Any) -> list[str] | None:
    return None if value == canon.IMAGE_DEFAULT or not value else list(value)


def port_map(ports: list[str]) -> dict[str, Any]:
    """Canonical port texts -> the SDK's `ports` argument (one list of bindings per port)."""
    result: dict[str, list[tuple[str, str]]] = {}
    for text in ports:
        for host_ip, host_port, port, proto in canon.port_bindings(text):
            result.setdefault(f"{port}/{proto}", []).append((host_ip, host_port))
    return {key: [binding for binding in bindings] for key, bindings in result.items()}


def healthcheck(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Canonical healthcheck -> the SDK's `healthcheck` argument (durations in ns)."""
    if not value:
        return None
    out: dict[str, Any] = {"test": list(value["test"])}
    for key in ("interval", "timeout", "start_period"):
        ns = canon.parse_duration(value.get(key))
        if ns:
            out[key] = ns
    if value.get("retries"):
        out["retries"] = value["retries"]
    return out


def container_kwargs(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Arguments of `client.containers.create(**kwargs)` for a desired container spec.

    The first network is given at creation; the others are connected before the start
    (see `extra_networks`).
    """
    kwargs: dict[str, Any] = {
        "image": spec["image"],
        "name": name,
        "command": _argv(spec.get("command")),
        "entrypoint": _argv(spec.get("entrypoint")),
        "environment": dict(spec.get("env") or {}),
        "labels": {**(spec.get("labels") or {}), **labels},
        "detach": True,
        "restart_policy": canon.restart_policy(spec.get("restart") or "no"),
    }
    if spec.get("ports"):
        kwargs["ports"] = port_map(spec["ports"])
    if spec.get("volumes"):
        kwargs["volumes"] = list(spec["volumes"])
    networks = spec.get("networks") or []
    if networks:
        kwargs["network"] = networks[0]
    if spec.get("memory"):
        kwargs["mem_limit"] = int(spec["memory"])
    if spec.get("cpus"):
        kwargs["nano_cpus"] = canon.nano_cpus(spec["cpus"])
    for key, arg in (("user", "user"), ("workdir", "working_dir"), ("hostname", "hostname")):
        if spec.get(key) is not None:
            kwargs[arg] = spec[key]
    if spec.get("init"):
        kwargs["init"] = True
    check = healthcheck(spec.get("healthcheck"))
    if check:
        kwargs["healthcheck"] = check
    return kwargs


def create_container(client: Any, kwargs: dict[str, Any]) -> str:
    """Create a container from `container_kwargs` and return its ID.

    The SDK's `containers.create` inspects the new container afterwards to return a model;
    decl does not need it, so the same argument conversion is used with the low-level call.
    """
    from docker.models.containers import _create_container_args

    args = dict(kwargs)
    args["version"] = client.api._version
    response = client.api.create_container(**_create_container_args(args))
    return str(response["Id"])


def extra_networks(spec: dict[str, Any]) -> list[str]:
    """Networks connected after creation (all but the first)."""
    return list((spec.get("networks") or [])[1:])


def update_body(fields: dict[str, Any]) -> dict[str, Any]:
    """Changed live fields (restart, memory, cpus) -> the engine's update API body."""
    body: dict[str, Any] = {}
    if "restart" in fields:
        body["RestartPolicy"] = canon.restart_policy(fields["restart"] or "no")
    if fields.get("memory"):
        memory = int(fields["memory"])
        # The engine refuses a limit above the swap limit it set (2x): move both together.
        body["Memory"] = memory
        body["MemorySwap"] = 2 * memory
    if fields.get("cpus"):
        body["NanoCpus"] = canon.nano_cpus(fields["cpus"])
    return body


def network_kwargs(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Arguments of `client.networks.create` (IPAM built by the caller from subnet/gateway)."""
    return {"name": name, "driver": spec.get("driver") or "bridge",
            "internal": bool(spec.get("internal")), "labels": labels,
            "check_duplicate": True}


def volume_kwargs(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Arguments of `client.volumes.create`."""
    return {"name": name, "driver": spec.get("driver") or "local",
            "driver_opts": dict(spec.get("options") or {}), "labels": labels}


def _drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v not in (None, {}, [], "")}


def container_body(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The Engine API body of `POST /containers/create?name=NAME` for a desired spec: what the
    SDK sends for `container_kwargs`, written out, so a local engine needs no SDK import."""
    kwargs = container_kwargs(name, spec, labels)
    ports = kwargs.get("ports") or {}
    host: dict[str, Any] = _drop_empty({
        "RestartPolicy": kwargs["restart_policy"],
        "PortBindings": {key: [{"HostIp": ip, "HostPort": str(port)} for ip, port in binds]
                         for key, binds in ports.items()},
        "Binds": list(kwargs.get("volumes") or []),
        "Memory": kwargs.get("mem_limit"),
        "NanoCpus": kwargs.get("nano_cpus"),
        "NetworkMode": kwargs.get("network") or "default",
    })
    if kwargs.get("init"):
        host["Init"] = True
    check = kwargs.get("healthcheck")
    body = _drop_empty({
        "Image": kwargs["image"],
        "Cmd": kwargs.get("command"),
        "Entrypoint": kwargs.get("entrypoint"),
        "Env": [f"{k}={v}" for k, v in kwargs["environment"].items()],
        "Labels": kwargs["labels"],
        "ExposedPorts": {key: {} for key in ports},
        "Volumes": {bind.split(":")[1]: {} for bind in kwargs.get("volumes") or []},
        "User": kwargs.get("user"),
        "WorkingDir": kwargs.get("working_dir"),
        "Hostname": kwargs.get("hostname"),
        "Healthcheck": None if not check else _drop_empty({
            "Test": check["test"], "Interval": check.get("interval"),
            "Timeout": check.get("timeout"), "Retries": check.get("retries"),
            "StartPeriod": check.get("start_period")}),
        "HostConfig": host,
    })
    if kwargs.get("network"):
        body["NetworkingConfig"] = {"EndpointsConfig": {kwargs["network"]: {}}}
    return body


def network_body(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The Engine API body of `POST /networks/create`."""
    body: dict[str, Any] = {"Name": name, "Driver": spec.get("driver") or "bridge",
                            "Internal": bool(spec.get("internal")), "Labels": labels,
                            "CheckDuplicate": True}
    if spec.get("subnet"):
        body["IPAM"] = {"Driver": "default", "Config": [_drop_empty(
            {"Subnet": spec["subnet"], "Gateway": spec.get("gateway")})]}
    return body


def volume_body(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The Engine API body of `POST /volumes/create`."""
    return {"Name": name, "Driver": spec.get("driver") or "local",
            "DriverOpts": dict(spec.get("options") or {}), "Labels": labels}
