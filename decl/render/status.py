"""`decl status`: each resource's discovered state, with drift marked."""

from __future__ import annotations

from typing import Any

from decl.core.plan import Action, Plan
from decl.render.text import esc

VERDICT = {
    Action.NOOP: "in sync", Action.CREATE: "missing", Action.DELETE: "to delete",
    Action.CONFLICT: "conflict (not decl's)", Action.ADOPT: "to adopt",
    Action.START: "stopped (wanted running)", Action.STOP: "running (wanted stopped)",
}


def status_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per resource: state seen, verdict, drift, provider details."""
    rows: list[dict[str, Any]] = []
    for change in plan.changes:
        observed = plan.observed.get(change.address)
        desired = plan.desired.get(change.address)
        verdict = VERDICT.get(change.action)
        if verdict is None:
            verdict = "drifted" if change.origin == "drift" else "manifest changed"
        if change.action is Action.NOOP and desired is not None and desired.state == "absent":
            verdict = "absent" if observed is None else "present, not decl's"
        rows.append({
            "address": change.address, "provider": change.provider, "host": change.host,
            "wanted": desired.state if desired else None,
            "state": observed.state if observed else "absent",
            "verdict": verdict, "drift": change.origin == "drift",
            "pending": change.action.value,
            "fields": [f.path for f in change.fields if f.policy != "create"],
            "details": dict(observed.handle) if observed else {},
        })
    for problem in [*plan.unavailable, *plan.errors]:
        rows.append({"address": problem.address, "provider": problem.provider,
                     "host": problem.host, "wanted": None, "state": "unknown",
                     "verdict": problem.message, "drift": False, "pending": None,
                     "fields": [], "details": {}})
    for orphan in plan.orphans:
        rows.append({"address": orphan.address, "provider": orphan.provider,
                     "host": orphan.host, "wanted": None,
                     "state": plan.observed[orphan.address].state
                     if orphan.address in plan.observed else "present",
                     "verdict": "orphan (not in the manifest)", "drift": False,
                     "pending": None, "fields": [], "details": {}})
    return rows


def status_text(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as aligned text."""
    if not rows:
        return ["No resources."]
    width = max(len(r["address"]) for r in rows)
    lines = []
    for row in rows:
        mark = "[green]✓[/]" if row["verdict"] == "in sync" else (
            "[red]![/]" if row["drift"] or "conflict" in row["verdict"] else "[yellow]~[/]")
        detail = ", ".join(f"{k}={v}" for k, v in sorted(row["details"].items())
                           if isinstance(v, (str, int, float)) and k in DETAIL_KEYS)
        fields = f" ({', '.join(row['fields'])})" if row["fields"] else ""
        extra = f"  [dim]{esc(detail)}[/]" if detail else ""
        lines.append(f"{mark} {esc(row['address']).ljust(width)}  {esc(str(row['state'])):<9} "
                     f"{esc(str(row['verdict']))}{esc(fields)}  [dim]{esc(str(row['provider']))}"
                     f" on {esc(str(row['host']))}[/]{extra}")
    return lines


DETAIL_KEYS = {"accelerator", "python", "ip", "pid", "id", "version", "image"}
