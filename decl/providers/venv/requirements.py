"""Requirement specifiers: what the manifest asks for vs what a venv has installed."""

from __future__ import annotations

import os
from typing import Any

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from decl.errors import ManifestError

# Installed alongside every venv: never removed because the manifest does not list them.
SEED_PACKAGES = frozenset({"pip", "setuptools", "wheel", "distribute"})


def parse_requirement(text: str, where: str) -> Requirement:
    """A PEP 508 requirement, or a ManifestError naming where it was written."""
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise ManifestError(f"{where}: invalid requirement {text!r}: {exc}") from None


def read_requirements_file(path: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Requirement lines of a requirements file (comments, blanks and -r includes handled)."""
    real = os.path.realpath(path)
    if real in seen:
        raise ManifestError(f"{path}: requirements files include each other in a loop")
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise ManifestError(f"cannot read requirements file {path}: {exc.strerror}") from None
    out: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            include = line.split(None, 1)[1].strip()
            out.extend(read_requirements_file(os.path.join(os.path.dirname(path), include),
                                              seen | {real}))
            continue
        if line.startswith("-"):
            raise ManifestError(
                f"{path}:{number}: option {line.split()[0]!r} is not supported in a requirements "
                "file used by decl; use the venv's index_url / extra_index_urls / find_links / "
                "no_index fields"
            )
        out.append(line)
    return out


def desired_packages(
    packages: list[str], requirement_lines: list[str], where: str
) -> dict[str, str]:
    """{canonical name: requirement text}; the manifest's packages win over the file's."""
    result: dict[str, str] = {}
    for text in [*requirement_lines, *packages]:
        requirement = parse_requirement(text, where)
        result[canonicalize_name(requirement.name)] = str(requirement)
    return dict(sorted(result.items()))


def _satisfies(requirement: Requirement, version: str | None) -> bool:
    if version is None:
        return False
    if not requirement.specifier:
        return True
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _marker_ok(requirement: Requirement, env: dict[str, Any], extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    try:
        if requirement.marker.evaluate({**env, "extra": ""}):
            return True
        return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in extras)
    except (InvalidMarker, UndefinedEnvironmentName, Exception):  # noqa: BLE001
        return True  # unknown: keep the dependency rather than remove it


def observed_packages(
    wanted: dict[str, str], dists: list[dict[str, Any]], env: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """Observed {name: spec} in the manifest's terms, and {name: version} installed.

    A wanted package that is installed at a satisfying version shows the wanted text (no
    diff); one at another version shows `==VERSION`; a missing one is absent. Installed
    packages that nothing wanted needs (directly or as a dependency) show `==VERSION`, so
    that the plan removes them. Seed packages (pip, setuptools, wheel) are left alone.
    """
    installed: dict[str, dict[str, Any]] = {str(canonicalize_name(d["name"])): d for d in dists}
    requirements = {name: Requirement(text) for name, text in wanted.items()}
    keep: set[str] = set()
    stack = [(name, set(req.extras)) for name, req in requirements.items()]
    while stack:
        name, extras = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        dist = installed.get(name)
        if dist is None:
            continue
        for text in dist.get("requires", []):
            try:
                dependency = Requirement(text)
            except InvalidRequirement:
                continue
            if _marker_ok(dependency, env, extras):
                stack.append((canonicalize_name(dependency.name), set(dependency.extras)))
    observed: dict[str, str] = {}
    for name, requirement in requirements.items():
        dist = installed.get(name)
        if dist is None:
            continue
        observed[name] = wanted[name] if _satisfies(requirement, dist.get("version")) \
            else f"{requirement.name}=={dist.get('version')}"
    for name, dist in installed.items():
        if name not in keep and name not in SEED_PACKAGES:
            observed[name] = f"{dist['name']}=={dist.get('version')}"
    versions = {name: str(dist.get("version")) for name, dist in installed.items()}
    return dict(sorted(observed.items())), versions


def python_matches(wanted: str, version: str | None) -> bool:
    """'3.11' matches 3.11.7; '3.11.7' matches only 3.11.7."""
    if version is None:
        return False
    wanted_parts = wanted.split(".")
    return version.split(".")[: len(wanted_parts)] == wanted_parts
