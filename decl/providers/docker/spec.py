"""Canonical forms shared by the manifest side and the inspect side (pure, no docker import).

Both sides go through the same functions, so a converged object compares equal:
ports as sorted strings `[IP:][HOSTPORT:]PORT/PROTO`, volumes as `SOURCE:TARGET:MODE` with
`rw` written out, restart policies as `no|always|unless-stopped|on-failure[:N]`, CPUs as the
engine's nano-CPU value, durations as Go-style text (`30s`, `1m30s`, `500ms`).
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from decl.errors import ProviderError

IMAGE_DEFAULT = "(image default)"
DEFAULT_TAG = "latest"

_PORT = re.compile(r"^[0-9]+(-[0-9]+)?$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}


def image_ref(ref: str) -> str:
    """`busybox` -> `busybox:latest`; a tag or a digest is kept as written."""
    ref = ref.strip()
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:{DEFAULT_TAG}"


def split_image_ref(ref: str) -> tuple[str, str]:
    """`reg:5000/a/b:1` -> (`reg:5000/a/b`, `1`); a digest ref -> (name, `sha256:...`)."""
    ref = image_ref(ref)
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    name, _, tag = ref.rpartition(":")
    return name, tag


def argv(value: list[str] | str | None) -> list[str] | str:
    """A command or entrypoint as a list (text is split like a shell); unset -> IMAGE_DEFAULT."""
    if value is None:
        return IMAGE_DEFAULT
    words = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    return words if words else IMAGE_DEFAULT


def _expand_ports(text: str) -> list[int]:
    if not _PORT.match(text):
        raise ValueError(text)
    first, _, last = text.partition("-")
    low, high = int(first), int(last or first)
    if not (0 < low <= high <= 65535):
        raise ValueError(text)
    return list(range(low, high + 1))


def port_bindings(spec: str) -> list[tuple[str, str, int, str]]:
    """One manifest port spec -> [(host_ip, host_port, container_port, proto)], ranges expanded."""
    text = str(spec).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise ProviderError(f"port {spec!r}: protocol must be tcp, udp or sctp")
    host_ip = ""
    if text.startswith("["):  # [::1]:8080:80
        end = text.find("]")
        host_ip, text = text[1:end], text[end + 2:]
        parts = [host_ip, *text.split(":")] if text else [host_ip]
        parts = parts if len(parts) == 3 else []
    else:
        parts = text.split(":")
    try:
        if len(parts) == 1:
            host_ports, container = [""], _expand_ports(parts[0])
        elif len(parts) == 2:
            container = _expand_ports(parts[1])
            host_ports = [str(p) for p in _expand_ports(parts[0])]
        elif len(parts) == 3:
            host_ip = parts[0]
            container = _expand_ports(parts[2])
            host_ports = [str(p) for p in _expand_ports(parts[1])] if parts[1] else [""]
        else:
            raise ValueError(spec)
    except ValueError:
        raise ProviderError(
            f"port {spec!r} is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]"
        ) from None
    if host_ports == [""]:
        host_ports = [""] * len(container)
    if len(host_ports) != len(container):
        raise ProviderError(f"port {spec!r}: host and container ranges differ in length")
    return [(host_ip, hp, cp, proto) for hp, cp in zip(host_ports, container, strict=True)]


def port_text(host_ip: str, host_port: str, port: int | str, proto: str) -> str:
    """The canonical text of one binding."""
    tail = f"{port}/{proto}"
    if host_ip:
        return f"{host_ip}:{host_port}:{tail}"
    if host_port:
        return f"{host_port}:{tail}"
    return tail


def ports(specs: list[str]) -> list[str]:
    """Manifest ports -> sorted canonical texts."""
    found = {port_text(*binding) for spec in specs for binding in port_bindings(spec)}
    return sorted(found)


def ports_from_bindings(bindings: dict[str, Any] | None) -> list[str]:
    """`HostConfig.PortBindings` -> sorted canonical texts."""
    found = set()
    for key, entries in (bindings or {}).items():
        port, _, proto = key.partition("/")
        for entry in entries or [{}]:
            found.add(port_text(entry.get("HostIp") or "", entry.get("HostPort") or "", port,
                                proto or "tcp"))
    return sorted(found)


def is_named_volume(source: str) -> bool:
    """A volume name rather than a host path."""
    return not source.startswith(("/", ".", "~"))


# Bind options that only restate the engines' defaults (Podman writes them out).
DEFAULT_BIND_OPTIONS = frozenset({"rprivate", "rbind"})
# ...and what Podman adds to named volumes by default.
PODMAN_VOLUME_OPTIONS = frozenset({"nosuid", "nodev"})


def volume(spec: str, base_dir: str = ".", expand_home: bool = True,
           drop: frozenset[str] = DEFAULT_BIND_OPTIONS) -> str:
    """`SOURCE:TARGET[:OPTS]` -> `SOURCE:TARGET:OPTS` with `rw` written out, paths absolute
    and options that restate defaults (`rprivate`, `rbind`) left out."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ProviderError(f"volume {spec!r} is not SOURCE:TARGET[:ro|rw] (a volume name or "
                            "a host path, then the path in the container)")
    source, target, options = parts[0], parts[1], parts[2:]
    if not is_named_volume(source):
        if source.startswith("~") and expand_home:
            source = os.path.expanduser(source)
        if not source.startswith(("/", "~")):
            source = os.path.normpath(os.path.join(base_dir, source))
    opts = [o for o in ",".join(options).split(",") if o and o not in drop]
    if not any(o in ("ro", "rw") for o in opts):
        opts.insert(0, "rw")
    return f"{source}:{target}:{','.join(opts)}"


def volumes(specs: list[str], base_dir: str = ".", expand_home: bool = True) -> list[str]:
    """Manifest volumes -> sorted canonical texts."""
    return sorted({volume(s, base_dir, expand_home) for s in specs})


def restart(policy: str | None) -> str:
    """Manifest restart text -> canonical (`on-failure:0` -> `on-failure`)."""
    if not policy or policy == "no":
        return "no"
    if policy.startswith("on-failure:"):
        count = int(policy.split(":", 1)[1])
        return "on-failure" if count == 0 else f"on-failure:{count}"
    return policy


def restart_from_policy(policy: dict[str, Any] | None) -> str:
    """`HostConfig.RestartPolicy` -> canonical text."""
    policy = policy or {}
    name = policy.get("Name") or "no"
    if name == "on-failure":
        count = int(policy.get("MaximumRetryCount") or 0)
        return "on-failure" if count == 0 else f"on-failure:{count}"
    return name


def restart_policy(text: str) -> dict[str, Any]:
    """Canonical text -> the engine's RestartPolicy object."""
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def nano_cpus(cpus: float) -> int:
    """CPUs as the engine stores them."""
    return int(round(cpus * 1e9))


def cpus(value: float | None) -> float | None:
    """Manifest CPUs rounded the way the engine stores them."""
    return None if value is None else nano_cpus(value) / 1e9


def parse_duration(text: str | None) -> int | None:
    """`1m30s` -> nanoseconds; None or 0 -> None."""
    if text is None:
        return None
    value = str(text).strip()
    if value.isdigit():
        total = int(value) * 1_000_000_000
    else:
        pos, total_f = 0, 0.0
        for match in _DURATION_PART.finditer(value):
            if match.start() != pos:
                break
            total_f += float(match.group(1)) * _DURATION_NS[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise ProviderError(f"duration {text!r}: use a number with a unit (30s, 1m30s, 500ms)")
        total = int(round(total_f))
    return total or None


def format_duration(ns: int | None) -> str | None:
    """Nanoseconds -> the shortest exact text (`90000000000` -> `1m30s`)."""
    if not ns:
        return None
    if ns % 1_000_000_000:
        if ns % 1_000_000 == 0:
            return f"{ns // 1_000_000}ms"
        return f"{ns}ns"
    seconds = ns // 1_000_000_000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


# The engine's healthcheck defaults (Docker stores zero for them, Podman writes them out).
HEALTH_DEFAULTS = {"interval": "30s", "timeout": "30s", "retries": 3, "start_period": None}


def _health(test: list[str], interval: int | None, timeout: int | None, retries: int | None,
            start_period: int | None) -> dict[str, Any]:
    values = {"interval": format_duration(interval), "timeout": format_duration(timeout),
              "retries": retries or None, "start_period": format_duration(start_period)}
    return {"test": list(test),
            **{k: HEALTH_DEFAULTS[k] if v is None else v for k, v in values.items()}}


def healthcheck(model: Any) -> dict[str, Any] | None:
    """A manifest healthcheck -> canonical dict (unset or zero values are the defaults)."""
    if model is None:
        return None
    return _health(model.test, parse_duration(model.interval), parse_duration(model.timeout),
                   model.retries, parse_duration(model.start_period))


def healthcheck_from_config(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """`Config.Healthcheck` -> canonical dict."""
    if not config or not config.get("Test"):
        return None
    return _health(config["Test"], config.get("Interval"), config.get("Timeout"),
                   config.get("Retries"), config.get("StartPeriod"))


def env_pairs(entries: list[str] | None) -> dict[str, str]:
    """`["K=V", ...]` -> dict (an entry without `=` has an empty value)."""
    result: dict[str, str] = {}
    for entry in entries or []:
        key, _, value = entry.partition("=")
        result[key] = value
    return result
