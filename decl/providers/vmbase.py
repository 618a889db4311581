"""The VM base: what every hypervisor provider shares, written once.

A VM provider (libvirt, qemu, hyperv, virtualbox, vmware, parallels, utm, esxi, xen...)
subclasses `VmProvider`, sets `name`, `options_model` (a `VmOptions` subclass) and `support`
(what the backend can do of the common fields), and implements only backend primitives:

    check(conn)                     is the tool there
    discover(conn, project, wanted) one batched pass: Observed per VM (spec from the backend)
    read_marks(op)                  the marks on the VM now (ownership check before a delete)
    define(op, options)             create the VM, stopped, with its disks, seed and marks
    modify(op, options, fields)     change `fields` (and rewrite the marks); the VM is stopped
                                    unless every changed field is live
    power_state(op)                 "running", "paused", "stopped", or None when it is gone
    power_on(op, options)           start (or resume)
    soft_stop(op, options)          ask the guest to shut down (False: refused)
    hard_stop(op, options)          power off now
    remove(op, options)             delete the VM and the files decl made for it (stopped)
    grow_disk(op, options, dev, size, running)

The base gives the rest: options validated by their model with manifest positions, the
common fields checked against `support` (positions too), the comparable spec and field
policies, disks that grow and never shrink (a shrink is a plan error), the cloud-init
NoCloud seed (`make_seed`), graceful stop with `options.shutdown_timeout` then a hard stop,
restart updates (stop gracefully, modify, start), and the action dispatch.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from decl.core.resource import Marks
from decl.core.traits import KindTraits
from decl.core.units import format_size
from decl.errors import ManifestError, ProviderError
from decl.providers.base import (
    DesiredContext,
    Operation,
    OwnedPath,
    Provider,
    ValidateContext,
    ValidationProblem,
    ensure_owned,
    options_problems,
)
from decl.providers.vmspec import vm_spec, vm_traits

# How often the power state is polled while waiting for a stop.
POLL_SECONDS = 0.25
# How long a hard stop may take to show.
HARD_STOP_WAIT = 30.0
RUNNING_STATES = frozenset({"running", "paused"})


class VmOptions(BaseModel):
    """Options every VM provider has; a provider's options model extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shutdown_timeout: float = Field(
        60.0, ge=0,
        description="Seconds a graceful shutdown may take before a hard stop (0: stop hard).")

    def comparable(self) -> dict[str, Any]:
        """The options compared with the VM found on the host (a None value: not managed).

        Default: none (options only shape how decl acts); override to compare some."""
        return {}


OptionsT = TypeVar("OptionsT", bound=VmOptions)

ALL_ARCHES = frozenset({"x86_64", "i686", "aarch64", "armv7l", "riscv64", "ppc64le", "s390x"})


@dataclass(frozen=True)
class VmSupport:
    """What a backend can do of the common VM fields; checked by `validate` with positions."""

    arches: frozenset[str] = ALL_ARCHES
    firmware: frozenset[str] = frozenset({"bios", "uefi"})
    network_modes: frozenset[str] = frozenset({"nat", "bridge", "none"})
    cdrom: bool = True
    cloud_init: bool = True
    # memory must be a whole multiple of this many bytes, and at least min_memory
    memory_multiple: int = 1
    min_memory: int = 0
    max_disks: int | None = None
    max_cpus: int | None = None


def option_field(model: Any, key: str) -> tuple[str, ...]:
    """("options", KEY) when the manifest sets that option, else () (the resource itself):
    where an error about a path the option decides points."""
    raw = getattr(model, "options", None) or {}
    return ("options", key) if isinstance(raw, dict) and raw.get(key) is not None else ()


def is_windows_path(path: str) -> bool:
    """A path written the Windows way (C:\\..., \\\\server\\share, or any backslash)."""
    return "\\" in path or (len(path) >= 2 and path[1] == ":" and path[0].isalpha())


def owned_in(folder: str, *parts: str, field: tuple[str, ...] = (), what: str = "directory"
             ) -> OwnedPath:
    """An OwnedPath FOLDER/PARTS..., joined the way FOLDER is written (Windows or POSIX)."""
    windows = is_windows_path(folder)
    sep = "\\" if windows else "/"
    path = sep.join([folder.rstrip("/\\") or sep, *parts])
    return OwnedPath(path, field, what, windows)


class VmProvider(Provider, Generic[OptionsT]):
    """Base of every VM provider: see the module's docstring for what a subclass writes."""

    kinds: ClassVar[tuple[str, ...]] = ("vm",)
    traits: ClassVar[dict[str, KindTraits]] = {"vm": vm_traits()}
    options_model: ClassVar[type[VmOptions]] = VmOptions
    support: ClassVar[VmSupport] = VmSupport()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.option_models = {"vm": cls.options_model}

    # -- validate and spec -----------------------------------------------------------------

    @classmethod
    def validate(cls, kind: str, model: Any, context: ValidateContext
                 ) -> list[ValidationProblem]:
        """Options against `options_model`, the common fields against `support`, then
        `validate_vm` (the provider's own checks) once the options are valid."""
        problems = options_problems(cls.options_model, model.options, context.at("options"))
        problems += cls._support_problems(model, context)
        if not problems:
            options = cls.options_model.model_validate(model.options or {})
            problems += cls.validate_vm(model, options, context)
        return problems

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """Provider-specific checks of a VM (names, paths, option combinations)."""
        return []

    @classmethod
    def _support_problems(cls, model: Any, context: ValidateContext) -> list[ValidationProblem]:
        support = cls.support
        name = cls.name
        found: list[ValidationProblem] = []
        if model.arch is not None and model.arch not in support.arches:
            found.append(ValidationProblem(context.at("arch"), (
                f"the {name} provider cannot run arch {model.arch} "
                f"(it runs: {', '.join(sorted(support.arches))})")))
        if model.firmware not in support.firmware:
            found.append(ValidationProblem(context.at("firmware"), (
                f"the {name} provider does not support firmware {model.firmware}")))
        if model.network.mode not in support.network_modes:
            found.append(ValidationProblem(context.at("network", "mode"), (
                f"the {name} provider does not support network mode {model.network.mode} "
                f"(it supports: {', '.join(sorted(support.network_modes))})")))
        if model.cdrom is not None and not support.cdrom:
            found.append(ValidationProblem(context.at("cdrom"),
                                           f"the {name} provider does not support cdrom yet"))
        if model.cloud_init is not None and not support.cloud_init:
            found.append(ValidationProblem(context.at("cloud_init"),
                                           f"the {name} provider does not support cloud_init "
                                           "yet"))
        multiple = support.memory_multiple
        if model.memory % multiple or model.memory < support.min_memory:
            least = f" and at least {format_size(support.min_memory)}" \
                if support.min_memory else ""
            found.append(ValidationProblem(context.at("memory"), (
                f"the {name} provider needs memory in whole multiples of "
                f"{format_size(multiple)}{least}, not {format_size(model.memory)}")))
        if support.max_disks is not None and len(model.disks) > support.max_disks:
            found.append(ValidationProblem(context.at("disks"), (
                f"the {name} provider attaches at most {support.max_disks} disks")))
        if support.max_cpus is not None and model.cpus > support.max_cpus:
            found.append(ValidationProblem(context.at("cpus"), (
                f"the {name} provider allows at most {support.max_cpus} cpus")))
        return found

    @classmethod
    def options_of(cls, model: Any) -> OptionsT:
        """A manifest VM's options, parsed (validate has checked them: an error here is
        reported the same way, for callers that skipped validation)."""
        raw = model.options if model is not None else {}
        problems = options_problems(cls.options_model, raw, ("options",))
        if problems:
            raise ManifestError("; ".join(
                f"{'.'.join(str(p) for p in problem.path)}: {problem.message}"
                for problem in problems))
        return cls.options_model.model_validate(raw or {})  # type: ignore[return-value]

    def options_for(self, op: Operation) -> OptionsT:
        """The options of the operation's VM (defaults for an orphan, which has none)."""
        return self.options_of(op.desired.model if op.desired is not None else None)

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The common comparable VM spec with the provider's comparable options."""
        return vm_spec(model, self.options_of(model).comparable())

    # -- backend primitives ------------------------------------------------------------------

    @abc.abstractmethod
    def read_marks(self, op: Operation) -> Marks | None:
        """The ownership marks on the VM as the backend has them now."""

    @abc.abstractmethod
    def define(self, op: Operation, options: OptionsT) -> None:
        """Create the VM (stopped) with its disks, cdrom, seed and this project's marks;
        on failure remove whatever was made."""

    @abc.abstractmethod
    def modify(self, op: Operation, options: OptionsT, fields: set[str]) -> None:
        """Change `fields` of the VM to `op.desired` and rewrite its marks. Disk sizes are
        grown separately (grow_disk)."""

    @abc.abstractmethod
    def power_state(self, op: Operation) -> str | None:
        """running, paused, stopped (or another backend word); None when the VM is gone."""

    @abc.abstractmethod
    def power_on(self, op: Operation, options: OptionsT) -> None:
        """Start the VM (resume it when paused)."""

    @abc.abstractmethod
    def soft_stop(self, op: Operation, options: OptionsT) -> bool:
        """Ask the guest to shut down (ACPI); may return before it is down, or block up to
        options.shutdown_timeout. False when the backend refused (a hard stop follows at
        once, without waiting out the timeout)."""

    @abc.abstractmethod
    def hard_stop(self, op: Operation, options: OptionsT) -> None:
        """Power the VM off now."""

    @abc.abstractmethod
    def remove(self, op: Operation, options: OptionsT) -> None:
        """Delete the (stopped) VM and the files decl made for it, nothing else."""

    @abc.abstractmethod
    def grow_disk(self, op: Operation, options: OptionsT, dev: str, size: int,
                  running: bool) -> None:
        """Grow disk `dev` to `size` bytes (online when `running`)."""

    # -- shared behaviour --------------------------------------------------------------------

    def stop_gracefully(self, op: Operation, options: OptionsT) -> None:
        """Ask the guest to shut down; after `options.shutdown_timeout` seconds, stop hard."""
        if self.power_state(op) not in RUNNING_STATES:
            return
        timeout = max(0.0, float(options.shutdown_timeout))
        if timeout > 0:
            deadline = time.monotonic() + timeout
            op.progress(f"shutting down {op.name} (up to {timeout:g} s)", None)
            if self.soft_stop(op, options) and self._wait_stopped(op, deadline):
                return
        op.progress(f"stopping {op.name} hard", None)
        self.hard_stop(op, options)
        if not self._wait_stopped(op, time.monotonic() + HARD_STOP_WAIT):
            raise ProviderError(f"{op.address}: the VM does not stop")

    def _wait_stopped(self, op: Operation, deadline: float) -> bool:
        while True:
            if self.power_state(op) not in RUNNING_STATES:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)

    def disk_sizes(self, spec: dict[str, Any]) -> dict[str, int | None]:
        """dev -> size in bytes, from a comparable spec (override for another spec shape)."""
        return dict(spec.get("disk_size") or {})

    def grow_disks(self, op: Operation, options: OptionsT, running: bool) -> None:
        """Grow each disk the manifest made larger; a smaller one is an error (the planner
        refuses it first: disks never shrink)."""
        desired = op.need_desired()
        have = self.disk_sizes(op.observed.spec) if op.observed is not None else {}
        for dev, size in sorted(self.disk_sizes(desired.spec).items()):
            current = have.get(dev)
            if size is None or current is None or size == current:
                continue
            if size < current:
                raise ProviderError(f"{op.address}: disk {dev} cannot shrink from "
                                    f"{format_size(current)} to {format_size(size)}")
            op.progress(f"growing disk {dev} to {format_size(size)}", None)
            self.grow_disk(op, options, dev, size, running)

    def reach_target_state(self, op: Operation, options: OptionsT) -> None:
        """Start or stop the VM so that it ends in the plan's target state."""
        target = op.target_state
        state = self.power_state(op)
        if target == "running" and state != "running":
            op.progress(f"starting {op.name}", None)
            self.power_on(op, options)
        elif target == "stopped" and state in RUNNING_STATES:
            self.stop_gracefully(op, options)

    @staticmethod
    def make_seed(op: Operation, path: str) -> None:
        """Write the cloud-init NoCloud seed ISO of the VM's `cloud_init` at `path` on its host
        (an ISO labelled `cidata` with user-data and meta-data)."""
        from decl.providers import cloudinit

        model = op.need_desired().model
        op.progress(f"making cloud-init seed {path}", None)
        cloudinit.make_seed_iso(op.conn, path, model.cloud_init.model_dump(mode="json"),
                                op.name)

    @staticmethod
    def live_fields(op: Operation) -> set[str]:
        """The changed fields, without disk sizes (grown by grow_disks)."""
        return op.changed_fields() - {"disk_size"}

    # -- actions -----------------------------------------------------------------------------

    def create(self, op: Operation) -> None:
        """define(), then start when the plan wants it running."""
        options = self.options_for(op)
        op.progress(f"creating {op.name}", None)
        self.define(op, options)
        self.reach_target_state(op, options)

    def update(self, op: Operation) -> None:
        """Live changes: grow disks, modify the rest, keep the run state as planned."""
        options = self.options_for(op)
        running = self.power_state(op) in RUNNING_STATES
        self.grow_disks(op, options, running)
        self.modify(op, options, self.live_fields(op))
        self.reach_target_state(op, options)

    def restart_update(self, op: Operation) -> None:
        """Stop gracefully, modify, grow disks offline, start again if it was running."""
        options = self.options_for(op)
        was_running = self.power_state(op) in RUNNING_STATES
        if was_running:
            op.progress(f"restarting {op.name} (shutdown, change, start)", None)
            self.stop_gracefully(op, options)
        self.grow_disks(op, options, False)
        self.modify(op, options, self.live_fields(op))
        if was_running and op.target_state != "stopped":
            self.power_on(op, options)
        self.reach_target_state(op, options)

    def adopt(self, op: Operation) -> None:
        """Write this project's marks (modify rewrites them) and converge like an update."""
        if self.power_state(op) in RUNNING_STATES and any(
                f.policy in ("restart", "replace") for f in op.change.fields):
            self.restart_update(op)
        else:
            self.update(op)

    def start(self, op: Operation) -> None:
        """Start (or resume) the VM."""
        op.progress(f"starting {op.name}", None)
        self.power_on(op, self.options_for(op))

    def stop(self, op: Operation) -> None:
        """Graceful shutdown, then a hard stop after options.shutdown_timeout."""
        self.stop_gracefully(op, self.options_for(op))

    def delete(self, op: Operation) -> None:
        """Check the marks on the VM, stop it hard, remove it and the files decl made."""
        options = self.options_for(op)
        state = self.power_state(op)
        if state is None:
            return  # already gone
        ensure_owned(op, self.read_marks(op), f"VM {op.name!r}")
        if state in RUNNING_STATES:
            op.progress(f"stopping {op.name}", None)
            self.hard_stop(op, options)
            if not self._wait_stopped(op, time.monotonic() + HARD_STOP_WAIT):
                raise ProviderError(f"{op.address}: the VM does not stop")
        op.progress(f"removing {op.name}", None)
        self.remove(op, options)


__all__ = ["OptionsT", "VmOptions", "VmProvider", "VmSupport"]
