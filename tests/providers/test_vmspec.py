"""VM field policies through the real planner: restart, grow in place, never shrink, replace."""

from __future__ import annotations

from decl.core.plan import Action
from decl.core.planner import plan
from decl.core.resource import Desired, Marks, Observed, Snapshot
from decl.manifest.model import Vm
from decl.providers.base import DesiredContext
from decl.providers.libvirt.provider import LibvirtProvider
from decl.providers.qemu.provider import QemuProvider
from decl.providers.vmspec import vm_traits

MiB = 1024 * 1024


def desired(provider, **fields) -> Desired:
    model = Vm(**{"memory": "64MiB", "disks": [{"size": "16MiB"}], **fields})
    spec = provider.spec("vm", "web", model, DesiredContext("lab", "."))
    return Desired(address="vm.web", kind="vm", name="web", provider=provider.name,
                   host="local", state=model.state, spec=spec, model=model)


def observed_like(item: Desired, state="running", **changes) -> Observed:
    spec = {**item.spec, **changes}
    return Observed(address=item.address, kind="vm", name="web", provider=item.provider,
                    host="local", state=state, spec=spec,
                    marks=Marks("lab", item.address, item.spec_hash))


def plan_one(item: Desired, observed: Observed):
    result = plan("lab", [item], Snapshot(observed=(observed,)),
                  {(item.provider, "vm"): vm_traits()})
    return result.changes[0] if result.changes else None, result.errors


def test_memory_and_cpus_need_a_restart():
    for provider in (LibvirtProvider(), QemuProvider()):
        item = desired(provider, memory="128MiB")
        change, errors = plan_one(item, observed_like(item, memory=64 * MiB))
        assert not errors
        assert change.action is Action.UPDATE_RESTART
        assert "memory 64MiB -> 128MiB needs a restart" in change.cause
        change, _ = plan_one(item, observed_like(item, state="stopped", memory=64 * MiB))
        assert change.action is Action.UPDATE  # nothing to restart


def test_disk_grows_in_place_and_never_shrinks():
    item = desired(LibvirtProvider(), disks=[{"size": "32MiB"}])
    change, errors = plan_one(item, observed_like(item, disk_size={"vda": 16 * MiB}))
    assert change.action is Action.UPDATE and not errors
    change, errors = plan_one(item, observed_like(item, disk_size={"vda": 64 * MiB}))
    assert change is None
    assert "disk vda cannot shrink from 64MiB to 32MiB" in errors[0].message


def test_arch_and_firmware_are_replaces_that_destroy_disks():
    item = desired(QemuProvider(), arch="aarch64", firmware="uefi")
    change, _ = plan_one(item, observed_like(item, arch="x86_64"))
    assert change.action is Action.REPLACE and change.destroys_data == "its disks"
    change, _ = plan_one(item, observed_like(item, firmware="bios"))
    assert change.action is Action.REPLACE


def test_a_change_outside_decl_is_drift():
    item = desired(LibvirtProvider())
    change, _ = plan_one(item, observed_like(item, cpus=4))
    assert change.origin == "drift" and change.cause.startswith("changed outside decl")


def test_unset_options_are_not_managed():
    item = desired(LibvirtProvider())
    observed = observed_like(item, options={"domain_type": "kvm", "machine": "pc-q35-7.2",
                                            "cpu_model": "qemu64"})
    change, _ = plan_one(item, observed)
    assert change.action is Action.NOOP


def test_bad_options_name_the_option():
    import pytest

    from decl.errors import DeclError

    with pytest.raises(DeclError, match="options.domian_type"):
        desired(LibvirtProvider(), options={"domian_type": "kvm"})
    with pytest.raises(DeclError, match="options.accel"):
        desired(QemuProvider(), options={"accel": "hvf"})
