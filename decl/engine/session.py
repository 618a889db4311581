"""The pipeline: manifest -> desired -> snapshot -> plan; plan files; apply."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from decl.connections.pool import ConnectionPool
from decl.core.plan import FORMAT_VERSION, Plan
from decl.core.planner import PlanOptions, plan
from decl.core.traits import KindTraits
from decl.engine.desired import DesiredSet, build_desired
from decl.engine.snapshot import take_snapshot
from decl.engine.statedir import read_touched
from decl.engine.validate import check_manifest
from decl.engine.warmup import WarmUps
from decl.errors import DeclError, PlanError
from decl.files import write_atomic
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

    def prepare_providers(self) -> None:
        """Let the providers of this manifest warm up in the background while discovery runs
        (the threads are joined by close())."""
        for name in sorted({item.provider for item in self.desired.items}):
            try:
                provider = self.registry.get(name)
            except ProviderLoadError:
                continue
            self.warmups.start(name, provider.prepare)

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


def save_plan(path: str, session: Session, result: Plan, options: PlanOptions) -> None:
    """Write a plan file: the plan, fingerprints, inputs; never a secret value."""
    document = {
        "decl_plan": FORMAT_VERSION,
        "inputs": session.inputs.to_json(),
        "options": {"prune": options.prune, "destroy": options.destroy,
                    "targets": list(options.targets)},
        "plan": result.to_json(),
    }
    text = session.redactor(json.dumps(document, indent=2, sort_keys=True, default=str))
    write_atomic(path, (text + "\n").encode())


def read_plan_file(path: str) -> dict[str, Any]:
    """Read a plan file written by `decl plan --out`."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise DeclError(f"plan file not found: {path}") from None
    except ValueError as exc:
        raise DeclError(f"{path} is not a decl plan file: {exc}") from None
    if not isinstance(document, dict) or document.get("decl_plan") != FORMAT_VERSION:
        raise DeclError(f"{path} is not a decl plan file (format {FORMAT_VERSION})")
    return document


def inputs_from_plan(document: dict[str, Any]) -> tuple[Inputs, PlanOptions]:
    """The inputs and options a plan file was made with."""
    raw = document["inputs"]
    options = document.get("options", {})
    return (
        Inputs(file=raw["file"], var_assignments=list(raw.get("var_assignments", [])),
               var_files=list(raw.get("var_files", [])),
               secret_files=list(raw.get("secret_files", []))),
        PlanOptions(prune=bool(options.get("prune")), destroy=bool(options.get("destroy")),
                    targets=tuple(options.get("targets", []))),
    )


def check_stale(document: dict[str, Any], fresh: Plan) -> None:
    """Refuse a saved plan when the manifest or any observed resource moved since."""
    saved = document["plan"]
    moved: list[str] = []
    if saved.get("manifest_fingerprint") != fresh.manifest_fingerprint:
        moved.append("the manifest (or its variables or secrets) changed")
    before: dict[str, str] = saved.get("observed_fingerprints", {})
    after = fresh.observed_fingerprints
    for address in sorted(set(before) | set(after)):
        if before.get(address) != after.get(address):
            was, now = before.get(address, "absent"), after.get(address, "absent")
            if was == "absent":
                moved.append(f"{address} appeared")
            elif now == "absent":
                moved.append(f"{address} disappeared")
            else:
                moved.append(f"{address} changed")
    if moved:
        raise PlanError("the saved plan is stale, run `decl plan` again: " + "; ".join(moved))
