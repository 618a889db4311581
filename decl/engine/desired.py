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
from decl.providers.base import COMMON_FIELDS, DesiredContext, OwnedName, OwnedPath
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
    claims: list[Claim] = []
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
            owned_name, owned_paths = OwnedName(name), []
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
            owned_name = provider.owned_name(kind, name, model, spec)
            owned_paths = provider.owned_paths(kind, name, model, spec, context)
            for traits_kind, traits in provider.traits.items():
                result.traits[(provider_name, traits_kind)] = traits
        sensitive = _sensitive_fields(loaded, kind, name, spec)
        item = Desired(
            address=address, kind=kind, name=name, provider=provider_name, host=host,
            state=state, spec=spec, model=model, sensitive=sensitive,
            depends_on=tuple(sorted(graph.get(address, ()))), prevent_destroy=prevent,
            ignore_changes=tuple(model.lifecycle.ignore_changes), adopt=model.adopt,
        )
        result.items.append(item)
        claims.append(Claim(item, owned_name, tuple(owned_paths)))
    check_owners(loaded, claims)
    return result


@dataclass(frozen=True)
class Claim:
    """What one resource owns on its host, as its provider declares it."""

    item: Desired
    name: OwnedName
    paths: tuple[OwnedPath, ...]


def _machine(loaded: LoadedManifest, host: str) -> tuple[str, ...]:
    """One key per machine and login: two host entries with the same address, port and user
    reach the same place."""
    config = loaded.manifest.hosts.get(host)
    if host == "local" or config is None:
        return (host,)
    return ("ssh", (config.address or host).lower(), str(config.port or 22), config.user or "")


def _windows_host(loaded: LoadedManifest, host: str) -> bool:
    config = loaded.manifest.hosts.get(host)
    return config is not None and getattr(config, "shell", "posix") == "powershell"


def _path_key(path: str, windows: bool) -> tuple[str, ...]:
    import ntpath
    import posixpath

    if windows:
        return tuple(p for p in ntpath.normpath(path).lower().replace("/", "\\").split("\\")
                     if p)
    return tuple(p for p in posixpath.normpath(path).split("/") if p) or ("/",)


def check_owners(loaded: LoadedManifest, claims: list[Claim]) -> None:
    """One owner per path and per name on a machine: two resources whose paths (as their
    providers declare them: Provider.owned_paths) are equal or nested, or whose names
    (Provider.owned_name) collide on one machine and backend, are a manifest error naming
    both positions (so `state: absent` on one can never delete what another uses)."""
    tries: dict[Any, _PathTrie] = {}
    seen_names: dict[tuple[Any, ...], tuple[Desired, OwnedName]] = {}
    for claim in claims:
        item = claim.item
        machine = _machine(loaded, item.host)
        key = (machine, item.provider, item.kind, claim.name.key)
        if key in seen_names:
            other, other_name = seen_names[key]
            raise _both(loaded, item, claim.name.field, other, other_name.field,
                        f"{item.address} on host {item.host} is the same {item.kind} as "
                        f"{other.address} on host {other.host} (one machine, one name"
                        f"{': ' + repr(claim.name.key) if claim.name.key != item.name else ''})")
        seen_names[key] = (item, claim.name)
        for owned in claim.paths:
            windows = owned.windows or _windows_host(loaded, item.host)
            expanded = os.path.expanduser(owned.path) if machine == ("local",) else owned.path
            parts = _path_key(expanded, windows=windows)
            trie = tries.setdefault(machine, _PathTrie())
            clash = trie.clash(parts, item)
            if clash is not None:
                how, other, other_owned = clash
                where = ".".join(str(p) for p in owned.field)
                raise _both(loaded, item, owned.field, other, other_owned.field,
                            f"{item.address} {owned.what} {owned.path!r}"
                            f"{f' ({where})' if where else ''} is {how} {other.address} "
                            f"({other_owned.what} {other_owned.path!r}): each path has one "
                            "owner")
            trie.add(parts, item, owned)


class _PathTrie:
    """The paths claimed on one machine, by their parts. Finds another owner's equal,
    enclosing or enclosed path in time linear in the path's length, so that checking a
    manifest is linear in its size (comparing every pair took 10 s for 6,000 venvs)."""

    def __init__(self) -> None:
        self.root = _PathNode()

    def clash(self, parts: tuple[str, ...], item: Desired
              ) -> tuple[str, Desired, OwnedPath] | None:
        """(how, other resource, its path) for the first path of another resource that is
        equal to `parts`, encloses it or lies inside it; None when there is none."""
        node = self.root
        for depth, part in enumerate(parts, start=1):
            found = node.kids.get(part)
            if found is None:
                return None
            node = found
            if node.owner is not None and node.owner[0] is not item:
                how = "the same path as" if depth == len(parts) else "inside the path of"
                return how, node.owner[0], node.owner[1]
        for other, other_owned in node.below:
            if other is not item:
                return "around the path of", other, other_owned
        return None

    def add(self, parts: tuple[str, ...], item: Desired, owned: OwnedPath) -> None:
        """Claim `parts` for `item`."""
        node = self.root
        for part in parts:
            node = node.kids.setdefault(part, _PathNode())
            # Two distinct owners below a node are enough to name one that is not `item`.
            if len(node.below) < 2 and all(o is not item for o, _ in node.below):
                node.below.append((item, owned))
        if node.owner is None:
            node.owner = (item, owned)


class _PathNode:
    """One part of a path: the resource that claims the path ending here, and up to two
    distinct resources that claim this path or one inside it."""

    __slots__ = ("below", "kids", "owner")

    def __init__(self) -> None:
        self.kids: dict[str, _PathNode] = {}
        self.owner: tuple[Desired, OwnedPath] | None = None
        self.below: list[tuple[Desired, OwnedPath]] = []


def _both(loaded: LoadedManifest, item: Desired, path: tuple[str | int, ...],
          other: Desired, other_path: tuple[str | int, ...], message: str) -> Exception:
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
