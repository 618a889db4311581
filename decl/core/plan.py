"""The plan as immutable data: actions, changes with causes, field diffs, JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from decl.core.resource import Desired, Observed, secret_digest
from decl.redact import SENSITIVE

FORMAT_VERSION = 1


class Action(str, Enum):
    """What the executor will do to one resource; the glyph is how people see it."""

    NOOP = "noop"
    CREATE = "create"
    UPDATE = "update"
    UPDATE_RESTART = "update_restart"
    REPLACE = "replace"
    DELETE = "delete"
    START = "start"
    STOP = "stop"
    ADOPT = "adopt"
    CONFLICT = "conflict"

    @property
    def glyph(self) -> str:
        """Terraform-style marker."""
        return {
            "noop": " ", "create": "+", "update": "~", "update_restart": "~",
            "replace": "-/+", "delete": "-", "start": ">", "stop": "#", "adopt": "<=",
            "conflict": "!",
        }[self.value]

    @property
    def label(self) -> str:
        """Words used in the plan's text."""
        return {
            "noop": "unchanged", "create": "will be created", "update": "will be updated in place",
            "update_restart": "will be updated with a restart", "replace": "must be replaced",
            "delete": "will be deleted", "start": "will be started", "stop": "will be stopped",
            "adopt": "will be adopted", "conflict": "is in conflict",
        }[self.value]

    @property
    def is_change(self) -> bool:
        """Whether apply has work to do for it."""
        return self not in (Action.NOOP, Action.CONFLICT)


@dataclass(frozen=True)
class FieldChange:
    """One field's before and after; sensitive values never leave as plain text."""

    path: str
    before: Any
    after: Any
    policy: str
    sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form: secrets show as `(sensitive)` with a digest to tell that they changed."""
        if self.sensitive:
            return {
                "path": self.path, "policy": self.policy, "sensitive": True,
                "before": None if self.before is None else SENSITIVE,
                "after": None if self.after is None else SENSITIVE,
                "before_digest": None if self.before is None else secret_digest(self.before),
                "after_digest": None if self.after is None else secret_digest(self.after),
            }
        return {"path": self.path, "before": self.before, "after": self.after,
                "policy": self.policy, "sensitive": False}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldChange:
        """Read back to_json() (a secret stays `(sensitive)`)."""
        return cls(data["path"], data.get("before"), data.get("after"), data["policy"],
                   bool(data.get("sensitive")))


@dataclass(frozen=True)
class Change:
    """One resource's planned action, with its cause in words."""

    address: str
    kind: str
    name: str
    provider: str
    host: str
    action: Action
    cause: str
    fields: tuple[FieldChange, ...] = ()
    origin: str | None = None  # "manifest" | "drift" | "interrupted" | None
    target_state: str | None = None
    destroys_data: str | None = None
    depends_on: tuple[str, ...] = ()
    orphan: bool = False
    project: str = ""  # the manifest's project: what marks written by apply() must carry
    # The object is unmarked but decl was making it when an earlier apply died: the provider
    # may delete it although it carries no mark (it finishes or recreates it).
    in_flight: bool = False

    @property
    def key(self) -> str:
        """Unique within a plan: an orphan left on another host is `ADDRESS@HOST`."""
        return f"{self.address}@{self.host}" if self.orphan else self.address

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form of the change."""
        return {
            "address": self.address, "kind": self.kind, "name": self.name,
            "provider": self.provider, "host": self.host, "action": self.action.value,
            "cause": self.cause, "origin": self.origin, "target_state": self.target_state,
            "destroys_data": self.destroys_data, "depends_on": list(self.depends_on),
            "orphan": self.orphan, "project": self.project, "in_flight": self.in_flight,
            "fields": [f.to_json() for f in self.fields],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        """Read back to_json() (a saved plan, for `decl show`)."""
        return cls(
            address=data["address"], kind=data["kind"], name=data["name"],
            provider=data["provider"], host=data["host"], action=Action(data["action"]),
            cause=data["cause"], fields=tuple(FieldChange.from_json(f) for f in data["fields"]),
            origin=data.get("origin"), target_state=data.get("target_state"),
            destroys_data=data.get("destroys_data"),
            depends_on=tuple(data.get("depends_on", ())), orphan=bool(data.get("orphan")),
            project=data.get("project", ""),
        )


@dataclass(frozen=True)
class Problem:
    """A resource that cannot be planned: an error, or a provider/host that is unavailable."""

    address: str
    message: str
    host: str | None = None
    provider: str | None = None
    kind: str = "provider"  # "provider": no usable provider; "host": the host failed

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"address": self.address, "message": self.message, "host": self.host,
                "provider": self.provider, "kind": self.kind}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Problem:
        """Read back to_json()."""
        return cls(data["address"], data["message"], data.get("host"), data.get("provider"),
                   data.get("kind", "provider"))


@dataclass
class Plan:
    """Everything apply will do, and everything it will not do and why."""

    project: str
    changes: list[Change] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    unavailable: list[Problem] = field(default_factory=list)
    orphans: list[Change] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    manifest_fingerprint: str = ""
    observed_fingerprints: dict[str, str] = field(default_factory=dict)
    desired: dict[str, Desired] = field(default_factory=dict, repr=False)
    observed: dict[str, Observed] = field(default_factory=dict, repr=False)

    @property
    def actionable(self) -> list[Change]:
        """Changes apply will carry out, in plan order."""
        return [change for change in self.changes if change.action.is_change]

    @property
    def conflicts(self) -> list[Change]:
        """Changes blocked by objects decl does not own."""
        return [change for change in self.changes if change.action is Action.CONFLICT]

    @property
    def has_changes(self) -> bool:
        """Whether apply would do anything (or fail on a conflict or error)."""
        return bool(self.actionable or self.conflicts or self.errors)

    def counts(self) -> dict[str, int]:
        """How many changes of each kind, for the summary line."""
        counts = {"add": 0, "change": 0, "destroy": 0, "conflict": len(self.conflicts)}
        for change in self.actionable:
            if change.action is Action.CREATE:
                counts["add"] += 1
            elif change.action is Action.DELETE:
                counts["destroy"] += 1
            elif change.action is Action.REPLACE:
                counts["add"] += 1
                counts["destroy"] += 1
            else:
                counts["change"] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The documented, stable JSON document (`format_version` 1)."""
        return {
            "format_version": FORMAT_VERSION,
            "project": self.project,
            "changes": [c.to_json() for c in self.changes if c.action is not Action.NOOP],
            "unchanged": [c.address for c in self.changes if c.action is Action.NOOP],
            "orphans": [c.to_json() for c in self.orphans],
            "errors": [p.to_json() for p in self.errors],
            "unavailable": [p.to_json() for p in self.unavailable],
            "notes": [p.to_json() for p in self.notes],
            "summary": self.counts(),
            "manifest_fingerprint": self.manifest_fingerprint,
            "observed_fingerprints": dict(sorted(self.observed_fingerprints.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any],
                  unchanged: list[dict[str, Any]] | None = None) -> Plan:
        """Read back to_json(); `unchanged` are the no-op changes in full (a plan file keeps
        them, to show "kept:" lines and `-v` as `decl plan` did)."""
        changes = [Change.from_json(c) for c in data.get("changes", [])]
        if unchanged is not None:
            changes += [Change.from_json(c) for c in unchanged]
        else:
            changes += [Change(address=a, kind=a.split(".", 1)[0], name=a.split(".", 1)[-1],
                               provider="", host="", action=Action.NOOP, cause="")
                        for a in data.get("unchanged", [])]
        return cls(
            project=data["project"], changes=changes,
            errors=[Problem.from_json(p) for p in data.get("errors", [])],
            unavailable=[Problem.from_json(p) for p in data.get("unavailable", [])],
            orphans=[Change.from_json(c) for c in data.get("orphans", [])],
            notes=[Problem.from_json(p) for p in data.get("notes", [])],
            manifest_fingerprint=data.get("manifest_fingerprint", ""),
            observed_fingerprints=dict(data.get("observed_fingerprints", {})),
        )
