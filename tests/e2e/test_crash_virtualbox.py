"""Kill decl with SIGKILL at random points of an apply of VirtualBox VMs (the stateful fake
VBoxManage, with a real tool's start-up latency per call): no VBoxManage call outlives decl,
the next apply converges to exactly the manifest with no conflict (a VM that `createvm` made
but `setextradata` never marked is decl's: the journal says so), and a third plan is empty."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_then_converge, plan_actions
from tests.fakes.desktop import state as fstate
from tests.fakes.desktop.harness import FakeDesktop

pytestmark = pytest.mark.crash
STATS = CrashStats()


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0.3, max_value=4.0))
def test_kill_during_virtualbox_apply_then_converge(delay):
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = Path(tmp)
        fake = FakeDesktop(root / "desktop")
        options = {"vm_dir": str(root / "vms"), "shutdown_timeout": 1}
        wanted = {
            "web": {"provider": "virtualbox", "cpus": 2, "memory": "1GiB",
                    "disks": [{"size": "2GiB"}], "options": options},
            "db": {"provider": "virtualbox", "memory": "512MiB", "state": "stopped",
                   "disks": [{"size": "1GiB"}, {"size": "1GiB"}], "options": options},
            "bare": {"provider": "virtualbox", "memory": "256MiB",
                     "network": {"mode": "none"}, "options": options},
        }
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crashvb", "vms": wanted}))
        env = fake.env(DECL_STATE_DIR=str(root / "state"), HOME=str(root / "home"),
                       NO_COLOR="1", DECL_FAKE_DESKTOP_LATENCY="0.1")

        kill_then_converge(env, str(manifest), delay, STATS, (fstate.ENV, str(fake.path)))

        vbox = fake.load()["virtualbox"]
        found = {vm["name"]: vm for vm in vbox["vms"]}
        assert sorted(found) == sorted(wanted)
        assert {n: (vm["state"], vm["memory"], sum(1 for s in vm["attachments"].values()
                                                   if s["type"] == "hdd"))
                for n, vm in found.items()} == {
            "web": ("running", 1024, 1), "db": ("poweroff", 512, 2),
            "bare": ("running", 256, 0)}
        # Exactly the manifest's disks are registered: nothing a killed apply made is left.
        attached = {s["medium"] for vm in found.values() for s in vm["attachments"].values()
                    if s["type"] == "hdd"}
        assert {u for u, m in vbox["media"].items() if m.get("kind", "hdd") == "hdd"} == \
            attached
        STATS.converged += 1
    print(STATS.line("virtualbox (fake)"))


def test_disk_a_dead_create_left_is_made_again(tmp_path):
    """Deterministic: a registered disk at the path decl names for a VM's first disk (what a
    create killed after `createmedium` leaves once the VM is deleted). A plain create fails
    on it and leaves it alone; the next apply (the journal says decl was making the VM, whose
    marked remains it replaces) deletes it with closemedium and makes the VM."""
    fake = FakeDesktop(tmp_path / "desktop")
    vm_dir = tmp_path / "vms"
    disk = vm_dir / "web" / "web-vda.vdi"
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "halfvb", "vms": {"web": {
        "provider": "virtualbox", "memory": "256MiB", "state": "stopped",
        "disks": [{"size": "1GiB"}], "options": {"vm_dir": str(vm_dir)}}}}))
    state = tmp_path / "state"
    env = fake.env(DECL_STATE_DIR=str(state), HOME=str(tmp_path / "home"), NO_COLOR="1")
    disk.parent.mkdir(parents=True)
    made = fake.run("VBoxManage", "createmedium", "disk", "--filename", str(disk),
                    "--size", "64")
    assert made.returncode == 0, made.stdout + made.stderr

    def apply() -> subprocess.CompletedProcess[str]:
        return subprocess.run(decl_argv("apply", "-y", "-f", str(manifest)), env=env,
                              capture_output=True, text=True, timeout=300)

    refused = apply()
    assert refused.returncode != 0 and "VERR_ALREADY_EXISTS" in refused.stdout
    assert [m["size"] for m in fake.load()["virtualbox"]["media"].values()
            if m["path"] == str(disk)] == [64 * 1024**2]
    (state / "journal").mkdir(parents=True, exist_ok=True)
    with open(state / "journal" / "halfvb.jsonl", "a") as journal:
        journal.write(json.dumps({"event": "intent", "run": "dead", "address": "vm.web",
                                  "host": "local", "action": "create",
                                  "provider": "virtualbox"}) + "\n")
    done = apply()
    assert done.returncode == 0, done.stdout + done.stderr
    vbox = fake.load()["virtualbox"]
    [web] = vbox["vms"]
    [medium] = [m for m in vbox["media"].values() if m["path"] == str(disk)]
    assert (web["extradata"]["decl/project"], medium["size"]) == ("halfvb", 1024**3)
    again = subprocess.run(decl_argv("plan", "--detailed-exitcode", "-f", str(manifest)),
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr


def test_marks_in_the_settings_file_are_the_marks_the_delete_checks(tmp_path):
    """Deterministic: a VBoxManage killed inside `setextradata` (after it wrote the VM's
    settings file, before its registry was saved) leaves the file carrying both marks while
    `getextradata` lacks the address. The plan reads marks from the settings file and plans a
    replace of a VM of this project; the check before the delete must read the same source,
    or it refuses the very VM the plan showed as decl's."""
    fake = FakeDesktop(tmp_path / "desktop")
    options = {"vm_dir": str(tmp_path / "vms")}
    manifest = tmp_path / "decl.yaml"

    def write(disks: list[dict[str, str]]) -> None:
        manifest.write_text(json.dumps({"version": 1, "project": "splitvb", "vms": {"db": {
            "provider": "virtualbox", "memory": "256MiB", "state": "stopped",
            "disks": disks, "options": options}}}))

    env = fake.env(DECL_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path / "home"),
                   NO_COLOR="1")

    def decl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(decl_argv(*args, "-f", str(manifest)), env=env,
                              capture_output=True, text=True, timeout=300)

    write([])
    made = decl("apply", "-y")
    assert made.returncode == 0, made.stdout + made.stderr

    def drop_address(data: dict) -> None:
        [vm] = data["virtualbox"]["vms"]
        del vm["extradata"]["decl/address"]

    fake.edit(drop_address)
    [vm] = fake.load()["virtualbox"]["vms"]
    assert "decl/address" in Path(vm["cfgfile"]).read_text()
    assert "decl/address" not in fake.run("VBoxManage", "getextradata", "db",
                                          "enumerate").stdout

    write([{"size": "1GiB"}])  # a first disk forces a replacement
    done = decl("apply", "-y", "--json")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert [c["action"] for c in plan_actions(done)] == ["replace"]
    [vm] = fake.load()["virtualbox"]["vms"]
    assert vm["extradata"]["decl/project"] == "splitvb"
    assert sum(1 for s in vm["attachments"].values() if s["type"] == "hdd") == 1
    again = decl("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
