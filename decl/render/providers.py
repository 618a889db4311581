"""`decl providers`: every provider and whether its tool works on each host."""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

from decl.connections.pool import ConnectionPool
from decl.errors import ConnectionFailed, DeclError
from decl.providers.registry import ProviderLoadError, Registry
from decl.render.text import esc


def provider_report(file: str) -> list[dict[str, Any]]:
    """Rows (provider, host, status, version, detail), checked in parallel."""
    hosts: dict[str, Any] = {}
    if os.path.exists(file):
        from decl.manifest.load import load

        hosts = dict(load(file).manifest.hosts)
    registry = Registry()
    pool = ConnectionPool(hosts)
    names = ["local", *sorted(h for h in hosts if h != "local")]

    def check(provider_name: str, host: str) -> dict[str, Any]:
        row: dict[str, Any] = {"provider": provider_name, "host": host,
                               "source": registry.entries.get(provider_name)}
        try:
            provider = registry.get(provider_name)
        except ProviderLoadError as exc:
            return {**row, "status": "broken", "version": None, "detail": str(exc)}
        try:
            availability = provider.check(pool.get(host))
        except ConnectionFailed as exc:
            return {**row, "status": "unreachable", "version": None, "detail": str(exc)}
        except DeclError as exc:
            return {**row, "status": "error", "version": None, "detail": str(exc)}
        return {**row, "status": "available" if availability.available else "missing",
                "version": availability.version, "detail": availability.detail}

    jobs = [(p, h) for p in registry.names() for h in names]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as workers:
        rows = list(workers.map(lambda job: check(*job), jobs))
    pool.close()
    return rows


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
