"""Turn a validated manifest into Desired resources through each resource's provider."""

from __future__ import annotations

from dataclasses import dataclass, field

from decl.core.resource import Desired, address_of
from decl.core.traits import KindTraits
from decl.manifest.load import LoadedManifest, dependency_graph
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
        sensitive = _sensitive_fields(loaded, kind, name)
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
            spec = provider.spec(kind, name, model, context)
            state = provider.state(kind, model)
            prevent = (model.lifecycle.prevent_destroy
                       if model.lifecycle.prevent_destroy is not None
                       else provider.prevent_destroy_default(kind))
            for traits_kind, traits in provider.traits.items():
                result.traits[(provider_name, traits_kind)] = traits
        result.items.append(Desired(
            address=address, kind=kind, name=name, provider=provider_name, host=host,
            state=state, spec=spec, model=model, sensitive=sensitive,
            depends_on=tuple(sorted(graph.get(address, ()))), prevent_destroy=prevent,
            ignore_changes=tuple(model.lifecycle.ignore_changes), adopt=model.adopt,
        ))
    return result


def _sensitive_fields(loaded: LoadedManifest, kind: str, name: str) -> frozenset[str]:
    prefix = (SECTION_OF_KIND[kind], name)
    found = set()
    for path in loaded.sensitive_paths:
        if path[:2] == prefix and len(path) > 2:
            found.add(".".join(str(part) for part in path[2:]))
    return frozenset(found)
