"""`decl import` output: manifest entries to paste (or --write), and what cannot be adopted."""

from __future__ import annotations

from typing import Any

from decl.engine.importing import Candidate


def sections_of(candidates: list[Candidate]) -> dict[str, dict[str, dict[str, Any]]]:
    """{section: {name: entry}} of the candidates that can be adopted."""
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    for candidate in candidates:
        if candidate.entry is not None:
            sections.setdefault(candidate.section, {})[candidate.observed.name] = \
                candidate.entry
    return sections


def import_text(candidates: list[Candidate], host: str, provider: str) -> str:
    """YAML with the entries, preceded by comment lines saying what was found."""
    from decl.manifest.edit import add_resources

    adoptable = [c for c in candidates if c.entry is not None]
    lines = [f"# decl import: {len(adoptable)} object{'' if len(adoptable) == 1 else 's'} on "
             f"host {host} (provider {provider}) that the manifest does not name yet"]
    for candidate in candidates:
        if candidate.entry is None:
            lines.append(f"# not importable: {candidate.observed.address}: {candidate.note}")
    if not adoptable:
        return "\n".join(lines) + "\n"
    body = add_resources("{}\n", sections_of(candidates))
    return "\n".join(lines) + "\n" + body
