"""`decl providers` and `decl ping`: what each host offers, checked through the pool."""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

from decl.connections.pool import ConnectionPool
from decl.connections.probe import PingResult, ping
from decl.errors import ConnectionFailed, DeclError
from decl.manifest.load import load
from decl.providers.registry import ProviderLoadError, Registry


def provider_report(file: str) -> list[dict[str, Any]]:
    """Rows (provider, host, status, version, detail), checked in parallel."""
    hosts: dict[str, Any] = {}
    if os.path.exists(file):
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
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as workers:
            rows = list(workers.map(lambda job: check(*job), jobs))
    finally:
        pool.close()
    return rows


def ping_hosts(file: str, hosts: list[str], *, var_assignments: list[str],
               var_files: list[str], secret_files: list[str]) -> list[PingResult]:
    """Ping the hosts named (all of the manifest's when none), `local` included."""
    declared: dict[str, Any] = {}
    if os.path.exists(file) or file != "decl.yaml":
        declared = dict(load(file, var_assignments=var_assignments, var_files=var_files,
                             secret_files=secret_files).manifest.hosts)
    names = list(hosts) or ["local", *sorted(h for h in declared if h != "local")]
    unknown = [h for h in names if h != "local" and h not in declared]
    if unknown:
        raise DeclError(f"no host {', '.join(unknown)} in {file} (hosts: "
                        f"{', '.join(['local', *sorted(declared)])})")
    pool = ConnectionPool(declared)
    try:
        return ping(pool, names)
    finally:
        pool.close()
