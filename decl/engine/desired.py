"""Turn a validated manifest into Desired resources through each resource's provider."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from decl.core.resource import Desired, address_of
from decl.core.traits import KindTraits
from decl.errors import FieldError
from decl.manifest.load import LoadedManifest, dependency_graph, located
from decl.manifest.model import SECTION_OF_KIND
from decl.providers.base import COMMON_FIELDS, DesiredContext
from decl.providers.registry import LoadFailure, ProviderLoadError, Registry


@dataclass
class DesiredSet:
    """Desired resources, the traits of their providers, and providers that failed to load."""

    items: list[Desired] = field(default_factory=list)
    traits: dict[tuple[str, str], KindTraits] = field(default_factory=dict)
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)


def build_desired(loaded: LoadedManifest, registry: Registry) -> DesiredSet:
    """One Desired per manifest resource, normalised by its provider."""
    manifest = loaded.manifest
    graph = dependency_graph(manifest)
    result = DesiredSet()
    for kind, name, model in manifest.resources():
        provider_name = manifest.provider_name(kind, model)
        host = manifest.host_name(model)
        address = address_of(kind, name)
        context = DesiredContext(project=manifest.project, base_dir=loaded.base_dir,
                                 host_config=manifest.hosts.get(host), host=host)
        try:
            provider = registry.for_kind(provider_name, kind)
        except ProviderLoadError as exc:
            message = str(exc)
            if exc.reason is LoadFailure.NOT_INSTALLED:
                message = f"no provider is available for {kind} resources with provider " \
                    f"{provider_name!r} yet"
            result.unavailable[(provider_name, host)] = message
            spec = model.model_dump(mode="json", exclude=set(COMMON_FIELDS))
            state = str(getattr(model, "state", "present"))
            prevent = bool(model.lifecycle.prevent_destroy)
        else:
            try:
                spec = provider.spec(kind, name, model, context)
            except FieldError as exc:
                raise located(loaded, (SECTION_OF_KIND[kind], name, exc.field),
                              exc.message) from None
            state = provider.state(kind, model)
            prevent = (model.lifecycle.prevent_destroy
                       if model.lifecycle.prevent_destroy is not None
                       else provider.prevent_destroy_default(kind))
            for traits_kind, traits in provider.traits.items():
                result.traits[(provider_name, traits_kind)] = traits
        sensitive = _sensitive_fields(loaded, kind, name, spec)
        result.items.append(Desired(
            address=address, kind=kind, name=name, provider=provider_name, host=host,
            state=state, spec=spec, model=model, sensitive=sensitive,
            depends_on=tuple(sorted(graph.get(address, ()))), prevent_destroy=prevent,
            ignore_changes=tuple(model.lifecycle.ignore_changes), adopt=model.adopt,
        ))
    check_owners(loaded, result.items)
    return result


# Fields of a resource's spec that name a path it owns on its host, per kind.
OWNED_PATH_FIELDS = {"venv": "path", "wsl": "location"}
# Backends whose object names ignore case (Windows): `Web` and `web` are one VM there.
CASE_BLIND_PROVIDERS = frozenset({"hyperv", "wsl"})


def _machine(loaded: LoadedManifest, host: str) -> tuple[str, ...]:
    """One key per machine and login: two host entries with the same address, port and user
    reach the same place."""
    config = loaded.manifest.hosts.get(host)
    if host == "local" or config is None:
        return (host,)
    return ("ssh", (config.address or host).lower(), str(config.port or 22), config.user or "")


def _path_key(path: str, windows: bool) -> tuple[str, ...]:
    import ntpath
    import posixpath

    if windows:
        return tuple(p for p in ntpath.normpath(path).lower().replace("/", "\\").split("\\")
                     if p)
    return tuple(p for p in posixpath.normpath(path).split("/") if p) or ("/",)


def _owned_path(loaded: LoadedManifest, item: Desired) -> tuple[str, tuple[str, ...]] | None:
    """The path a resource owns on its host and the manifest field that sets it, if any.

    Venvs own their `path`, WSL distributions their `location`, QEMU VMs their VM directory
    VM_DIR/PROJECT/NAME (`options.vm_dir`)."""
    field_name = OWNED_PATH_FIELDS.get(item.kind)
    if field_name is not None:
        value = item.spec.get(field_name)
        return (value, (field_name,)) if isinstance(value, str) and value else None
    if item.kind == "vm" and item.provider == "qemu":
        from decl.providers.qemu.options import DEFAULT_VM_DIR

        options = getattr(item.model, "options", None) or {}
        root = options.get("vm_dir") if isinstance(options.get("vm_dir"), str) else None
        field_path = ("options", "vm_dir") if root else ()
        return (f"{(root or DEFAULT_VM_DIR).rstrip('/')}/{loaded.manifest.project}/"
                f"{item.name}", field_path)
    return None


def check_owners(loaded: LoadedManifest, items: list[Desired]) -> None:
    """One owner per path and per name on a machine: two resources whose paths are equal or
    nested, or whose names collide on one machine and backend, are a manifest error naming
    both positions (so `state: absent` on one can never delete what another uses)."""
    seen_paths: list[tuple[tuple[str, ...], tuple[str, ...], Desired, tuple[str, ...],
                           str]] = []
    seen_names: dict[tuple[Any, ...], Desired] = {}
    for item in items:
        machine = _machine(loaded, item.host)
        name = item.name.lower() if item.provider in CASE_BLIND_PROVIDERS else item.name
        key = (machine, item.provider, item.kind, name)
        if key in seen_names:
            other = seen_names[key]
            raise _both(loaded, item, (), other, (),
                        f"{item.address} on host {item.host} is the same {item.kind} as "
                        f"{other.address} on host {other.host} (one machine, one name)")
        seen_names[key] = item
        owned = _owned_path(loaded, item)
        if owned is None:
            continue
        value, field_path = owned
        expanded = os.path.expanduser(value) if machine == ("local",) else value
        parts = _path_key(expanded, windows=item.kind == "wsl")
        for other_machine, other_parts, other, other_field, other_value in seen_paths:
            if other_machine != machine:
                continue
            shorter = min(len(parts), len(other_parts))
            if parts[:shorter] != other_parts[:shorter]:
                continue
            how = "the same path as" if len(parts) == len(other_parts) else (
                "inside the path of" if len(parts) > len(other_parts) else "around the path of")
            raise _both(loaded, item, field_path, other, other_field,
                        f"{item.address} {'.'.join(field_path) or 'directory'} {value!r} is "
                        f"{how} {other.address} ({other_value!r}): each path has one owner")
        seen_paths.append((machine, parts, item, field_path, value))


def _both(loaded: LoadedManifest, item: Desired, path: tuple[str, ...], other: Desired,
          other_path: tuple[str, ...], message: str) -> Exception:
    first = loaded.document.location((SECTION_OF_KIND[other.kind], other.name, *other_path))
    where = f"; {other.address} is at {first}" if first else ""
    return located(loaded, (SECTION_OF_KIND[item.kind], item.name, *path), message + where)


def _get_path(data: Any, path: str) -> Any:
    """Value at a dotted path ("env.FOO") or None."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _sensitive_fields(loaded: LoadedManifest, kind: str, name: str,
                      spec: dict[str, Any]) -> frozenset[str]:
    """Spec fields a secret flows into, as dotted spec paths.

    A manifest path that the provider kept (`env.TOKEN`) is used as it is; one it reshaped
    (the `packages` list becomes `packages.NAME`) marks its whole top field; and any spec
    field whose value holds a secret handed out (through a variable, a filter, a file) is
    sensitive too, wherever it came from.
    """
    from decl.redact import Redactor

    prefix = (SECTION_OF_KIND[kind], name)
    found = set()
    for path in loaded.sensitive_paths:
        if path[:2] == prefix and len(path) > 2:
            dotted = ".".join(str(part) for part in path[2:])
            found.add(dotted if _get_path(spec, dotted) is not None else str(path[2]))
    redactor = Redactor(loaded.secret_values)
    if redactor:
        for key, value in spec.items():
            if key not in found and redactor.contains(json.dumps(value, default=str,
                                                                 ensure_ascii=False)):
                found.add(key)
    return frozenset(found)
