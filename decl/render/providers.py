"""`decl providers`: every provider and whether its tool works on each host, as text."""

from __future__ import annotations

from typing import Any

from decl.render.text import esc


def provider_text(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as aligned text."""
    colours = {"available": "green", "missing": "yellow", "broken": "red", "unreachable": "red",
               "error": "red"}
    lines = []
    for row in rows:
        colour = colours.get(row["status"], "")
        version = f" {row['version']}" if row.get("version") else ""
        detail = f"  [dim]{esc(row['detail'])}[/]" if row.get("detail") else ""
        lines.append(f"{row['provider']:<11} {row['host']:<12} [{colour}]{row['status']}[/]"
                     f"{esc(version)}{detail}")
    return lines
