"""Addresses, desired and observed resources, ownership marks and the spec hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MARK_PROJECT = "io.decl.project"
MARK_ADDRESS = "io.decl.address"
MARK_SPEC_HASH = "io.decl.spec-hash"


def address_of(kind: str, name: str) -> str:
    """`vm.web`, `container.db`..."""
    return f"{kind}.{name}"


def split_address(address: str) -> tuple[str, str]:
    """`container.db` -> ("container", "db")."""
    kind, _, name = address.partition(".")
    return kind, name


@dataclass(frozen=True)
class Marks:
    """The ownership marks decl writes on every object it creates."""

    project: str
    address: str
    spec_hash: str

    def as_labels(self) -> dict[str, str]:
        """The marks as key/value labels (docker labels, metadata entries...)."""
        return {MARK_PROJECT: self.project, MARK_ADDRESS: self.address,
                MARK_SPEC_HASH: self.spec_hash}

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None) -> Marks | None:
        """Marks read back from labels; None when the object carries no decl project mark."""
        if not labels or MARK_PROJECT not in labels:
            return None
        return cls(
            project=labels.get(MARK_PROJECT, ""),
            address=labels.get(MARK_ADDRESS, ""),
            spec_hash=labels.get(MARK_SPEC_HASH, ""),
        )


def secret_digest(value: Any) -> str:
    """What stands in for a secret in hashes, plan files and journals."""
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def redact(spec: dict[str, Any], sensitive: frozenset[str]) -> dict[str, Any]:
    """A copy of `spec` with every sensitive dotted path replaced by its digest."""
    if not sensitive:
        return spec
    out: dict[str, Any] = json.loads(json.dumps(spec, default=str))
    for path in sensitive:
        parts = path.split(".")
        target: Any = out
        for part in parts[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
            if target is None:
                break
        if isinstance(target, dict) and parts[-1] in target:
            target[parts[-1]] = secret_digest(target[parts[-1]])
    return out


def spec_hash(spec: dict[str, Any], sensitive: frozenset[str] = frozenset()) -> str:
    """sha256 of the canonical desired spec; secrets enter only as their own digest."""
    canonical = json.dumps(redact(spec, sensitive), sort_keys=True, separators=(",", ":"),
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Desired:
    """What the manifest wants for one resource, normalised to the provider's units."""

    address: str
    kind: str
    name: str
    provider: str
    host: str
    state: str
    spec: dict[str, Any]
    model: Any = field(compare=False, repr=False, default=None)
    sensitive: frozenset[str] = frozenset()
    depends_on: tuple[str, ...] = ()
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()
    adopt: bool = False

    @property
    def spec_hash(self) -> str:
        """Hash of the spec (state excluded: starting or stopping is not a spec change)."""
        return spec_hash(self.spec, self.sensitive)

    def marks(self, project: str) -> Marks:
        """The marks an object made for this resource carries."""
        return Marks(project=project, address=self.address, spec_hash=self.spec_hash)


@dataclass(frozen=True)
class Observed:
    """One real object found on a host, normalised to the manifest's units."""

    address: str
    kind: str
    name: str
    provider: str
    host: str
    state: str
    spec: dict[str, Any]
    marks: Marks | None = None
    handle: dict[str, Any] = field(default_factory=dict, compare=False)

    def owned_by(self, project: str) -> bool:
        """Whether this project's marks are on the object."""
        return self.marks is not None and self.marks.project == project

    def fingerprint(self) -> str:
        """A digest of what was observed, to tell whether a saved plan went stale."""
        payload = {"state": self.state, "spec": self.spec,
                   "marks": None if self.marks is None else self.marks.__dict__}
        return hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]


@dataclass(frozen=True)
class Snapshot:
    """Everything discovery saw, frozen; the planner's only view of the machines."""

    observed: tuple[Observed, ...] = ()
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    failed_hosts: frozenset[str] = frozenset()

    def find(self, address: str, host: str | None = None) -> Observed | None:
        """The object observed for an address (on `host`, when given), if any."""
        for item in self.observed:
            if item.address == address and (host is None or item.host == host):
                return item
        return None
