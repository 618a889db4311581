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


def ignored_fields(entry: dict[str, Any]) -> list[str]:
    """The `lifecycle.ignore_changes` of an entry decl import wrote."""
    lifecycle = entry.get("lifecycle")
    return list(lifecycle.get("ignore_changes") or []) if isinstance(lifecycle, dict) else []


def ignore_notes(candidates: list[Candidate]) -> list[str]:
    """One line per entry whose fields cannot be described as the host has them."""
    return [f"{c.observed.address}: its entry cannot describe {', '.join(fields)} as the host "
            "has them: ignore_changes keeps decl from acting on them"
            for c in candidates if c.entry is not None and (fields := ignored_fields(c.entry))]


def import_text(candidates: list[Candidate], host: str, provider: str) -> str:
    """YAML with the entries, preceded by comment lines saying what was found."""
    from decl.manifest.edit import add_resources

    adoptable = [c for c in candidates if c.entry is not None]
    lines = [f"# decl import: {len(adoptable)} object{'' if len(adoptable) == 1 else 's'} on "
             f"host {host} (provider {provider}) that the manifest does not name yet"]
    for candidate in candidates:
        if candidate.entry is None:
            lines.append(f"# not importable: {candidate.observed.address}: {candidate.note}")
    lines += [f"# {note}" for note in ignore_notes(candidates)]
    if not adoptable:
        return "\n".join(lines) + "\n"
    body = add_resources("{}\n", sections_of(candidates))
    return "\n".join(lines) + "\n" + body
