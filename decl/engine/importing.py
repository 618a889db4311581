"""`decl import`: the objects on a host that no manifest resource names, as manifest entries
with `adopt: true` (the next plan adopts them with no other change)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from decl.core.resource import Observed
from decl.engine.session import Session
from decl.errors import DeclError
from decl.manifest.model import SECTION_OF_KIND
from decl.providers.base import ImportNotSupported, ImportScope


@dataclass(frozen=True)
class Candidate:
    """One object found: its manifest entry, or why it cannot be adopted."""

    observed: Observed
    entry: dict[str, Any] | None
    note: str = ""

    @property
    def section(self) -> str:
        """The manifest section it goes in (vms, containers, ...)."""
        return SECTION_OF_KIND[self.observed.kind]


def import_candidates(session: Session, host: str, provider_name: str,
                      names: list[str], paths: list[str]) -> list[Candidate]:
    """Objects of `provider_name` on `host` that carry no marks and that no resource of the
    manifest names (by name, or by path for venvs); only `names` when given."""
    manifest = session.loaded.manifest
    if host != "local" and host not in manifest.hosts:
        raise DeclError(f"no host {host} in {session.loaded.file} (hosts: "
                        f"{', '.join(['local', *sorted(manifest.hosts)])})")
    provider = session.registry.get(provider_name)
    conn = session.pool.get(host)
    found = provider.inventory(conn, ImportScope(manifest.project, tuple(paths)))
    on_host = [d for d in session.desired.items if d.host == host]
    taken = {d.address for d in on_host}
    taken_paths = {conn.expand_user(str(d.spec["path"])) for d in on_host
                   if d.kind == "venv" and d.spec.get("path")}
    wanted = set(names)
    result: list[Candidate] = []
    for observed in found:
        if observed.address in taken or observed.handle.get("expanded") in taken_paths:
            continue
        if wanted and observed.name not in wanted:
            continue
        try:
            entry = provider.to_manifest(observed)
        except ImportNotSupported as exc:
            result.append(Candidate(observed, None, str(exc)))
            continue
        if host != manifest.defaults.host:
            entry = {"host": host, **entry}
        if observed.kind == "vm" and provider_name != manifest.defaults.vm_provider:
            entry = {"provider": provider_name, **entry}
        result.append(Candidate(observed, {**entry, "adopt": True}))
    missing = wanted - {c.observed.name for c in result}
    if missing:
        raise DeclError(f"nothing to import named {', '.join(sorted(missing))} on host {host} "
                        f"(provider {provider_name}): it does not exist, carries decl's marks, "
                        "or the manifest names it already")
    return result
