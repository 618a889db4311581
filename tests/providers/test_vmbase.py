"""The VM base's shared behaviour, on an in-memory backend that logs its primitives."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import Field

from decl.core.plan import Action, Change, FieldChange
from decl.core.resource import Desired, Marks, Observed
from decl.errors import ProviderError
from decl.manifest.model import Vm
from decl.providers import vmbase
from decl.providers.base import DesiredContext, Discovery, Operation, ValidateContext
from decl.providers.vmbase import VmOptions, VmProvider, VmSupport


class MemOptions(VmOptions):
    """Options of the in-memory VMs."""

    color: str = Field("red", description="A compared option.")

    def comparable(self) -> dict[str, Any]:
        return {"color": self.color}


class MemVms(VmProvider[MemOptions]):
    """VMs in a dict; every primitive call is logged."""

    name = "memvm"
    options_model = MemOptions
    support = VmSupport(arches=frozenset({"x86_64"}), cloud_init=False,
                        memory_multiple=1024 * 1024)

    def __init__(self) -> None:
        self.vms: dict[str, dict[str, Any]] = {}
        self.log: list[str] = []
        self.guest_obeys = True
        self.refuse_soft_stop = False

    def check(self, conn):  # pragma: no cover - not used here
        raise NotImplementedError

    def discover(self, conn, project, wanted):  # pragma: no cover - not used here
        return Discovery()

    def read_marks(self, op):
        vm = self.vms.get(op.name)
        return vm and vm["marks"]

    def define(self, op, options):
        self.log.append("define")
        self.vms[op.name] = {"power": "stopped", "marks": op.marks(), "disks": {}}

    def modify(self, op, options, fields):
        self.log.append(f"modify {','.join(sorted(fields))} while {self.vms[op.name]['power']}")

    def power_state(self, op):
        vm = self.vms.get(op.name)
        return vm and vm["power"]

    def power_on(self, op, options):
        self.log.append("power_on")
        self.vms[op.name]["power"] = "running"

    def soft_stop(self, op, options):
        self.log.append("soft_stop")
        if self.refuse_soft_stop:
            return False
        if self.guest_obeys:
            self.vms[op.name]["power"] = "stopped"
        return True

    def hard_stop(self, op, options):
        self.log.append("hard_stop")
        self.vms[op.name]["power"] = "stopped"

    def remove(self, op, options):
        self.log.append("remove")
        del self.vms[op.name]

    def grow_disk(self, op, options, dev, size, running):
        self.log.append(f"grow {dev} {size} {'online' if running else 'offline'}")


def operation(provider: MemVms, action: Action, *, fields=(), target="running",
              observed_sizes=None, wanted_sizes=None, project="lab",
              options=None) -> Operation:
    model = Vm(provider="memvm", memory="64MiB", disks=[{"size": "1GiB"}],
               options=options or {"shutdown_timeout": 0.3})
    spec = provider.spec("vm", "web", model, DesiredContext("lab", "."))
    if wanted_sizes is not None:
        spec["disk_size"] = wanted_sizes
    desired = Desired(address="vm.web", kind="vm", name="web", provider="memvm",
                      host="local", state=target, spec=spec, model=model)
    observed = None
    if observed_sizes is not None:
        observed = Observed(address="vm.web", kind="vm", name="web", provider="memvm",
                            host="local", state="running",
                            spec={**spec, "disk_size": observed_sizes},
                            marks=Marks(project, "vm.web", "x"))
    change = Change(address="vm.web", kind="vm", name="web", provider="memvm", host="local",
                    action=action, cause="test", target_state=target, project=project,
                    fields=tuple(FieldChange(f, 1, 2, "restart") for f in fields))
    return Operation(change=change, desired=desired, observed=observed, conn=None,  # type: ignore[arg-type]
                     progress=lambda message, fraction=None: None, project=project)


def test_create_defines_then_starts():
    provider = MemVms()
    provider.create(operation(provider, Action.CREATE))
    assert provider.log == ["define", "power_on"]
    assert provider.vms["web"]["marks"].project == "lab"


def test_graceful_stop_then_hard_stop_after_the_timeout(monkeypatch):
    monkeypatch.setattr(vmbase, "POLL_SECONDS", 0.01)
    provider = MemVms()
    provider.vms["web"] = {"power": "running", "marks": None}
    provider.guest_obeys = False
    started = time.monotonic()
    provider.stop(operation(provider, Action.STOP, target="stopped"))
    assert provider.log == ["soft_stop", "hard_stop"]
    assert time.monotonic() - started >= 0.3  # options.shutdown_timeout was waited out
    provider.log.clear()
    provider.vms["web"]["power"] = "running"
    provider.refuse_soft_stop = True
    started = time.monotonic()
    provider.stop(operation(provider, Action.STOP, target="stopped",
                            options={"shutdown_timeout": 30}))
    assert provider.log == ["soft_stop", "hard_stop"]
    assert time.monotonic() - started < 5  # refused: no waiting for 30 s


def test_restart_update_stops_modifies_grows_offline_and_starts():
    provider = MemVms()
    provider.vms["web"] = {"power": "running", "marks": None}
    provider.restart_update(operation(provider, Action.UPDATE_RESTART, fields=("memory",),
                                      observed_sizes={"vda": 1024**3},
                                      wanted_sizes={"vda": 2 * 1024**3}))
    assert provider.log == ["soft_stop", f"grow vda {2 * 1024**3} offline",
                            "modify memory while stopped", "power_on"]


def test_live_update_grows_online_and_never_shrinks():
    provider = MemVms()
    provider.vms["web"] = {"power": "running", "marks": None}
    provider.update(operation(provider, Action.UPDATE, fields=("disk_size",),
                              observed_sizes={"vda": 1024**3},
                              wanted_sizes={"vda": 2 * 1024**3}))
    assert provider.log == [f"grow vda {2 * 1024**3} online", "modify  while running"]
    with pytest.raises(ProviderError, match="disk vda cannot shrink from 2GiB to 1GiB"):
        provider.update(operation(provider, Action.UPDATE, observed_sizes={"vda": 2 * 1024**3},
                                  wanted_sizes={"vda": 1024**3}))


def test_delete_checks_the_marks_on_the_vm_first():
    provider = MemVms()
    provider.vms["web"] = {"power": "running", "marks": Marks("other", "vm.web", "h")}
    op = operation(provider, Action.DELETE, observed_sizes={})
    with pytest.raises(ProviderError, match="carries no mark of project lab"):
        provider.delete(op)
    assert provider.log == [] and "web" in provider.vms
    provider.vms["web"]["marks"] = Marks("lab", "vm.web", "h")
    provider.delete(op)
    assert provider.log == ["hard_stop", "remove"] and "web" not in provider.vms
    provider.delete(op)  # already gone: nothing to do


def test_apply_dispatches_each_action_to_its_method():
    provider = MemVms()
    op = operation(provider, Action.CREATE)
    provider.apply(op.change, op.desired, None, op.conn, op.progress)
    assert provider.log == ["define", "power_on"]
    provider.log.clear()
    stop = operation(provider, Action.STOP, target="stopped", observed_sizes={})
    provider.apply(stop.change, stop.desired, stop.observed, stop.conn, stop.progress)
    assert provider.log == ["soft_stop"]


def test_validate_reports_options_and_support_with_paths():
    context = ValidateContext(project="lab", base_dir=".", kind="vm", name="web",
                              path=("vms", "web"))
    model = Vm(provider="memvm", memory="1000000000", arch="aarch64",
               cloud_init={"hostname": "x"}, options={"colour": "blue"})
    problems = {p.path: p.message for p in MemVms.validate("vm", model, context)}
    assert problems[("vms", "web", "options", "colour")] == \
        "unknown option 'colour'; did you mean 'color'?"
    assert "cannot run arch aarch64" in problems[("vms", "web", "arch")]
    assert "does not support cloud_init" in problems[("vms", "web", "cloud_init")]
    assert "whole multiples of 1MiB" in problems[("vms", "web", "memory")]
    assert MemVms.option_models == {"vm": MemOptions}
