"""The pipeline: manifest -> desired -> snapshot -> plan; plan files; apply."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from decl.connections.pool import ConnectionPool
from decl.core.plan import Change, Plan
from decl.core.planner import PlanOptions, plan
from decl.core.traits import KindTraits
from decl.engine.desired import DesiredSet, build_desired
from decl.engine.recovery import leftovers, read_journal
from decl.engine.snapshot import take_snapshot
from decl.engine.statedir import journal_path, read_touched
from decl.engine.validate import check_manifest
from decl.engine.warmup import WarmUps
from decl.errors import ConnectionFailed, DeclError
from decl.manifest.load import LoadedManifest, load
from decl.providers.registry import ProviderLoadError, Registry
from decl.redact import Redactor


@dataclass
class Inputs:
    """What the user gave on the command line to read the manifest."""

    file: str = "decl.yaml"
    var_assignments: list[str] = field(default_factory=list)
    var_files: list[str] = field(default_factory=list)
    secret_files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For the plan file (variables are not secrets; secret files are named, not read)."""
        return {"file": os.path.abspath(self.file), "var_assignments": self.var_assignments,
                "var_files": [os.path.abspath(f) for f in self.var_files],
                "secret_files": [os.path.abspath(f) for f in self.secret_files]}


@dataclass
class Session:
    """A loaded manifest with its providers and connections."""

    inputs: Inputs
    loaded: LoadedManifest
    registry: Registry
    pool: ConnectionPool
    desired: DesiredSet
    redactor: Redactor
    warmups: WarmUps = field(default_factory=WarmUps)

    @property
    def project(self) -> str:
        """The manifest's project."""
        return self.loaded.manifest.project

    def plan(self, options: PlanOptions) -> Plan:
        """Discover and plan (the planner itself is pure)."""
        self._check_targets(options)
        extra = read_touched(self.project)
        traits = self.traits()
        snapshot = take_snapshot(
            self.project, self.desired.items, self.registry, self.pool,
            extra_groups=extra, unavailable=self.desired.unavailable,
        )
        # What an apply that died was making (read only: plan never writes).
        in_flight = leftovers(read_journal(journal_path(self.project))).in_flight
        snapshot = dataclasses.replace(snapshot, in_flight=frozenset(in_flight))
        return plan(self.project, self.desired.items, snapshot, traits, options)

    def traits(self) -> dict[tuple[str, str], KindTraits]:
        """Traits of every (provider, kind) the manifest uses or this project used before
        (orphans of providers the manifest no longer names need theirs too)."""
        traits = dict(self.desired.traits)
        for provider_name in sorted({provider for provider, _ in read_touched(self.project)}):
            try:
                provider = self.registry.get(provider_name)
            except ProviderLoadError:
                continue
            for kind, kind_traits in provider.traits.items():
                traits.setdefault((provider_name, kind), kind_traits)
        return traits

    def prepare_providers(self, changes: list[Change]) -> None:
        """Let the providers that these changes need warm up in the background (the threads
        are joined by close()). A provider none of whose changes need its warm-up (a no-op
        plan; containers created straight over a local engine's socket) is not warmed up."""
        needed: set[str] = set()
        for change in changes:
            if not change.provider or change.provider in needed:
                continue
            try:
                provider = self.registry.get(change.provider)
                conn = self.pool.get(change.host)
            except (ProviderLoadError, ConnectionFailed):
                continue
            if provider.needs_prepare(change, conn):
                needed.add(change.provider)
                self.warmups.start(change.provider, provider.prepare)

    def _check_targets(self, options: PlanOptions) -> None:
        known = {d.address for d in self.desired.items}
        for target in options.targets:
            if target not in known:
                raise DeclError(f"--target {target}: no such resource in {self.loaded.file} "
                                f"(addresses look like venv.tools or container.db)")

    def close(self) -> None:
        """Wait for the warm-up threads, then close connections."""
        self.warmups.join()
        self.pool.close()


def load_checked(inputs: Inputs, registry: Registry, *,
                 require_secrets: bool = True) -> LoadedManifest:
    """Load the manifest, validate it against the schema, then with each resource's provider
    (`decl validate`, `plan` and `apply` all go through here)."""
    loaded = load(inputs.file, var_assignments=inputs.var_assignments,
                  var_files=inputs.var_files, secret_files=inputs.secret_files,
                  require_secrets=require_secrets)
    check_manifest(loaded, registry)
    return loaded


def open_session(inputs: Inputs, registry: Registry | None = None) -> Session:
    """Load and validate the manifest and build the desired resources."""
    registry = registry or Registry()
    loaded = load_checked(inputs, registry)
    desired = build_desired(loaded, registry)
    pool = ConnectionPool(loaded.manifest.hosts)
    return Session(inputs, loaded, registry, pool, desired, Redactor(loaded.secret_values))


def plan_manifest(inputs: Inputs, options: PlanOptions,
                  out_file: str | None = None) -> tuple[Plan, Redactor]:
    """`decl plan` / `decl status`: load, discover, plan, close; the plan saved to `out_file`
    when given. Returns the plan and the redactor its text must go through."""
    session = open_session(inputs)
    try:
        result = session.plan(options)
    finally:
        session.close()
    if out_file:
        save_plan(out_file, session, result, options)
    return result, session.redactor


def save_plan(path: str, session: Session, result: Plan, options: PlanOptions) -> None:
    """Write a signed plan file: the plan, fingerprints, inputs; never a secret value."""
    from decl.engine.planfile import plan_document, write_plan

    write_plan(path, plan_document(session.inputs.to_json(), options, result,
                                   scrub=session.redactor))


def read_plan_file(path: str, purpose: str = "applied") -> Any:
    """Read and verify a plan file written by `decl plan --out` (see decl.engine.planfile)."""
    from decl.engine.planfile import read_plan_file as read

    return read(path, purpose)


def inputs_from_plan(saved: Any) -> tuple[Inputs, PlanOptions]:
    """The inputs and options a verified plan file was made with."""
    return (Inputs(file=saved.file, var_assignments=list(saved.var_assignments),
                   var_files=list(saved.var_files), secret_files=list(saved.secret_files)),
            saved.options)


def check_stale(saved: dict[str, Any], fresh: Plan, scrub: Any = None) -> None:
    """Refuse a saved plan (its `plan` part) that no longer matches what decl sees now."""
    from decl.engine.planfile import check_stale as check

    check(saved, fresh, scrub)
