"""The providers' part of `decl validate` (also run by plan and apply): provider names and
each provider's own `validate` hook, reported at file:line:col like schema errors."""

from __future__ import annotations

from decl.errors import ManifestError
from decl.manifest.load import LoadedManifest, error_at
from decl.manifest.model import SECTION_OF_KIND
from decl.providers.base import (
    ManifestPath,
    ValidateContext,
    ValidationProblem,
    provider_names_hint,
)
from decl.providers.registry import DOCUMENTED, LoadFailure, ProviderLoadError, Registry


def manifest_problems(loaded: LoadedManifest, registry: Registry) -> list[ValidationProblem]:
    """Every problem the providers find in a loaded manifest, in manifest order."""
    manifest = loaded.manifest
    problems: list[ValidationProblem] = []
    for kind, name, model in manifest.resources():
        section = SECTION_OF_KIND[kind]
        provider_name = manifest.provider_name(kind, model)
        named_at: ManifestPath = (section, name, "provider") \
            if getattr(model, "provider", None) else ("defaults", "vm_provider")
        try:
            provider = registry.for_kind(provider_name, kind)
        except ProviderLoadError as exc:
            problem = _name_problem(exc, registry, kind, provider_name, named_at)
            if problem is not None and problem not in problems:
                problems.append(problem)
            continue
        host = manifest.host_name(model)
        host_config = manifest.hosts.get(host)
        context = ValidateContext(
            project=manifest.project, base_dir=loaded.base_dir, kind=kind, name=name,
            path=(section, name), host=host,
            host_shell=host_config.shell if host_config is not None else "posix")
        problems.extend(type(provider).validate(kind, model, context))
    return problems


def _name_problem(exc: ProviderLoadError, registry: Registry, kind: str, name: str,
                  path: ManifestPath) -> ValidationProblem | None:
    """An unknown provider name is a manifest error; a documented one that is not
    installed, or a plugin that fails to load, is left for the plan to report."""
    if exc.reason is LoadFailure.BROKEN:
        return None
    if exc.reason is LoadFailure.NOT_INSTALLED and name in DOCUMENTED.get(kind, ()):
        return None
    section = SECTION_OF_KIND[kind]
    if exc.reason is LoadFailure.WRONG_KIND:
        handles = ", ".join(SECTION_OF_KIND[k] for k in registry.get(name).kinds)
        return ValidationProblem(path, f"provider {name!r} does not handle {section} "
                                 f"(it handles {handles})")
    names = registry.names_for(kind)
    return ValidationProblem(path, f"unknown provider {name!r} for {section}"
                             f"{provider_names_hint(name, names)}")


def check_manifest(loaded: LoadedManifest, registry: Registry) -> None:
    """Raise a ManifestError at the first problem (with how many more there are)."""
    problems = manifest_problems(loaded, registry)
    if not problems:
        return
    first = problems[0]
    message = first.message
    more = len(problems) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    raise error_at(loaded.document, first.path, message, key=first.key)


def problem_errors(loaded: LoadedManifest, registry: Registry) -> list[ManifestError]:
    """Every problem as its own located ManifestError (for tools that want all of them)."""
    return [error_at(loaded.document, p.path, p.message, key=p.key)
            for p in manifest_problems(loaded, registry)]
