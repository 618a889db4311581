"""The Provider protocol: check, discover (batched per host), field policies, apply."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from decl.core.plan import Change
from decl.core.resource import Desired, Observed
from decl.core.traits import KindTraits

if TYPE_CHECKING:
    from decl.connections.base import Connection

# Providers never print: they report progress through this callback.
# progress(message, fraction) where fraction is 0..1 or None when unknown.
Progress = Callable[[str, "float | None"], None]

COMMON_FIELDS = frozenset({"host", "depends_on", "lifecycle", "adopt", "state", "provider"})


def no_progress(message: str, fraction: float | None = None) -> None:
    """A progress callback that discards everything."""


@dataclass(frozen=True)
class Availability:
    """Whether a provider's tool is usable on a host, and its version."""

    available: bool
    version: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class DesiredContext:
    """What a provider may consult while normalising a manifest resource."""

    project: str
    base_dir: str
    host_config: Any = None
    host: str = "local"


@dataclass
class Discovery:
    """What one discovery pass on one host found."""

    observed: list[Observed] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


class Provider(abc.ABC):
    """One backend. Subclasses set `name`, `kinds`, `traits` and implement the methods."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    traits: ClassVar[dict[str, KindTraits]]
    # How many changes of this provider may run at once on one host (None: no limit).
    parallel_limit: ClassVar[int | None] = None

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec of a manifest resource (default: its fields, minus common ones).

        Override to normalise (units, defaults the backend fills in, canonical forms) so that
        what discover() reports compares equal when nothing differs.
        """
        return model.model_dump(mode="json", exclude=set(COMMON_FIELDS))

    def state(self, kind: str, model: Any) -> str:
        """The wanted state of a manifest resource."""
        return str(getattr(model, "state", "present"))

    def prevent_destroy_default(self, kind: str) -> bool:
        """Whether objects of this kind are protected from deletion unless said otherwise."""
        traits = self.traits.get(kind)
        return bool(traits and traits.default_prevent_destroy)

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Warm up before an apply (import heavy libraries): run in a thread during discovery,
        so that the first change does not wait for it."""

    @abc.abstractmethod
    def check(self, conn: Connection) -> Availability:
        """Is the tool there on this host, and which version."""

    @abc.abstractmethod
    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One batched pass on one host.

        Return an Observed for each wanted resource that exists (marked or not, matched by
        its name or path, with `address` set to the wanted address), plus every object that
        carries this project's marks (orphans, `address` from the marks). Problems found
        (e.g. a missing image with pull: never) go in `problems` by address.
        """

    def observe(self, conn: Connection, project: str, desired: Desired) -> Observed | None:
        """Re-discover one resource after a change (the executor's verification).

        The default runs a whole discovery pass; a provider can answer more cheaply."""
        found = self.discover(conn, project, [desired])
        return next((o for o in found.observed
                     if o.address == desired.address and o.host == desired.host), None)

    @abc.abstractmethod
    def apply(
        self,
        change: Change,
        desired: Desired | None,
        observed: Observed | None,
        conn: Connection,
        progress: Progress,
    ) -> None:
        """Carry out one change (create, update, update_restart, replace, delete, start,
        stop, adopt). Raise ProviderError with a clear message on failure."""
