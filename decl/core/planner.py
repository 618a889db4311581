"""The pure planner: Manifest-derived Desired + Snapshot -> Plan. No I/O, no providers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from decl.core.graph import with_dependencies
from decl.core.plan import Action, Change, FieldChange, Plan, Problem
from decl.core.resource import Desired, Observed, Snapshot, redact
from decl.core.traits import POLICY_WORDS, KindTraits, Policy

DEFAULT_TRAITS = KindTraits()


@dataclass(frozen=True)
class PlanOptions:
    """Choices the user made on the command line."""

    prune: bool = False
    destroy: bool = False
    targets: tuple[str, ...] = ()


def diff_specs(
    desired: Mapping[str, Any],
    observed: Mapping[str, Any],
    traits: KindTraits,
    ignore: Iterable[str] = (),
    sensitive: frozenset[str] = frozenset(),
) -> list[FieldChange]:
    """Field-level differences; a field the manifest leaves unset (None) is not managed."""
    ignored = set(ignore)
    changes: list[FieldChange] = []

    def walk(want: Any, have: Any, path: str) -> None:
        top = path.split(".")[0]
        if top in ignored or path in ignored:
            return
        policy = traits.policy(path)
        if policy is Policy.IGNORE:
            return
        if want is None:
            return
        if isinstance(want, dict) and isinstance(have, dict) and want and _is_mapping_field(want):
            for key in sorted(set(want) | set(have)):
                sub = f"{path}.{key}"
                if key in want:
                    walk(want[key], have.get(key), sub)
                elif sub not in ignored:
                    changes.append(FieldChange(sub, have[key], None, traits.policy(sub).value,
                                               _sensitive(sub, sensitive)))
            return
        if want != have:
            changes.append(FieldChange(path, have, want, policy.value, _sensitive(path, sensitive)))

    for key in desired:
        walk(desired[key], observed.get(key), key)
    return changes


def _is_mapping_field(value: dict[str, Any]) -> bool:
    """Mappings of plain values (env, labels) are diffed key by key."""
    return all(not isinstance(v, (dict, list)) for v in value.values())


def _sensitive(path: str, sensitive: frozenset[str]) -> bool:
    return any(path == s or path.startswith(s + ".") or s.startswith(path + ".")
               for s in sensitive)


def _describe(change: FieldChange, traits: KindTraits) -> str:
    if change.sensitive:
        return f"{change.path} changed (sensitive) and {POLICY_WORDS[Policy(change.policy)]}"
    before = _show(change.before, change.path, traits)
    after = _show(change.after, change.path, traits)
    return f"{change.path} {before} -> {after} {POLICY_WORDS[Policy(change.policy)]}"


def _show(value: Any, path: str, traits: KindTraits) -> str:
    if value is None:
        return "(unset)"
    if path.split(".")[0] in traits.size_fields and isinstance(value, int):
        from decl.core.units import format_size

        return format_size(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, default=str)


def manifest_fingerprint(desired: Iterable[Desired]) -> str:
    """Digest of every desired resource (secrets only as digests)."""
    payload = sorted(
        (d.address, d.provider, d.host, d.state, redact(d.spec, d.sensitive)) for d in desired
    )
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()[:16]


def plan(
    project: str,
    desired: list[Desired],
    snapshot: Snapshot,
    traits: Mapping[tuple[str, str], KindTraits],
    options: PlanOptions = PlanOptions(),
) -> Plan:
    """Compare what the manifest wants with what was observed; decide every action."""
    result = Plan(project=project)
    result.manifest_fingerprint = manifest_fingerprint(desired)
    by_address = {d.address: d for d in desired}
    graph = {d.address: set(d.depends_on) for d in desired}
    selected = with_dependencies(graph, options.targets) if options.targets else set(by_address)

    for item in desired:
        if item.address not in selected:
            continue
        result.desired[item.address] = item
        kind_traits = traits.get((item.provider, item.kind), DEFAULT_TRAITS)
        reason = snapshot.unavailable.get((item.provider, item.host))
        if reason is not None:
            kind = "host" if item.host in snapshot.failed_hosts else "provider"
            result.unavailable.append(Problem(item.address, reason, item.host, item.provider,
                                              kind))
            continue
        if item.address in snapshot.problems:
            result.errors.append(
                Problem(item.address, snapshot.problems[item.address], item.host, item.provider)
            )
            continue
        observed = snapshot.find(item.address, item.host)
        if observed is not None:
            result.observed[item.address] = observed
            result.observed_fingerprints[item.address] = observed.fingerprint()
        else:
            result.observed_fingerprints[item.address] = "absent"
        change, error = plan_resource(project, item, observed, kind_traits, options)
        if error:
            result.errors.append(Problem(item.address, error, item.host, item.provider))
        if change is not None:
            result.changes.append(change)

    if not options.targets or options.prune:
        _plan_orphans(project, snapshot, by_address, traits, options, result)
    result.changes = _ordered(result.changes)
    return result


def plan_resource(
    project: str,
    item: Desired,
    observed: Observed | None,
    traits: KindTraits,
    options: PlanOptions,
) -> tuple[Change | None, str | None]:
    """The change for one resource, and a plan error if the change is forbidden."""

    def change(action: Action, cause: str = "", **extra: Any) -> Change:
        return Change(address=item.address, kind=item.kind, name=item.name,
                      provider=item.provider, host=item.host, action=action, cause=cause,
                      depends_on=tuple(sorted(item.depends_on)), project=project, **extra)

    wanted_state = "absent" if options.destroy else item.state
    if wanted_state == "absent":
        if observed is None:
            return change(Action.NOOP, "absent, as wanted"), None
        if not observed.owned_by(project):
            return change(Action.NOOP,
                          "exists but carries no mark of this project: left alone"), None
        if options.destroy and traits.keep is not None:
            reason = traits.keep(observed)
            if reason:
                return change(Action.NOOP, f"kept: {reason}"), None
        if item.prevent_destroy:
            if options.destroy:
                return change(Action.NOOP, "kept: lifecycle.prevent_destroy is set"), None
            return None, (f"{item.address} would be deleted, but lifecycle.prevent_destroy is "
                          "set (write prevent_destroy: false to allow it)")
        return change(Action.DELETE, _delete_cause(options),
                      destroys_data=traits.destroys_data, target_state="absent"), None

    if observed is None:
        return change(Action.CREATE, f"not found on host {item.host}",
                      target_state=wanted_state,
                      fields=tuple(
                          FieldChange(k, None, v, "create", _sensitive(k, item.sensitive))
                          for k, v in item.spec.items() if v not in (None, [], {}))), None

    if not observed.owned_by(project):
        owner = observed.marks.project if observed.marks else None
        if owner is None and item.adopt:
            fields = diff_specs(item.spec, observed.spec, traits, item.ignore_changes,
                                item.sensitive)
            return change(Action.ADOPT, target_state=wanted_state,
                          cause="exists without marks; adopt: true takes it over"
                          + (" and " + "; ".join(_describe(f, traits) for f in fields)
                             if fields else ""),
                          fields=tuple(fields)), None
        who = f"belongs to project {owner!r}" if owner else "carries no mark of this project"
        hint = "" if owner else "; set `adopt: true` to take it over"
        return change(Action.CONFLICT,
                      f"an object named {item.name!r} already exists on host {item.host} "
                      f"and {who}: decl will not touch it{hint}"), None

    fields = diff_specs(item.spec, observed.spec, traits, item.ignore_changes, item.sensitive)
    unchanged_manifest = observed.marks is not None and observed.marks.spec_hash == item.spec_hash
    origin = "drift" if unchanged_manifest else "manifest"
    if traits.check is not None:
        for fc in fields:
            problem = traits.check(fc.path, fc.before, fc.after)
            if problem:
                return None, f"{item.address}: {problem}"
    if fields:
        strongest = max((Policy(f.policy) for f in fields), key=lambda p: p.strength)
        why = "; ".join(_describe(f, traits) for f in fields)
        prefix = "changed outside decl: " if origin == "drift" else ""
        if strongest is Policy.REPLACE:
            if item.prevent_destroy:
                return None, (f"{item.address} must be replaced ({why}), but "
                              "lifecycle.prevent_destroy is set")
            return change(Action.REPLACE, prefix + why, fields=tuple(fields),
                          origin=origin, target_state=wanted_state,
                          destroys_data=traits.destroys_data), None
        action = Action.UPDATE_RESTART if strongest is Policy.RESTART else Action.UPDATE
        if action is Action.UPDATE_RESTART and observed.state != "running":
            action = Action.UPDATE
        return change(action, prefix + why, fields=tuple(fields), origin=origin,
                      target_state=wanted_state), None

    if traits.has_run_state and observed.state != wanted_state:
        if wanted_state == "running":
            return change(Action.START, origin="drift", target_state="running",
                          cause=f"is {observed.state}, wanted running"), None
        if wanted_state == "stopped":
            return change(Action.STOP, target_state="stopped",
                          origin="drift" if origin == "drift" else "manifest",
                          cause=f"is {observed.state}, wanted stopped"), None
    return change(Action.NOOP, "up to date"), None


def _delete_cause(options: PlanOptions) -> str:
    return "decl destroy" if options.destroy else "state: absent in the manifest"


def _plan_orphans(
    project: str,
    snapshot: Snapshot,
    by_address: Mapping[str, Desired],
    traits: Mapping[tuple[str, str], KindTraits],
    options: PlanOptions,
    result: Plan,
) -> None:
    for observed in snapshot.observed:
        if not observed.owned_by(project):
            continue
        wanted = by_address.get(observed.address)
        if wanted is not None and wanted.host == observed.host:
            continue
        if options.targets and observed.address not in options.targets:
            continue
        kind_traits = traits.get((observed.provider, observed.kind), DEFAULT_TRAITS)
        orphan = Change(
            address=observed.address, kind=observed.kind, name=observed.name,
            provider=observed.provider, host=observed.host,
            action=Action.DELETE if options.prune else Action.NOOP,
            cause=("no longer in the manifest" if wanted is None
                   else f"left behind on host {observed.host}: the manifest now puts it on "
                   f"host {wanted.host}")
            + ("" if options.prune else " (decl apply --prune deletes it)"),
            destroys_data=kind_traits.destroys_data, orphan=True, target_state="absent",
            project=project,
        )
        result.orphans.append(orphan)
        result.observed[orphan.key] = observed
        result.observed_fingerprints[orphan.key] = observed.fingerprint()
        if options.prune:
            reason = kind_traits.keep(observed) if kind_traits.keep is not None else None
            if reason:
                result.notes.append(Problem(observed.address, f"orphan kept: {reason}",
                                            observed.host, observed.provider))
                result.orphans[-1] = Change(**{**orphan.__dict__, "action": Action.NOOP})
                continue
            if kind_traits.default_prevent_destroy:
                result.notes.append(Problem(
                    observed.address,
                    "orphan kept: this kind is protected from deletion by default; delete it "
                    "by hand, or add it back with lifecycle.prevent_destroy: false and "
                    "state: absent", observed.host, observed.provider))
                result.orphans[-1] = Change(**{**orphan.__dict__, "action": Action.NOOP})
                continue
            result.changes.append(orphan)


def _ordered(changes: list[Change]) -> list[Change]:
    """Creations in dependency order, deletions after, in reverse dependency order."""
    from decl.core.graph import topological

    graph = {c.address: {d for d in c.depends_on} for c in changes}
    order = {address: index for index, address in enumerate(topological(graph))}
    deletes = [c for c in changes if c.action is Action.DELETE]
    others = [c for c in changes if c.action is not Action.DELETE]
    others.sort(key=lambda c: order.get(c.address, 0))
    deletes.sort(key=lambda c: -order.get(c.address, 0))
    return others + deletes
