"""The apply run: lock the project, plan, confirm, journal, execute, record what was touched.

The CLI hands in how to show the plan and how to ask; this module decides nothing about
output and never prints.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from decl.connections.hostlock import HostLock, release_all
from decl.connections.hostlock import supported as host_lock_supported
from decl.connections.reaper import REAPER
from decl.core.plan import Plan
from decl.core.planner import PlanOptions
from decl.engine.executor import Executor, Reporter, Summary
from decl.engine.journal_rotation import rotate_journal
from decl.engine.recovery import kill_leftover_tools, leftovers, read_journal, start_token
from decl.engine.session import Session, check_stale
from decl.engine.statedir import (
    Journal,
    ProjectLock,
    journal_path,
    now,
    read_touched,
    record_touched,
)
from decl.errors import ConnectionFailed, PlanError, ProviderError


@dataclass(frozen=True)
class ApplyResult:
    """The plan that was carried out and, when anything ran, the executor's summary."""

    plan: Plan
    summary: Summary | None

    @property
    def ok(self) -> bool:
        """Nothing failed, nothing was skipped, not interrupted (or nothing to do)."""
        return self.summary is None or self.summary.ok


def run_apply(
    session: Session,
    options: PlanOptions,
    *,
    verb: str,
    parallelism: int,
    saved: dict[str, Any] | None,
    show_plan: Callable[[Plan], None],
    confirm: Callable[[str], None],
    reporter: Reporter | None,
) -> ApplyResult:
    """Lock, plan, show, confirm, execute, journal; the session is closed at the end.

    `confirm(question)` raises to refuse. A saved plan (`decl apply FILE`) must still match
    what discovery sees now, and is not confirmed again.
    """
    command = " ".join(["decl", *sys.argv[1:]])[:200]
    lock = ProjectLock(session.project, command)
    lock.acquire()
    journal: Journal | None = None
    host_locks: list[HostLock] = []
    try:
        host_locks = lock_remote_hosts(session, command)
        records = read_journal(journal_path(session.project))
        rotate_journal(journal_path(session.project), records=records)  # under the lock
        left = leftovers(records)  # the same records, rotated or not
        killed = kill_leftover_tools(left.processes)
        if killed:  # tools a dead apply left running (same pid and start time)
            journal = Journal(session.project, uuid.uuid4().hex[:12], scrub=session.redactor)
            for record in killed:
                journal.write("process-killed", pid=record["pid"], tool=record.get("tool"),
                              reason="left running by an apply that died")
        result = session.plan(options)
        session.prepare_providers(result.actionable)
        if saved is not None:
            check_stale(saved, result, session.redactor)
        show_plan(result)
        if result.errors:
            raise PlanError("the plan has errors (above); nothing was changed")
        if result.conflicts:
            raise PlanError(f"{len(result.conflicts)} conflict(s) block the {verb} (see above); "
                            "nothing was changed")
        if not result.actionable and not result.unavailable:
            return ApplyResult(result, None)
        if result.actionable and saved is None:
            confirm(f"\nDo you want to {verb} these changes?")
        # State is written before any change: a state dir that cannot be written stops here.
        record_touched(session.project, {(c.provider, c.host) for c in result.actionable
                                         if c.provider})
        journal = journal or Journal(session.project, uuid.uuid4().hex[:12],
                                     scrub=session.redactor)
        journal.write("run", command=verb, manifest=os.path.abspath(session.loaded.file),
                      changes=len(result.actionable))
        settled = _settled(left.in_flight, result, session.project)
        if settled:
            journal.write("settled", resources=settled)
        executor = Executor(result, session.registry, session.pool, session.traits(),
                            parallelism=parallelism, journal=journal, reporter=reporter,
                            scrub=session.redactor, destroy=options.destroy)
        REAPER.enable(_tool_listener(journal))
        try:
            summary = executor.run()
        finally:
            REAPER.disable()
        record_touched(session.project, {(o.change.provider, o.change.host)
                                         for o in summary.outcomes if o.status == "done"
                                         and o.change.provider})
        journal.write("summary", done=len(summary.by_status("done")),
                      failed=len(summary.by_status("failed")),
                      skipped=len(summary.by_status("skipped")), interrupted=summary.interrupted)
        return ApplyResult(result, summary)
    finally:
        release_all(host_locks)
        lock.release()
        session.close()


def _settled(in_flight: dict[tuple[str, str], str], result: Plan,
             project: str) -> list[list[str]]:
    """In-flight entries this plan found absent or marked: no longer in doubt."""
    settled = []
    for address, host in sorted(in_flight):
        change = next((c for c in result.changes if c.address == address and c.host == host),
                      None)
        if address not in result.desired or (change is not None and change.in_flight):
            continue  # not planned this time (--target), or still half-made: this run finishes it
        observed = result.observed.get(address)
        if observed is None or observed.host != host or observed.owned_by(project):
            settled.append([address, host])
    return settled


def _tool_listener(journal: Journal) -> Callable[[str, int, list[str]], None]:
    """Journal each tool decl starts (pid, start time) and its end, for the next run."""

    def listen(event: str, pid: int, argv: list[str]) -> None:
        if event == "started":
            journal.write("process", pid=pid, token=start_token(pid),
                          tool=os.path.basename(argv[0]) if argv else "")
        else:
            journal.write("process-end", pid=pid)

    return listen


def lock_remote_hosts(session: Session, command: str) -> list[HostLock]:
    """The project's lock on every remote host this apply may touch, holder named.

    A host that cannot be reached is not locked: discovery reports it unreachable and
    nothing is done there. On any other failure the locks taken so far are released.

    A lock held by a running decl is an error at once (only a holder that has ended is
    waited for, while its lock drops), so no order of taking them can deadlock. The first
    host by name is locked alone, before the others: of two decls applying the same
    manifest, one gets past it and the other stops there having taken nothing. The other
    hosts are connected and locked in parallel (the connections are the ones discovery then
    uses), with the discovery bound.
    """
    hosts = {item.host for item in session.desired.items}
    hosts |= {host for _, host in read_touched(session.project)}
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": now(),
              "command": command}
    remote = sorted(h for h in hosts if h != "local")
    if not remote:
        return []
    import concurrent.futures

    from decl.engine.snapshot import DISCOVERY_PARALLELISM

    taken: list[HostLock] = []
    try:
        first = _connect_and_lock(session, remote[0], holder)
        if first is not None:
            taken.append(first)
        rest = remote[1:]
        if rest:
            bound = min(DISCOVERY_PARALLELISM[0], len(rest))
            with concurrent.futures.ThreadPoolExecutor(max_workers=bound) as pool:
                futures = [pool.submit(_connect_and_lock, session, host, holder)
                           for host in rest]
                concurrent.futures.wait(futures)
            failures = [error for error in (f.exception() for f in futures) if error]
            taken += [lock for f in futures if f.exception() is None
                      for lock in [f.result()] if lock is not None]
            if failures:
                raise failures[0]  # the first by host name
    except BaseException:
        release_all(taken)
        raise
    return taken


def _connect_and_lock(session: Session, host: str, holder: dict[str, Any]) -> HostLock | None:
    """Open the host's connection and take its lock (None: unreachable, or not a host
    that gets one)."""
    try:
        conn = session.pool.get(host)  # a failure is remembered: discovery reports it
    except ConnectionFailed:
        return None
    if conn.is_local or not hasattr(conn, "exec_stream"):
        return None  # this machine: the project lock covers it
    if not host_lock_supported(conn.shell):  # never silently unlocked
        raise ProviderError(f"host {host}: no project lock for shell {conn.shell!r}; "
                            "nothing was changed")
    host_lock = HostLock(conn, session.project, holder)
    host_lock.acquire()
    return host_lock
