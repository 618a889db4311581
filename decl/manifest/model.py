"""Pydantic models of the manifest, format version 1: the single source of truth.

`decl schema` prints the JSON Schema generated from these models; every field carries a
description so that editors can document and complete it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from decl.core.units import parse_size

PROJECT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
KINDS = ("vm", "container", "network", "volume", "wsl", "venv")
SECTION_OF_KIND = {
    "vm": "vms",
    "container": "containers",
    "network": "networks",
    "volume": "volumes",
    "wsl": "wsl",
    "venv": "venvs",
}
KIND_OF_SECTION = {section: kind for kind, section in SECTION_OF_KIND.items()}


def _not_a_bool(value: Any) -> Any:
    """YAML's `true` is not the number 1 (pydantic would take it as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def _check_requirement(value: str) -> str:
    """A PEP 508 requirement; an option (`--index-url=...`) or bad text is refused here, at
    its position in the manifest, rather than when plan asks the provider."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as Parsed

    text = value.strip()
    if text.startswith("-"):
        option = text.split("=", 1)[0].split()[0]
        raise ValueError(f"{option!r} is a pip option, not a package: use the venv's "
                         "index_url / extra_index_urls / find_links / no_index fields")
    try:
        parsed = Parsed(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not PEP 508"
        raise ValueError(f"invalid requirement {text!r}: {reason}") from None
    for spec in parsed.specifier:
        if not spec.version.strip():
            raise ValueError(f"invalid requirement {text!r}: {spec.operator} needs a version")
    return value


Requirement = Annotated[str, AfterValidator(_check_requirement)]
# Provider names: any registered provider (checked against the registry by `validate`).
PROVIDER_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
ARCHES = ("x86_64", "i686", "aarch64", "armv7l", "riscv64", "ppc64le", "s390x")

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string",
                 "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGTP]i?B?|[kKMGTP]|B)?\s*$"},
                {"type": "integer", "minimum": 0},
            ],
            "description": "A size: bytes, or a number with a unit (512MiB, 2GiB, 20G).",
        }
    ),
]

WINDOWS_PATH = re.compile(r"^([A-Za-z]:\\|\\\\[^\\/:*?\"<>|]+\\[^\\/:*?\"<>|]+)")
WINDOWS_BAD_CHARS = re.compile(r"[<>\"|?*\x00-\x1f]")


def _as_str(value: Any) -> Any:
    """Numbers and booleans written where text is expected are taken as their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_str)]

RESTART_PATTERN = r"^(no|always|unless-stopped|on-failure(:[0-9]+)?)$"


def _restart_policy(value: Any) -> Any:
    """A container's restart policy, with one clear message when it is not one."""
    if isinstance(value, str) and not re.match(RESTART_PATTERN, value):
        raise ValueError(f"restart policy {value!r} is not one of no, always, unless-stopped, "
                         "on-failure or on-failure:N")
    return value


class Strict(BaseModel):
    """Base of every manifest model: unknown fields are errors.

    Validators are built on first use (`defer_build`), not when the module is imported: a
    command pays only for the models it validates with.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Lifecycle(Strict):
    """Guards on how decl may change a resource."""

    prevent_destroy: bool | None = Field(
        None,
        description="Refuse any plan that deletes or replaces this resource. Volumes default "
        "to true (write false to allow deleting them); everything else to false.",
    )
    ignore_changes: list[str] = Field(
        default_factory=list,
        description="Fields whose differences are never acted on (e.g. [memory, env]).",
    )
    backup_dir: str | None = Field(
        None,
        description="Before destroying a WSL distro, export it as a tarball into this "
        "directory (on the resource's host).",
    )


class Resource(Strict):
    """Fields that every kind of resource has."""

    host: str | None = Field(
        None, description="Name of a host under `hosts:` (default: defaults.host, else local)."
    )
    depends_on: list[str] = Field(
        default_factory=list,
        description="Addresses (KIND.NAME) that must be created before this resource.",
    )
    lifecycle: Lifecycle = Field(default_factory=lambda: Lifecycle(), description="Change guards.")
    adopt: bool = Field(
        False,
        description="Take over an existing object of this name that decl did not create "
        "(it gets this project's marks).",
    )

    def references(self) -> list[str]:
        """Addresses this resource refers to implicitly (networks, volumes...)."""
        return []


class Host(Strict):
    """A machine reached over SSH (or `local`)."""

    address: str | None = Field(None, description="Host name or IP address (default: the key).")
    user: str | None = Field(None, description="SSH user (default: ~/.ssh/config, else $USER).")
    port: int | None = Field(None, ge=1, le=65535, description="SSH port (default 22).")
    identity_file: str | None = Field(None, description="Private key file.")
    identity_passphrase_env: str | None = Field(
        None, description="Environment variable that holds the key's passphrase."
    )
    known_hosts: str | None = Field(
        None,
        description="known_hosts file to check host keys against (default ~/.ssh/known_hosts).",
    )
    accept_new_host_key: bool = Field(
        False, description="Trust and record an unknown host key on first connection."
    )
    proxy_jump: str | None = Field(None, description="Jump host, [user@]host[:port].")
    shell: Literal["posix", "powershell"] = Field(
        "posix", description="The remote shell commands are quoted for."
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to wait for the connection.")
    command_timeout: float | None = Field(
        None, gt=0, description="Default seconds a remote command may run."
    )
    keepalive: int = Field(30, ge=0, description="Seconds between keepalive packets (0: off).")
    python: str = Field("python3", description="Python interpreter on the host used by decl.")
    docker_url: str | None = Field(
        None, description="Docker engine URL for this host (unix://, tcp://, ssh://)."
    )
    docker_tls: dict[str, str] | None = Field(
        None, description="TLS files for a tcp:// engine: ca_cert, client_cert, client_key."
    )


class Defaults(Strict):
    """Values used when a resource leaves them out."""

    host: str = Field("local", description="Host of resources that name none.")
    vm_provider: str = Field(
        "libvirt", pattern=PROVIDER_PATTERN, description="Provider of VMs that name none."
    )


class Disk(Strict):
    """A VM disk: a new empty one of `size`, or one made from `image`."""

    size: Size | None = Field(None, description="Disk size; may grow later, never shrink.")
    image: str | None = Field(None, description="Base image: a local path or an http(s) URL.")
    checksum: str | None = Field(
        None,
        pattern=r"^(sha256|sha512):[0-9a-fA-F]+$",
        description="sha256:HEX or sha512:HEX of the image (required for URLs).",
    )

    @model_validator(mode="after")
    def _needs_something(self) -> Disk:
        if self.size is None and self.image is None:
            raise ValueError("a disk needs a size, an image, or both")
        if self.image and self.image.startswith(("http://", "https://")) and not self.checksum:
            raise ValueError("a disk image URL needs a checksum (sha256:...)")
        return self


class VmNetwork(Strict):
    """How a VM is attached to the network."""

    mode: Literal["nat", "bridge", "none"] = Field("nat", description="nat, bridge or none.")
    bridge: str | None = Field(
        None, description="Bridge (libvirt) or virtual switch (Hyper-V) for mode bridge."
    )

    @model_validator(mode="after")
    def _bridge_named(self) -> VmNetwork:
        if self.mode == "bridge" and not self.bridge:
            raise ValueError("network mode bridge needs `bridge: NAME`")
        return self


class CloudInit(Strict):
    """A NoCloud seed: hostname, a user and its SSH keys."""

    hostname: str | None = Field(None, description="Guest host name.")
    user: str | None = Field(None, description="User created in the guest.")
    ssh_authorized_keys: list[str] = Field(default_factory=list, description="Public keys.")


class Vm(Resource):
    """A virtual machine on one of the hypervisors."""

    provider: str | None = Field(
        None, pattern=PROVIDER_PATTERN,
        description="Hypervisor: a registered VM provider (default: defaults.vm_provider).",
    )
    state: Literal["running", "stopped", "absent"] = Field("running", description="Run state.")
    cpus: int = Field(1, ge=1, le=512, description="Virtual CPUs.")
    memory: Size = Field(1024**3, description="Memory size.")
    arch: Literal[ARCHES] | None = Field(  # type: ignore[valid-type]
        None, description="Guest architecture (default: the host's)."
    )
    firmware: Literal["bios", "uefi"] = Field("bios", description="bios or uefi.")
    disks: list[Disk] = Field(default_factory=list, description="Disks, in order.")
    cdrom: str | None = Field(None, description="ISO image attached as a CD-ROM.")
    network: VmNetwork = Field(
        default_factory=lambda: VmNetwork(), description="Network attachment."
    )
    cloud_init: CloudInit | None = Field(None, description="NoCloud seed for the guest.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Provider-specific settings, checked by the provider's own options model "
        "(see the schema's per-provider definitions).",
    )


class Healthcheck(Strict):
    """A container health check."""

    test: list[str] = Field(description='Command, e.g. ["CMD", "true"] or ["CMD-SHELL", "..."].')
    interval: str | None = Field(None, description="Duration such as 30s.")
    timeout: str | None = Field(None, description="Duration such as 5s.")
    retries: int | None = Field(None, ge=0, description="Failures before unhealthy.")
    start_period: str | None = Field(None, description="Grace period such as 10s.")


class Container(Resource):
    """A Docker (or Podman) container."""

    image: str = Field(description="Image reference, e.g. postgres:16.")
    pull: Literal["missing", "always", "never"] = Field(
        "missing", description="When to pull the image."
    )
    state: Literal["running", "stopped", "absent"] = Field("running", description="Run state.")
    command: list[str] | Text | None = Field(None, description="Command (argv list or string).")
    entrypoint: list[str] | Text | None = Field(None, description="Entrypoint override.")
    env: dict[str, Text] = Field(default_factory=dict, description="Environment variables.")
    ports: list[Text] = Field(
        default_factory=list, description="[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]."
    )
    volumes: list[str] = Field(
        default_factory=list, description="NAME_OR_PATH:CONTAINER_PATH[:ro|rw]."
    )
    networks: list[str] = Field(default_factory=list, description="Networks to join.")
    restart: Annotated[str, BeforeValidator(_restart_policy)] = Field(
        "no",
        pattern=RESTART_PATTERN,
        description="no, always, unless-stopped or on-failure[:N].",
    )
    memory: Size | None = Field(None, description="Memory limit.")
    cpus: float | None = Field(None, gt=0, description="CPU limit (1.5 = one and a half CPUs).")
    user: Text | None = Field(None, description="User[:group] inside the container.")
    workdir: str | None = Field(None, description="Working directory.")
    hostname: str | None = Field(None, description="Container host name.")
    labels: dict[str, Text] = Field(default_factory=dict, description="Extra labels.")
    init: bool = Field(False, description="Run an init process as PID 1.")
    healthcheck: Healthcheck | None = Field(None, description="Health check.")

    def references(self) -> list[str]:
        refs = [f"network.{name}" for name in self.networks]
        for spec in self.volumes:
            source = spec.split(":", 1)[0]
            if source and not source.startswith(("/", ".", "~")):
                refs.append(f"volume.{source}")
        return refs


class DockerNetwork(Resource):
    """A Docker network."""

    driver: str = Field("bridge", description="Network driver.")
    subnet: str | None = Field(None, description="IPv4 subnet in CIDR form.")
    gateway: str | None = Field(None, description="Gateway address inside the subnet.")
    internal: bool = Field(False, description="No outside connectivity.")
    state: Literal["present", "absent"] = Field("present", description="present or absent.")


class DockerVolume(Resource):
    """A Docker volume. Protected from deletion unless lifecycle.prevent_destroy is false."""

    driver: str = Field("local", description="Volume driver.")
    options: dict[str, Text] = Field(default_factory=dict, description="Driver options.")
    state: Literal["present", "absent"] = Field("present", description="present or absent.")


class WslSource(Strict):
    """Where a WSL distro comes from: a named distribution or a root file system tarball."""

    distribution: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="Name from `wsl --list --online`.",
    )
    tarball: str | None = Field(None, description="Path of a rootfs tarball on the Windows host.")

    @model_validator(mode="after")
    def _exactly_one(self) -> WslSource:
        if (self.distribution is None) == (self.tarball is None):
            raise ValueError("give exactly one of `distribution` or `tarball`")
        if self.tarball is not None:
            check_windows_path(self.tarball)
        return self


def check_windows_path(value: str) -> str:
    """Accept C:\\dir or \\\\server\\share paths; reject relative paths and bad characters."""
    if not WINDOWS_PATH.match(value):
        raise ValueError(
            f"{value!r} is not an absolute Windows path (C:\\dir\\... or \\\\server\\share\\...)"
        )
    if WINDOWS_BAD_CHARS.search(value[2:]):
        raise ValueError(f"{value!r} contains a character Windows paths cannot hold")
    return value


class Wsl(Resource):
    """A WSL distro on a Windows host."""

    source: WslSource = Field(description="Distribution name or tarball.")
    location: str | None = Field(None, description="Install folder on the Windows host.")
    version: Literal[1, 2] = Field(2, description="WSL version 1 or 2.")
    default: bool = Field(False, description="Make this the default distro.")
    user: str | None = Field(
        None, pattern=r"^[a-z_][a-z0-9_.-]{0,31}$",
        description="Default user, written to /etc/wsl.conf (the user must exist in the distro).",
    )
    state: Literal["running", "stopped", "absent"] = Field("stopped", description="Run state.")

    @field_validator("location")
    @classmethod
    def _windows_location(cls, value: str | None) -> str | None:
        return None if value is None else check_windows_path(value)

    @model_validator(mode="after")
    def _import_needs_location(self) -> Wsl:
        if self.source.tarball is not None and self.location is None:
            raise ValueError("a distro imported from `source.tarball` needs `location` "
                             "(the folder on the Windows host that will hold its disk)")
        if self.lifecycle.backup_dir is not None:
            check_windows_path(self.lifecycle.backup_dir)
        return self


class Venv(Resource):
    """A Python virtual environment and its packages."""

    path: str = Field(max_length=4096,
                      description="Directory of the venv (~ expands on the venv's host).")
    python: str | None = Field(
        None, description='A version ("3.11") or an interpreter path (default: the host\'s python).'
    )
    packages: list[Requirement] = Field(
        default_factory=list, description="Requirement specifiers, e.g. ruff==0.6.9."
    )
    requirements: str | None = Field(
        None, description="A requirements file (relative to the manifest) merged with packages."
    )
    backend: Literal["auto", "venv", "uv"] = Field(
        "auto", description="auto picks uv when it is installed."
    )
    pip: bool | None = Field(
        None,
        description="Install pip into the venv (default: yes for venv, no for uv, as uv does).",
    )
    system_site_packages: bool = Field(False, description="See the system's site-packages.")
    index_url: str | None = Field(None, description="Package index URL.")
    extra_index_urls: list[str] = Field(default_factory=list, description="Extra index URLs.")
    find_links: list[str] = Field(default_factory=list, description="Wheel directories or URLs.")
    no_index: bool = Field(False, description="Do not use any package index.")
    state: Literal["present", "absent"] = Field("present", description="present or absent.")


class Manifest(Strict):
    """A decl manifest, format version 1."""

    version: Annotated[Literal[1], BeforeValidator(_not_a_bool)] = Field(
        description="Manifest format version; 1.")
    project: str = Field(
        pattern=PROJECT_PATTERN,
        description="Project name: the ownership namespace marked on every object decl makes.",
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Jinja variables.")
    defaults: Defaults = Field(
        default_factory=lambda: Defaults(), description="Defaults for resources."
    )
    hosts: dict[str, Host] = Field(default_factory=dict, description="Hosts by name.")
    vms: dict[str, Vm] = Field(default_factory=dict, description="Virtual machines.")
    containers: dict[str, Container] = Field(default_factory=dict, description="Containers.")
    networks: dict[str, DockerNetwork] = Field(default_factory=dict, description="Networks.")
    volumes: dict[str, DockerVolume] = Field(default_factory=dict, description="Volumes.")
    wsl: dict[str, Wsl] = Field(default_factory=dict, description="WSL distros.")
    venvs: dict[str, Venv] = Field(default_factory=dict, description="Python venvs.")

    def resources(self) -> list[tuple[str, str, Resource]]:
        """(kind, name, model) for every resource, in manifest order."""
        out: list[tuple[str, str, Resource]] = []
        for kind in KINDS:
            section: dict[str, Resource] = getattr(self, SECTION_OF_KIND[kind])
            out.extend((kind, name, model) for name, model in section.items())
        return out

    def provider_name(self, kind: str, model: Resource) -> str:
        """The provider that handles this resource."""
        if kind == "vm":
            return str(getattr(model, "provider", None) or self.defaults.vm_provider)
        return {"container": "docker", "network": "docker", "volume": "docker"}.get(kind, kind)

    def host_name(self, model: Resource) -> str:
        """The host this resource lives on."""
        return model.host or self.defaults.host


_PARTIAL: dict[frozenset[str], type[BaseModel]] = {}


def validate_manifest(data: Any) -> Manifest:
    """`Manifest.model_validate(data)`, building validators only for the sections present.

    A manifest of venvs does not pay for the VM, container or WSL models: the data is
    validated by a model with the same name, base and fields as Manifest, minus the
    resource sections it does not have (so a section it has by mistake is still an unknown
    field there and reported as on Manifest), then its values become a Manifest.
    """
    hooks = Manifest.__pydantic_decorators__
    if not isinstance(data, dict) or hooks.model_validators or hooks.field_validators:
        return Manifest.model_validate(data)  # Manifest's own checks: the whole model
    present = frozenset(k for k in KIND_OF_SECTION if k in data)
    model = _PARTIAL.get(present)
    if model is None:
        from pydantic import create_model

        fields: dict[str, Any] = {
            name: (info.annotation, info)
            for name, info in Manifest.model_fields.items()
            if name not in KIND_OF_SECTION or name in present}
        model = create_model("Manifest", __base__=Strict, __doc__=Manifest.__doc__,
                             **fields)
        _PARTIAL[present] = model
    checked = model.model_validate(data)
    return Manifest.model_construct(_fields_set=checked.model_fields_set, **dict(checked))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the manifest (what `decl schema` prints)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://decl.dev/schemas/decl.schema.json"
    schema["title"] = "decl manifest"
    return schema
