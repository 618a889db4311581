"""The apply run: lock the project, plan, confirm, journal, execute, record what was touched.

The CLI hands in how to show the plan and how to ask; this module decides nothing about
output and never prints.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from decl.core.plan import Plan
from decl.core.planner import PlanOptions
from decl.engine.executor import Executor, Reporter, Summary
from decl.engine.session import Session, check_stale
from decl.engine.statedir import Journal, ProjectLock, record_touched
from decl.errors import PlanError


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
    lock = ProjectLock(session.project, " ".join(["decl", *sys.argv[1:]])[:200])
    lock.acquire()
    try:
        session.prepare_providers()
        result = session.plan(options)
        if saved is not None:
            check_stale(saved, result)
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
        journal = Journal(session.project, uuid.uuid4().hex[:12], scrub=session.redactor)
        journal.write("run", command=verb, manifest=os.path.abspath(session.loaded.file),
                      changes=len(result.actionable))
        executor = Executor(result, session.registry, session.pool, session.traits(),
                            parallelism=parallelism, journal=journal, reporter=reporter,
                            scrub=session.redactor, destroy=options.destroy)
        summary = executor.run()
        record_touched(session.project, {(o.change.provider, o.change.host)
                                         for o in summary.outcomes if o.status == "done"
                                         and o.change.provider})
        journal.write("summary", done=len(summary.by_status("done")),
                      failed=len(summary.by_status("failed")),
                      skipped=len(summary.by_status("skipped")), interrupted=summary.interrupted)
        return ApplyResult(result, summary)
    finally:
        lock.release()
        session.close()
