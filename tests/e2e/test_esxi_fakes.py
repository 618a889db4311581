"""ESXi VMs end to end: the decl CLI over the tests' own sshd, whose sessions find the fake
vim-cmd, vmkfstools and vmware first on PATH (the ESXi host's tools, reached over SSH)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.datacenter.esxi import disk_size
from tests.fakes.datacenter.harness import (
    FakeEsxi,
    actions,
    decl,
    esxi_over_sshd,
    plan,
    write_manifest,
)
from tests.sshd import free_port, sshd_factory  # noqa: F401 - a fixture

GIB = 1024**3


@pytest.fixture
def esxi(tmp_path, sshd_factory):  # noqa: F811
    """(fake ESXi host, its manifest host entry)."""
    fake = FakeEsxi(tmp_path / "esxi")
    return fake, esxi_over_sshd(fake, sshd_factory)


def manifest(tmp_path: Path, host: dict, vms: dict, project: str = "lab") -> str:
    for vm in vms.values():
        vm.setdefault("provider", "esxi")
        vm.setdefault("host", "esx")
    return write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": project,
                                                   "hosts": {"esx": host}, "vms": vms})


def local_env() -> dict:
    """This machine has no ESXi tools: only the SSH side does."""
    return {"DECL_FAKE_ESXI_STATE": "/nonexistent"}


def ok(*args: str):
    done = decl(*args, env=local_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def vmdk_size(fake: FakeEsxi, name: str, file_name: str) -> int | None:
    return disk_size(os.path.join(fake.datastore(), name, file_name))


def test_lifecycle_with_a_name_with_spaces(esxi, tmp_path):
    fake, host = esxi
    wanted = {
        "web": {"cpus": 2, "memory": "2GiB", "disks": [{"size": "4GiB"}],
                "options": {"display_name": "Web Server 1", "port_group": "Lab Net"}},
        "db": {"state": "stopped", "firmware": "uefi", "network": {"mode": "none"},
               "disks": [{"size": "1GiB"}, {"size": "2GiB"}]},
    }
    path = manifest(tmp_path, host, wanted)
    ok("apply", "-y", "-f", path)
    vms = fake.vms()
    web, db = vms["Web Server 1"], vms["db"]
    assert web["power"] == "on" and db["power"] == "off"
    assert web["vmx"].endswith("/Web Server 1/Web Server 1.vmx")
    keys = web["keys"]
    assert (keys["numvcpus"], keys["memsize"], keys["ethernet0.networkname"]) == \
        ("2", "2048", "Lab Net")
    assert (keys["guestinfo.decl.project"], keys["guestinfo.decl.address"]) == \
        ("lab", "vm.web")
    assert db["keys"]["firmware"] == "efi" and "ethernet0.present" not in db["keys"]
    assert vmdk_size(fake, "db", "db_1.vmdk") == 2 * GIB
    assert fake.run("vim-cmd", "vmsvc/getallvms").stdout.count("[datastore1] ") == 2

    # no-op: a constant number of vim-cmd listings, whatever the number of VMs
    fake.clear_calls()
    ok("plan", "--detailed-exitcode", "-f", path)
    calls = [c[1] for c in fake.calls("vim-cmd")]
    assert calls.count("vmsvc/getallvms") == 1 and calls.count("vmsvc/power.getstate") == 2

    # memory and a bigger disk of a running VM: a restart; the .vmx is written powered off
    wanted["web"]["memory"] = "4GiB"
    wanted["web"]["disks"][0]["size"] = "6GiB"
    path = manifest(tmp_path, host, wanted)
    assert actions(plan(path, local_env())) == {"vm.web": "update_restart"}
    fake.clear_calls()
    ok("apply", "-y", "-f", path)
    web = fake.vms()["Web Server 1"]
    assert web["power"] == "on" and web["keys"]["memsize"] == "4096"
    assert vmdk_size(fake, "Web Server 1", "Web Server 1.vmdk") == 6 * GIB
    sent = [" ".join(c[1:2]) for c in fake.calls()]
    assert sent.index("vmsvc/power.off") < sent.index("-X") < sent.index("vmsvc/reload") \
        < sent.index("vmsvc/power.on")
    # no VMware Tools in the guest: the shutdown faulted and decl powered it off at once
    assert "vmsvc/power.shutdown" in sent and "vmsvc/get.guest" in sent
    ok("plan", "--detailed-exitcode", "-f", path)

    # stop, then start
    wanted["web"]["state"] = "stopped"
    path = manifest(tmp_path, host, wanted)
    assert actions(plan(path, local_env())) == {"vm.web": "stop"}
    ok("apply", "-y", "-f", path)
    assert fake.vms()["Web Server 1"]["power"] == "off"
    wanted["web"]["state"] = "running"
    path = manifest(tmp_path, host, wanted)
    assert actions(plan(path, local_env())) == {"vm.web": "start"}
    ok("apply", "-y", "-f", path)
    assert fake.vms()["Web Server 1"]["power"] == "on"

    # destroy removes both VMs and their folders
    ok("destroy", "-y", "-f", path)
    assert fake.vms() == {}
    assert sorted(os.listdir(fake.datastore())) == []


def test_graceful_shutdown_with_tools_and_timeout(esxi, tmp_path):
    fake, host = esxi
    wanted = {"app": {"disks": [{"size": "1GiB"}], "options": {"shutdown_timeout": 1}}}
    path = manifest(tmp_path, host, wanted)
    ok("apply", "-y", "-f", path)
    vmid = fake.vms()["app"]["vmid"]
    # tools run and the guest obeys: no power.off
    fake.edit(lambda d: d["vms"][vmid].__setitem__("tools", "running"))
    wanted["app"]["state"] = "stopped"
    path = manifest(tmp_path, host, wanted)
    fake.clear_calls()
    ok("apply", "-y", "-f", path)
    assert fake.vms()["app"]["power"] == "off"
    assert ["vim-cmd", "vmsvc/power.off", vmid] not in fake.calls()
    # tools run but the guest never goes: power.off after shutdown_timeout
    wanted["app"]["state"] = "running"
    ok("apply", "-y", "-f", manifest(tmp_path, host, wanted))
    fake.edit(lambda d: d["vms"][vmid].__setitem__("tools", "hang"))
    wanted["app"]["state"] = "stopped"
    fake.clear_calls()
    done = ok("apply", "-y", "-f", manifest(tmp_path, host, wanted))
    assert fake.vms()["app"]["power"] == "off"
    assert ["vim-cmd", "vmsvc/power.off", vmid] in fake.calls()
    assert "stopping app hard" in done.stdout, done.stdout


def test_unmarked_vm_is_a_conflict_then_adopted_then_pruned(esxi, tmp_path):
    fake, host = esxi
    fake.add_vm("legacy", power="on")
    before = Path(fake.vms()["legacy"]["vmx"]).read_text()
    wanted = {"legacy": {"disks": [{"size": "1GiB"}], "memory": "1GiB"},
              "keep": {"disks": [{"size": "1GiB"}], "state": "stopped"}}
    path = manifest(tmp_path, host, wanted)
    document = plan(path, local_env())
    assert actions(document)["vm.legacy"] == "conflict"
    done = decl("apply", "-y", "-f", path, env=local_env())
    assert done.returncode != 0
    assert "adopt" in done.stdout + done.stderr
    assert Path(fake.vms()["legacy"]["vmx"]).read_text() == before  # left as it was
    assert fake.vms()["legacy"]["power"] == "on"

    # adopt: a running VM is not powered off just to write the marks: decl says so
    wanted["legacy"]["adopt"] = True
    path = manifest(tmp_path, host, wanted)
    assert actions(plan(path, local_env()))["vm.legacy"] == "adopt"
    refused = decl("apply", "-y", "-f", path, env=local_env())
    assert refused.returncode != 0 and "Nothing was changed" in refused.stdout + \
        refused.stderr
    assert Path(fake.vms()["legacy"]["vmx"]).read_text() == before
    assert fake.vms()["legacy"]["power"] == "on"
    # asked to stop it for the adoption: marked, powered off (keys ESXi added stay)
    wanted["legacy"]["state"] = "stopped"
    path = manifest(tmp_path, host, wanted)
    ok("apply", "-y", "-f", path)
    legacy = fake.vms()["legacy"]
    assert legacy["keys"]["guestinfo.decl.address"] == "vm.legacy"
    assert legacy["power"] == "off" and legacy["keys"]["uuid.bios"]
    wanted["legacy"]["state"] = "running"
    path = manifest(tmp_path, host, wanted)
    assert actions(plan(path, local_env())) == {"vm.legacy": "start"}
    ok("apply", "-y", "-f", path)
    assert fake.vms()["legacy"]["power"] == "on"
    ok("plan", "--detailed-exitcode", "-f", path)

    # the VM leaves the manifest: an orphan, deleted with --prune only
    del wanted["legacy"]
    path = manifest(tmp_path, host, wanted)
    document = plan(path, local_env())
    assert actions(document) == {}
    pruned = decl("plan", "--json", "--prune", "-f", path, env=local_env())
    assert '"action": "delete"' in pruned.stdout
    ok("apply", "-y", "--prune", "-f", path)
    assert "legacy" not in fake.vms() and "keep" in fake.vms()


def test_a_fault_with_exit_code_0_fails_the_change_and_the_next_apply_finishes(esxi,
                                                                               tmp_path):
    fake, host = esxi
    fake.fail("vmsvc/power.on")
    # the fake prints the fault on stdout and exits 0, as vim-cmd does
    probe = FakeEsxi(tmp_path / "probe")
    probe.fail("vmsvc/getallvms")
    shown = probe.run("vim-cmd", "vmsvc/getallvms")
    assert shown.returncode == 0 and shown.stdout.startswith("(vim.fault.")
    wanted = {"web": {"disks": [{"size": "1GiB"}]}}
    path = manifest(tmp_path, host, wanted)
    done = decl("apply", "-y", "-f", path, env=local_env())
    assert done.returncode != 0, done.stdout
    assert "TaskInProgress" in done.stdout + done.stderr
    assert fake.vms()["web"]["power"] == "off"
    assert actions(plan(path, local_env())) == {"vm.web": "start"}
    ok("apply", "-y", "-f", path)
    assert fake.vms()["web"]["power"] == "on"
    ok("plan", "--detailed-exitcode", "-f", path)


def test_an_unreachable_host_fails_only_its_resources(esxi, tmp_path):
    fake, host = esxi
    dead = {**host, "port": free_port(), "connect_timeout": 2}
    document = {"version": 1, "project": "lab", "hosts": {"esx": host, "gone": dead},
                "vms": {"web": {"provider": "esxi", "host": "esx",
                                "disks": [{"size": "1GiB"}]},
                        "far": {"provider": "esxi", "host": "gone",
                                "disks": [{"size": "1GiB"}]}}}
    path = write_manifest(tmp_path / "decl.yaml", document)
    done = decl("apply", "-y", "-f", path, env=local_env())
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "gone" in out and ("unreachable" in out or "refused" in out), out
    assert fake.vms()["web"]["power"] == "on"  # the reachable host's VM was made


def test_invalid_vms_and_other_projects_are_left_alone(esxi, tmp_path):
    fake, host = esxi
    other = fake.add_vm("theirs", keys={"guestinfo.decl.project": "other",
                                        "guestinfo.decl.address": "vm.theirs",
                                        "guestinfo.decl.spec-hash": "x"})
    broken = fake.add_vm("broken")
    os.remove(fake.load()["vms"][broken]["vmx"])  # getallvms: Skipping invalid VM
    wanted = {"mine": {"disks": [{"size": "1GiB"}], "state": "stopped"}}
    path = manifest(tmp_path, host, wanted)
    ok("apply", "-y", "-f", path)
    pruned = decl("apply", "-y", "--prune", "-f", path, env=local_env())
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert other in fake.load()["vms"] and broken in fake.load()["vms"]
    ok("destroy", "-y", "-f", path)
    assert set(fake.load()["vms"]) == {other, broken}


def test_a_no_op_plan_takes_the_same_ssh_round_trips_for_1_or_6_vms(esxi, tmp_path,
                                                                    monkeypatch):
    from bench.bench_esxi import counted_plan

    fake, host = esxi
    monkeypatch.setenv("DECL_FAKE_ESXI_STATE", "/nonexistent")
    counts = []
    for count in (1, 6):
        wanted = {f"vm{i}": {"state": "stopped", "memory": "64MiB",
                             "disks": [{"size": "16MiB"}]} for i in range(count)}
        path = manifest(tmp_path, host, wanted)
        ok("apply", "-y", "-f", path)
        counts.append(counted_plan(path))
    assert counts[0]["exec"] == counts[1]["exec"] == 3, counts
    assert counts[0]["sftp"] == counts[1]["sftp"] == 0, counts


def line_of(path: str, text: str) -> int:
    """The 1-based line of the manifest file that holds `text`."""
    lines = Path(path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_an_absent_vm_renamed_onto_another_is_refused_and_deletes_nothing(esxi, tmp_path):
    """`state: absent` on a resource whose display name is another VM's would delete that
    VM and its folder: validate refuses it at both positions, and nothing is touched."""
    fake, host = esxi
    wanted = {"web": {"disks": [{"size": "1GiB"}]}}
    ok("apply", "-y", "-f", manifest(tmp_path, host, wanted))
    folder = os.path.join(fake.datastore(), "web")
    before = sorted(os.listdir(folder))
    assert "web.vmx" in before
    wanted["old"] = {"state": "absent", "options": {"display_name": "web"}}
    path = manifest(tmp_path, host, wanted)
    web_line = line_of(path, '"web": {')
    for command in ("validate", "apply"):
        done = decl(command, *(["-y"] if command == "apply" else []), "-f", path,
                    env=local_env())
        assert done.returncode == 1, done.stdout + done.stderr
        first = done.stderr.splitlines()[0]
        assert first.startswith(f"error: {path}:{line_of(path, 'display_name')}:"), first
        assert "vm.old on host esx is the same vm as vm.web" in first, first
        assert f"vm.web is at {path}:{web_line}:" in first, first
    assert fake.vms()["web"]["power"] == "on"
    assert sorted(os.listdir(folder)) == before
