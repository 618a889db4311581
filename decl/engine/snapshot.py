"""Discover everything the manifest touches, in parallel per (provider, host)."""

from __future__ import annotations

import concurrent.futures
from collections import defaultdict
from collections.abc import Iterable

from decl.connections.pool import ConnectionPool
from decl.core.resource import Desired, Observed, Snapshot
from decl.errors import ConnectionFailed, DeclError
from decl.providers.registry import ProviderLoadError, Registry

# How many (provider, host) groups discover at once: each opens its connection (an SSH
# handshake for a remote host) and runs its provider's discovery. `--discovery-parallelism`.
DISCOVERY_PARALLELISM = [16]


def set_discovery_parallelism(value: int) -> None:
    """The bound of `take_snapshot`'s workers from now on (the CLI's option)."""
    DISCOVERY_PARALLELISM[0] = max(1, value)


def take_snapshot(
    project: str,
    desired: Iterable[Desired],
    registry: Registry,
    pool: ConnectionPool,
    *,
    extra_groups: Iterable[tuple[str, str]] = (),
    unavailable: dict[tuple[str, str], str] | None = None,
    workers: int | None = None,
) -> Snapshot:
    """One discovery pass per (provider, host), run in parallel; failures are per group."""
    groups: dict[tuple[str, str], list[Desired]] = defaultdict(list)
    for item in desired:
        groups[(item.provider, item.host)].append(item)
    for group in extra_groups:
        groups.setdefault(group, [])
    blocked = dict(unavailable or {})
    todo = {key: items for key, items in groups.items() if key not in blocked}

    observed: list[Observed] = []
    problems: dict[str, str] = {}
    failed_hosts: set[str] = set()
    if todo:
        bound = workers or DISCOVERY_PARALLELISM[0]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(bound, len(todo))) as pool_:
            futures = {
                pool_.submit(discover_group, project, provider, host, items, registry, pool):
                (provider, host)
                for (provider, host), items in todo.items()
            }
            for future in concurrent.futures.as_completed(futures):
                key = futures[future]
                found, found_problems, reason, host_failed = future.result()
                if reason is not None:
                    if todo[key]:
                        blocked[key] = reason
                        if host_failed:
                            failed_hosts.add(key[1])
                    continue
                observed.extend(found)
                problems.update(found_problems)
    observed.sort(key=lambda o: (o.address, o.host))
    return Snapshot(observed=tuple(observed), unavailable=blocked, problems=problems,
                    failed_hosts=frozenset(failed_hosts))


def discover_group(
    project: str,
    provider_name: str,
    host: str,
    items: list[Desired],
    registry: Registry,
    pool: ConnectionPool,
) -> tuple[list[Observed], dict[str, str], str | None, bool]:
    """Discovery on one host by one provider.

    Returns (observed, problems, why it is unavailable or None, whether the host failed).
    """
    try:
        provider = registry.get(provider_name)
    except ProviderLoadError as exc:
        return [], {}, str(exc), False
    try:
        conn = pool.get(host)
    except ConnectionFailed as exc:
        return [], {}, str(exc), True
    try:
        availability, found = provider.check_and_discover(conn, project, items)
        if not availability.available or found is None:
            detail = f": {availability.detail}" if availability.detail else ""
            return [], {}, f"provider {provider_name} is not usable on host {host}{detail}", \
                False
    except ConnectionFailed as exc:
        return [], {}, str(exc), True
    except DeclError as exc:
        return [], {}, f"discovery by {provider_name} on host {host} failed: {exc}", False
    return found.observed, found.problems, None, False
