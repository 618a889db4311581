"""Human output in Terraform's habits: glyphs, field diffs, a summary line."""

from __future__ import annotations

import json
from typing import Any

from decl.core.plan import Action, Change, FieldChange, Plan
from decl.core.units import format_size
from decl.engine.executor import Summary
from decl.redact import SENSITIVE

STYLE = {
    Action.CREATE: "green", Action.DELETE: "red", Action.REPLACE: "magenta",
    Action.UPDATE: "yellow", Action.UPDATE_RESTART: "yellow", Action.START: "cyan",
    Action.STOP: "cyan", Action.ADOPT: "blue", Action.CONFLICT: "bold red",
}
SIZE_FIELDS = {"memory", "size", "disk_size"}


def esc(text: str) -> str:
    """Escape rich markup in user-provided text."""
    return text.replace("[", r"\[")


def value_text(value: Any, path: str = "") -> str:
    """A value as the plan shows it."""
    if value is None:
        return "(unset)"
    if isinstance(value, int) and not isinstance(value, bool) and \
            any(part in SIZE_FIELDS for part in path.split(".")):
        return format_size(value)
    return json.dumps(value, default=str)


def field_line(change: FieldChange, action: Action) -> str:
    """One field's diff line."""
    before = SENSITIVE if change.sensitive and change.before is not None else \
        value_text(change.before, change.path)
    after = SENSITIVE if change.sensitive and change.after is not None else \
        value_text(change.after, change.path)
    if change.policy == "create":
        return f"      [green]+[/] {esc(change.path)} = {esc(after)}"
    marker = {"replace": " [magenta]# forces replacement[/]",
              "restart": " [yellow]# needs a restart[/]"}.get(change.policy, "")
    if change.after is None:
        return f"      [red]-[/] {esc(change.path)} = {esc(before)}{marker}"
    if change.before is None:
        return f"      [green]+[/] {esc(change.path)} = {esc(after)}{marker}"
    return f"      [yellow]~[/] {esc(change.path)}: {esc(before)} -> {esc(after)}{marker}"


def change_lines(change: Change) -> list[str]:
    """The block describing one change."""
    style = STYLE.get(change.action, "")
    where = f"{change.provider} on {change.host}"
    lines = [f"  [bold]# {esc(change.address)}[/] {change.action.label} ({esc(where)})"]
    cause = change.cause
    if change.origin == "drift" and change.action is not Action.START:
        lines.append("    [dim]drift: changed outside decl; the manifest did not change[/]")
    lines.append(f"    [dim]cause: {esc(cause)}[/]")
    if change.destroys_data and change.action in (Action.DELETE, Action.REPLACE):
        lines.append(f"    [bold red]warning: this {esc(change.destroys_data)}[/]")
    lines.append(f"  [{style}]{change.action.glyph}[/] {esc(change.address)}")
    lines.extend(field_line(f, change.action) for f in change.fields)
    return lines


def plan_text(plan: Plan, *, verbose: bool = False) -> list[str]:
    """The whole plan as rich-markup lines."""
    lines: list[str] = []
    shown = [c for c in plan.changes if c.action is not Action.NOOP]
    if shown:
        lines.append(f"decl will perform these actions (project {esc(plan.project)}):")
        lines.append("")
        for change in shown:
            lines.extend(change_lines(change))
            lines.append("")
    for change in plan.changes:
        if change.action is Action.NOOP and change.cause.startswith("kept:"):
            lines.append(f"  [yellow]=[/] {esc(change.address)}: {esc(change.cause)}")
        elif verbose and change.action is Action.NOOP:
            lines.append(f"  [dim]{esc(change.address)}: {esc(change.cause)}[/]")
    orphans = [o for o in plan.orphans if o.action is Action.NOOP]
    if orphans:
        lines.append("Orphans (this project's objects no longer in the manifest; "
                     "`decl apply --prune` deletes them):")
        for orphan in orphans:
            lines.append(f"  [yellow]?[/] {esc(orphan.address)} ({esc(orphan.provider)} on "
                         f"{esc(orphan.host)})")
        lines.append("")
    for note in plan.notes:
        lines.append(f"[yellow]note:[/] {esc(note.address)}: {esc(note.message)}")
    for problem in plan.unavailable:
        lines.append(f"[yellow]not planned:[/] {esc(problem.address)}: {esc(problem.message)}")
    for problem in plan.errors:
        lines.append(f"[bold red]error:[/] {esc(problem.message)}"
                     if problem.message.startswith(problem.address)
                     else f"[bold red]error:[/] {esc(problem.address)}: {esc(problem.message)}")
    if plan.notes or plan.unavailable or plan.errors:
        lines.append("")
    counts = plan.counts()
    if not shown and not plan.errors and plan.unavailable:
        count = len(plan.unavailable)
        lines.append(f"[yellow]No changes to the resources decl could plan; {count} "
                     f"resource{'s' if count > 1 else ''} could not be planned (above).[/]")
    elif not shown and not plan.errors:
        lines.append("[green]No changes.[/] The machines match the manifest.")
    else:
        summary = (f"Plan: {counts['add']} to add, {counts['change']} to change, "
                   f"{counts['destroy']} to destroy")
        if counts["conflict"]:
            summary += f", {counts['conflict']} in conflict"
        lines.append(f"[bold]{summary}.[/]")
    return lines


def summary_text(summary: Summary) -> list[str]:
    """The apply summary: done, failed, skipped."""
    lines: list[str] = []
    done = summary.by_status("done")
    failed = summary.by_status("failed")
    skipped = summary.by_status("skipped")
    for outcome in failed:
        lines.append(f"[bold red]failed:[/] {esc(outcome.change.address)}: "
                     f"{esc(outcome.message)}")
    for outcome in skipped:
        lines.append(f"[yellow]skipped:[/] {esc(outcome.change.address)}: "
                     f"{esc(outcome.message)}")
    head = "[bold]Apply interrupted.[/] " if summary.interrupted else ""
    colour = "green" if summary.ok else "red"
    lines.append(f"{head}[{colour}]Apply: {len(done)} done, {len(failed)} failed, "
                 f"{len(skipped)} skipped.[/]")
    return lines
