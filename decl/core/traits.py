"""What the planner needs to know of a provider, as plain data (no provider import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Policy(str, Enum):
    """What a change to one field needs."""

    LIVE = "live"
    RESTART = "restart"
    REPLACE = "replace"
    IGNORE = "ignore"

    @property
    def strength(self) -> int:
        """Order used to pick the strongest need among changed fields."""
        return {"ignore": 0, "live": 1, "restart": 2, "replace": 3}[self.value]


POLICY_WORDS = {
    Policy.LIVE: "can change in place",
    Policy.RESTART: "needs a restart",
    Policy.REPLACE: "forces replacement",
    Policy.IGNORE: "is ignored",
}

# A pure check run by the planner: (field, before, after) -> an error message or None.
FieldCheck = Callable[[str, Any, Any], "str | None"]
# A pure check of an object decl would delete (destroy, --prune): why it must be kept, or None.
KeepCheck = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class KindTraits:
    """Per (provider, kind): field policies and what deleting the object destroys."""

    policies: dict[str, Policy] = field(default_factory=dict)
    default_policy: Policy = Policy.REPLACE
    destroys_data: str | None = None
    has_run_state: bool = True
    default_prevent_destroy: bool = False
    size_fields: frozenset[str] = frozenset()
    check: FieldCheck | None = None
    keep: KeepCheck | None = None
    # Deletes on one host run in rank order: objects others use (networks, volumes: 1)
    # are deleted after their users (containers, VMs: 0).
    delete_rank: int = 0

    def policy(self, path: str) -> Policy:
        """Policy of a dotted field path: the longest declared prefix wins."""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            key = ".".join(parts[:end])
            if key in self.policies:
                return self.policies[key]
        return self.default_policy
