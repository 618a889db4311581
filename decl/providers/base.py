"""The provider contract: what a backend declares, validates, discovers and carries out.

A provider is a class with:
- `name`, `kinds` and, per kind, its `traits` (field policies, delete order, what a delete
  destroys) and the pydantic model of its own `options` (`option_models`);
- a static `validate` hook: no connection, no I/O beyond reading files the manifest names;
  each problem carries the manifest path of the field, so the CLI prints file:line:col;
- `spec` (the comparable desired spec), `check` and `discover` (one batched pass per host);
- one method per action, each receiving one immutable `Operation`: `create`, `update`,
  `restart_update`, `delete`, `start`, `stop`, `adopt` (`replace` = delete + create unless
  overridden). `apply` (here, final) dispatches; a provider keeps no per-call state.

See docs/providers.md for how to write one.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits
from decl.errors import ProviderError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

# Providers never print: they report progress through this callback.
# progress(message, fraction) where fraction is 0..1 or None when unknown.
Progress = Callable[[str, "float | None"], None]

COMMON_FIELDS = frozenset({"host", "depends_on", "lifecycle", "adopt", "state", "provider"})

# A manifest path: ("vms", "web", "options", "bogus"), ("containers", "db", "ports", 0).
ManifestPath = tuple["str | int", ...]


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


@dataclass(frozen=True)
class ValidateContext:
    """What a provider's `validate` hook may consult: the manifest only, no connection.

    `path` is the resource's own manifest path (("vms", "web")); `host_shell` is the shell of
    the resource's host (posix or powershell), so a provider can check path syntax.
    """

    project: str
    base_dir: str
    kind: str
    name: str
    path: ManifestPath
    host: str = "local"
    host_shell: str = "posix"

    def at(self, *parts: str | int) -> ManifestPath:
        """The manifest path of a field of this resource."""
        return (*self.path, *parts)


@dataclass(frozen=True)
class ValidationProblem:
    """A bad value in the manifest, found by a provider: where (a manifest path) and why.

    `key=True` points at the key itself (an unknown option) rather than at its value.
    """

    path: ManifestPath
    message: str
    key: bool = False


@dataclass(frozen=True)
class OwnedPath:
    """A path on its host that one resource alone may use: a venv, a VM's directory, a disk
    or config file decl makes and deletes with the resource.

    `field` is the resource's manifest field that sets it (() when only the name does), so
    an error names its position; `windows` compares it as a Windows path (case-blind, / and
    \\ alike); `what` names it in messages.
    """

    path: str
    field: ManifestPath = ()
    what: str = "directory"
    windows: bool = False


@dataclass(frozen=True)
class OwnedName:
    """The key under which a backend knows a resource on its host (two resources with one
    key on one host and provider are one object), and the manifest field that sets it."""

    key: str
    field: ManifestPath = ()


@dataclass
class Discovery:
    """What one discovery pass on one host found."""

    observed: list[Observed] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportScope:
    """What `decl import` asks a provider's inventory() to look at."""

    project: str
    # Directories to look in, for kinds that live at a path (venvs): their subdirectories.
    paths: tuple[str, ...] = ()


class ImportNotSupported(ProviderError):
    """The provider cannot list objects for import, or cannot describe this one."""


@dataclass(frozen=True)
class Operation:
    """Everything one action needs, immutable: what to do and to what, where, for whom.

    `desired` is None for an orphan's delete; `observed` is None for a create.
    """

    change: Change
    desired: Desired | None
    observed: Observed | None
    conn: Connection
    progress: Progress
    project: str

    @property
    def address(self) -> str:
        """The resource's address (vm.web)."""
        return self.change.address

    @property
    def name(self) -> str:
        """The resource's name (web)."""
        return self.change.name

    @property
    def action(self) -> Action:
        """The planned action."""
        return self.change.action

    @property
    def target_state(self) -> str | None:
        """The run state the resource must end in (None: leave it)."""
        return self.change.target_state

    def need_desired(self) -> Desired:
        """The manifest entry; ProviderError when there is none (an orphan)."""
        if self.desired is None:
            raise ProviderError(f"{self.address}: {self.action.value} needs the manifest entry")
        return self.desired

    def need_observed(self) -> Observed:
        """The object found by discovery; ProviderError when it is gone."""
        if self.observed is None:
            raise ProviderError(f"{self.address}: the object to {self.action.value} was not "
                                f"found on host {self.conn.host}")
        return self.observed

    def marks(self) -> Marks:
        """The marks the object must carry after this operation."""
        if not self.project:
            raise ProviderError(f"{self.address}: the change names no project to mark the "
                                "object with")
        return self.need_desired().marks(self.project)

    def changed_fields(self) -> set[str]:
        """Top-level fields the plan found different (memory, options, disk_size...)."""
        return {f.path.split(".")[0] for f in self.change.fields}


def project_of(change: Change, observed: Observed | None) -> str:
    """The project whose marks an operation writes: the plan's, else the object's own."""
    if change.project:
        return change.project
    if observed is not None and observed.marks is not None:
        return observed.marks.project
    return ""


def ensure_owned(op: Operation, marks: Marks | None, what: str) -> None:
    """Refuse to delete or change `what` unless it carries this project's marks.

    `marks` are those read from the backend just before acting (not the plan's copy).
    An unmarked object passes only when the plan says decl was making it when an earlier
    apply died (Change.in_flight: the journal says so and the kind can exist unmarked)."""
    if marks is None and op.change.in_flight:
        return
    if marks is None or not op.project or marks.project != op.project:
        raise ProviderError(f"{op.address}: {what} carries no mark of project "
                            f"{op.project or '(none)'}: decl will not delete or change it")


def orphan_address(marks: Marks | None, project: str, desired: Desired | None) -> str | None:
    """The address an object is reported under: the wanted one, else (an orphan of this
    project) the address in its marks; None when it is neither wanted nor ours."""
    if desired is not None:
        return desired.address
    if marks is not None and marks.project == project and marks.address:
        return marks.address
    return None


def options_problems(model: type[BaseModel], raw: Any,
                     path: ManifestPath) -> list[ValidationProblem]:
    """Problems of an `options` mapping against a provider's options model, one per error,
    each at the option's manifest path; unknown options get "did you mean"."""
    from pydantic import ValidationError

    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return [ValidationProblem(path, "options must be a mapping of option names to values")]
    try:
        model.model_validate(dict(raw))
    except ValidationError as exc:
        return validation_problems(exc, model, path, noun="option")
    return []


def validation_problems(exc: ValidationError, model: type[BaseModel], path: ManifestPath,
                        noun: str = "field") -> list[ValidationProblem]:
    """A pydantic ValidationError of `model` as problems at manifest paths below `path`."""
    problems = []
    errors = exc.errors(include_url=False)
    # unknown names first: a typo explains the other errors more often than not
    errors = sorted(errors, key=lambda e: e.get("type") != "extra_forbidden")
    for error in errors:
        loc = tuple(p for p in error.get("loc", ()) if isinstance(p, (str, int)))
        kind = error.get("type", "")
        if kind == "extra_forbidden" and loc:
            unknown = str(loc[-1])
            known = [name for name, info in model.model_fields.items()] + [
                str(a) for info in model.model_fields.values()
                for a in getattr(info.validation_alias, "choices", ()) if isinstance(a, str)]
            close = difflib.get_close_matches(unknown, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else \
                f" (known: {', '.join(sorted(model.model_fields))})"
            problems.append(ValidationProblem((*path, *loc), f"unknown {noun} {unknown!r}{hint}",
                                              key=True))
            continue
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if kind == "missing" and loc:
            message = f"missing required {noun} {str(loc[-1])!r}"
            problems.append(ValidationProblem((*path, *loc[:-1]), message))
            continue
        if "input" in error and not isinstance(error["input"], (dict, list)) and \
                kind != "missing":
            message = f"{message}, got {error['input']!r}"
        problems.append(ValidationProblem((*path, *loc), message))
    return problems


class Provider(abc.ABC):
    """One backend. Subclasses set `name`, `kinds`, `traits` (and `option_models`) and
    implement check, discover and the action methods."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    traits: ClassVar[dict[str, KindTraits]]
    # Per kind, the pydantic model of the resource's `options` (kinds with options only).
    option_models: ClassVar[dict[str, type[BaseModel]]] = {}
    # How many changes of this provider may run at once on one host (None: no limit).
    parallel_limit: ClassVar[int | None] = None

    # -- desired --------------------------------------------------------------------------

    @classmethod
    def validate(cls, kind: str, model: Any, context: ValidateContext
                 ) -> list[ValidationProblem]:
        """Problems of a manifest resource this provider can tell without any host: bad
        options, syntax, sizes, names the backend forbids. Each carries its manifest path.

        No connection and no I/O beyond reading files the manifest names. The default
        checks `options` against `option_models[kind]`; override and call super()."""
        options_model = cls.option_models.get(kind)
        if options_model is None or not hasattr(model, "options"):
            return []
        return options_problems(options_model, model.options, context.at("options"))

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec of a manifest resource (default: its fields, minus common ones).

        Override to normalise (units, defaults the backend fills in, canonical forms) so that
        what discover() reports compares equal when nothing differs.
        """
        data: dict[str, Any] = model.model_dump(mode="json", exclude=set(COMMON_FIELDS))
        return data

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The paths this resource alone may use on its host (directories, disk files),
        each with the manifest field that sets it. The engine refuses a manifest in which
        two resources' paths on one machine are equal or nested, so a delete can never
        remove what another resource uses. Default: none."""
        return []

    def owned_name(self, kind: str, name: str, model: Any, spec: dict[str, Any]) -> OwnedName:
        """The name the backend knows this resource by on its host (default: the manifest
        name as it is). Override for a backend that ignores case (return it folded) or
        names an object otherwise (an option that renames it, with that option's field)."""
        return OwnedName(name)

    def state(self, kind: str, model: Any) -> str:
        """The wanted state of a manifest resource."""
        return str(getattr(model, "state", "present"))

    def prevent_destroy_default(self, kind: str) -> bool:
        """Whether objects of this kind are protected from deletion unless said otherwise."""
        traits = self.traits.get(kind)
        return bool(traits and traits.default_prevent_destroy)

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Warm up before an apply (import heavy libraries): run in a thread as soon as the
        plan is known, while it is shown and the executor starts, so that the first change
        does not wait for it. Only when `needs_prepare` says a change needs it."""

    def needs_prepare(self, change: Change, conn: Connection) -> bool:
        """Whether carrying out this change uses what `prepare` warms up (default: yes)."""
        return True

    # -- check and discover ----------------------------------------------------------------

    @abc.abstractmethod
    def check(self, conn: Connection) -> Availability:
        """Is the tool there on this host, and which version."""

    @abc.abstractmethod
    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One batched pass on one host.

        Return an Observed for each wanted resource that exists (marked or not, matched by
        its name or path, with `address` set to the wanted address), plus every object that
        carries this project's marks (orphans, `address` from the marks: orphan_address()).
        Problems found (e.g. a missing image with pull: never) go in `problems` by address.
        """

    def check_and_discover(self, conn: Connection, project: str, wanted: list[Desired]
                           ) -> tuple[Availability, Discovery | None]:
        """What a plan runs per (provider, host): check(), then discover() when the tool is
        there (None when it is not). A provider that can tell both from one command on the
        host overrides it, so that a host costs a plan one round trip."""
        availability = self.check(conn)
        if not availability.available:
            return availability, None
        return availability, self.discover(conn, project, wanted)

    def observe(self, conn: Connection, project: str, desired: Desired) -> Observed | None:
        """Re-discover one resource after a change (the executor's verification).

        The default runs a whole discovery pass; a provider can answer more cheaply."""
        found = self.discover(conn, project, [desired])
        return next((o for o in found.observed
                     if o.address == desired.address and o.host == desired.host), None)

    # -- import (optional) ------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """Objects on this host that carry no decl marks (what `decl import` offers).

        Each Observed has its kind, name, state and spec read from the backend (the spec in
        the manifest's terms, as discover() reports it); `address` is KIND.NAME. Optional:
        the default says the provider cannot do it."""
        raise ImportNotSupported(f"the {self.name} provider cannot list objects for "
                                 "`decl import` yet")

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """The manifest entry (its fields, without `host`, `provider` and `adopt`, which the
        caller adds) describing an object from inventory(), such that the next plan adopts
        it with no other change. Raise ImportNotSupported, saying why, for an object that
        cannot be adopted."""
        raise ImportNotSupported(f"the {self.name} provider cannot describe {observed.address} "
                                 "as a manifest entry yet")

    # -- apply ------------------------------------------------------------------------------

    def apply(
        self,
        change: Change,
        desired: Desired | None,
        observed: Observed | None,
        conn: Connection,
        progress: Progress,
    ) -> None:
        """Carry out one change: build the Operation and call the action's method.

        Not meant to be overridden: implement the action methods instead."""
        op = Operation(change=change, desired=desired, observed=observed, conn=conn,
                       progress=progress, project=project_of(change, observed))
        action = change.action
        if action is Action.DELETE:
            if observed is not None:
                self.delete(op)
            return
        handlers: dict[Action, Callable[[Operation], None]] = {
            Action.CREATE: self.create,
            Action.UPDATE: self.update,
            Action.UPDATE_RESTART: self.restart_update,
            Action.REPLACE: self.replace,
            Action.START: self.start,
            Action.STOP: self.stop,
            Action.ADOPT: self.adopt,
        }
        handler = handlers.get(action)
        if handler is None:
            raise ProviderError(f"{change.address}: the {self.name} provider cannot "
                                f"{action.value}")
        handler(op)

    @abc.abstractmethod
    def create(self, op: Operation) -> None:
        """Make the object from `op.desired`, with its marks, in `op.target_state`."""

    @abc.abstractmethod
    def delete(self, op: Operation) -> None:
        """Remove `op.observed` (after ensure_owned on marks read from the backend)."""

    def update(self, op: Operation) -> None:
        """Change `op.changed_fields()` in place (live), then reach `op.target_state`."""
        raise ProviderError(f"{op.address}: the {self.name} provider cannot update in place")

    def restart_update(self, op: Operation) -> None:
        """Change fields that need a restart (stop, modify, start). Default: update()."""
        self.update(op)

    def replace(self, op: Operation) -> None:
        """Delete, then create (override to keep downtime short, e.g. pull first)."""
        if op.observed is not None:
            self.delete(op)
        # The deleted object is gone: create() must not act on its id (e.g. start it).
        self.create(dataclasses.replace(op, observed=None))

    def start(self, op: Operation) -> None:
        """Start a stopped object."""
        raise ProviderError(f"{op.address}: the {self.name} provider has no run state")

    def stop(self, op: Operation) -> None:
        """Stop a running object."""
        raise ProviderError(f"{op.address}: the {self.name} provider has no run state")

    def adopt(self, op: Operation) -> None:
        """Take over an unmarked object: write this project's marks (and converge).
        Default: update(), which writes the marks with the changes."""
        self.update(op)


def provider_names_hint(name: str, names: Sequence[str]) -> str:
    """"; did you mean 'libvirt'?" or the list of known names."""
    close = difflib.get_close_matches(name, list(names), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (known: {', '.join(sorted(names)) or 'none'})"
