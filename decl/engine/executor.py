"""Walk the plan: dependency order, parallel, journaled, verified. It decides nothing."""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from decl.connections.base import Connection
from decl.connections.pool import ConnectionPool
from decl.core.plan import Action, Change, Plan
from decl.core.planner import DEFAULT_TRAITS, PlanOptions, plan_resource
from decl.core.resource import Desired, Observed
from decl.core.traits import KindTraits
from decl.engine.statedir import Journal
from decl.errors import DeclError
from decl.providers.base import Provider
from decl.providers.registry import Registry


@dataclass
class Outcome:
    """What happened to one change."""

    change: Change
    status: str  # done | failed | skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class Summary:
    """Done, failed and skipped changes, in the order they ended."""

    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    def by_status(self, status: str) -> list[Outcome]:
        """Outcomes with this status."""
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        """Nothing failed, nothing was skipped, not interrupted."""
        return not self.interrupted and all(o.status == "done" for o in self.outcomes)


# Events the executor reports: (event, change, message, fraction)
Reporter = Callable[[str, Change, str, "float | None"], None]


class Executor:
    """Carries out a plan's changes; every decision is already in the plan."""

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        pool: ConnectionPool,
        traits: dict[tuple[str, str], KindTraits],
        *,
        parallelism: int = 10,
        journal: Journal | None = None,
        reporter: Reporter | None = None,
        scrub: Callable[[str], str] = lambda text: text,
        destroy: bool = False,
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.pool = pool
        self.traits = traits
        self.parallelism = max(1, parallelism)
        self.journal = journal or Journal(plan.project, uuid.uuid4().hex[:12])
        self.reporter = reporter or (lambda *args: None)
        self.scrub = scrub
        self.destroy = destroy
        self.stop_requested = threading.Event()
        self._host_limits: dict[tuple[str, str], threading.Semaphore] = {}
        self._limits_guard = threading.Lock()

    # -- scheduling ---------------------------------------------------------------------

    def _dependencies(self, changes: list[Change]) -> dict[str, set[str]]:
        keys = {c.key for c in changes}
        deletes = [c for c in changes if c.action is Action.DELETE]
        deps: dict[str, set[str]] = {}
        for change in changes:
            if change.action is Action.DELETE:
                needs = {d.key for d in deletes if change.address in d.depends_on}
                rank = self._delete_rank(change)
                needs |= {d.key for d in deletes
                          if d.host == change.host and self._delete_rank(d) < rank}
                deps[change.key] = needs
            else:
                deps[change.key] = {d for d in change.depends_on if d in keys
                                    and self._by_address[d].action is not Action.DELETE}
        return deps

    def _delete_rank(self, change: Change) -> int:
        """Where a delete goes in the per-host order (a trait of its provider's kind)."""
        return self.traits.get((change.provider, change.kind), DEFAULT_TRAITS).delete_rank

    def run(self) -> Summary:
        """Apply every actionable change; resources that cannot be planned count as failed."""
        summary = Summary()
        for problem in self.plan.unavailable:
            change = Change(address=problem.address, kind=problem.address.split(".")[0],
                            name=problem.address.split(".", 1)[1], provider=problem.provider or "",
                            host=problem.host or "", action=Action.NOOP, cause=problem.message)
            summary.outcomes.append(Outcome(change, "failed", problem.message))
            self.journal.write("failed", address=problem.address, error=problem.message)
        changes = self.plan.actionable
        self._by_address = {c.key: c for c in changes}
        self._position = {c.key: index for index, c in enumerate(changes)}
        deps = self._dependencies(changes)
        pending = {c.key for c in changes}
        finished: dict[str, str] = {}
        running: dict[concurrent.futures.Future[Outcome], str] = {}

        previous = self._install_interrupt_handler()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=self.parallelism) as workers:
                while pending or running:
                    for address in sorted(pending, key=self._order):
                        if self.stop_requested.is_set() or len(running) >= self.parallelism:
                            break
                        blockers = deps[address]
                        failed = [b for b in blockers if finished.get(b) in ("failed", "skipped")]
                        if failed:
                            pending.discard(address)
                            change = self._by_address[address]
                            message = f"skipped: {failed[0]} did not succeed"
                            outcome = Outcome(change, "skipped", message)
                            summary.outcomes.append(outcome)
                            finished[address] = "skipped"
                            self.journal.write("skipped", address=address, reason=message)
                            self.reporter("skipped", change, message, None)
                            continue
                        if all(b in finished for b in blockers):
                            pending.discard(address)
                            future = workers.submit(self._apply_one, self._by_address[address])
                            running[future] = address
                    if self.stop_requested.is_set() and pending:
                        for address in sorted(pending, key=self._order):
                            change = self._by_address[address]
                            message = "skipped: interrupted"
                            summary.outcomes.append(Outcome(change, "skipped", message))
                            finished[address] = "skipped"
                            self.journal.write("skipped", address=address, reason=message)
                        pending.clear()
                        summary.interrupted = True
                    if not running:
                        if pending:  # pragma: no cover - a dependency outside the plan
                            continue
                        break
                    done, _ = concurrent.futures.wait(
                        running, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in done:
                        address = running.pop(future)
                        outcome = future.result()
                        finished[address] = outcome.status
                        summary.outcomes.append(outcome)
        finally:
            self._restore_interrupt_handler(previous)
        return summary

    def _order(self, address: str) -> int:
        return self._position[address]

    # -- one change ---------------------------------------------------------------------

    def _limit(self, change: Change, limit: int | None) -> threading.Semaphore | None:
        if not limit:
            return None
        key = (change.provider, change.host)
        with self._limits_guard:
            if key not in self._host_limits:
                self._host_limits[key] = threading.Semaphore(limit)
            return self._host_limits[key]

    def _apply_one(self, change: Change) -> Outcome:
        started = time.monotonic()
        desired = None if change.orphan else self.plan.desired.get(change.address)
        observed = self.plan.observed.get(change.key)
        self.journal.write("intent", address=change.address, action=change.action.value,
                           cause=change.cause, host=change.host, provider=change.provider)
        self.reporter("start", change, change.cause, None)

        def progress(message: str, fraction: float | None = None) -> None:
            self.reporter("progress", change, self.scrub(message), fraction)

        try:
            provider = self.registry.get(change.provider)
            conn = self.pool.get(change.host)
            semaphore = self._limit(change, provider.parallel_limit)
            if semaphore:
                semaphore.acquire()
            try:
                provider.apply(change, desired, observed, conn, progress)
                problem = self._verify(change, desired, provider, conn)
            finally:
                if semaphore:
                    semaphore.release()
        except DeclError as exc:
            return self._finish(change, "failed", self.scrub(str(exc)), started)
        except Exception as exc:  # noqa: BLE001 - one resource's bug must not stop the rest
            message = f"unexpected {type(exc).__name__}: {exc}"
            return self._finish(change, "failed", self.scrub(message), started)
        if problem:
            return self._finish(change, "failed", self.scrub(problem), started)
        return self._finish(change, "done", "", started)

    def _finish(self, change: Change, status: str, message: str, started: float) -> Outcome:
        seconds = time.monotonic() - started
        self.journal.write(status, address=change.address, action=change.action.value,
                           error=message or None, seconds=round(seconds, 3))
        self.reporter(status, change, message, None)
        return Outcome(change, status, message, seconds)

    def _verify(self, change: Change, desired: Desired | None, provider: Provider,
                conn: Connection) -> str:
        """Re-discover the resource: it must now plan as no-op, else the change failed."""
        observed: Observed | None
        if desired is not None:
            observed = provider.observe(conn, self.plan.project, desired)
        else:  # an orphan: is any object still carrying its address?
            found = provider.discover(conn, self.plan.project, [])
            observed = next((o for o in found.observed if o.address == change.address), None)
        if change.action is Action.DELETE:
            if observed is not None and observed.owned_by(self.plan.project):
                return f"did not converge: {change.address} still exists after delete"
            return ""
        if desired is None:
            return ""
        traits = self.traits.get((desired.provider, desired.kind), DEFAULT_TRAITS)
        again, error = plan_resource(self.plan.project, desired, observed, traits,
                                 PlanOptions(destroy=self.destroy))
        if error:
            return f"did not converge: {error}"
        if again is None or again.action is Action.NOOP:
            return ""
        if again.fields:
            details = "; ".join(
                f"{f.path} is {'(sensitive)' if f.sensitive else _short(f.before)}, wanted "
                f"{'(sensitive)' if f.sensitive else _short(f.after)}"
                for f in again.fields
            )
            return f"did not converge: {details}"
        return f"did not converge: {again.cause}"

    # -- Ctrl-C -------------------------------------------------------------------------

    def _install_interrupt_handler(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            if self.stop_requested.is_set():
                raise KeyboardInterrupt
            self.stop_requested.set()
            self.reporter("interrupt", Change("", "", "", "", "", Action.NOOP, ""),
                          "stopping: letting running changes finish (Ctrl-C again aborts)",
                          None)

        return signal.signal(signal.SIGINT, handler)

    def _restore_interrupt_handler(self, previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
