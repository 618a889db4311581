"""Kill decl with SIGKILL at random points of an apply of VMware VMs (the stateful fakes of
vmrun and vmware-vdiskmanager, with a real tool's start-up latency per call): no tool call
outlives decl, the next apply converges to exactly the manifest with no conflict (disks a
dead create left before writing the .vmx, which carries the marks, are made again), and a
third plan is empty."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decl.providers.vmware.output import vmdk_capacity
from decl.providers.vmware.vmx import VmxDocument
from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_then_converge
from tests.fakes.desktop import state as fstate
from tests.fakes.desktop.harness import FakeDesktop

pytestmark = pytest.mark.crash
STATS = CrashStats()


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0.3, max_value=3.0))
def test_kill_during_vmware_apply_then_converge(delay):
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = Path(tmp)
        fake = FakeDesktop(root / "desktop")
        vm_dir = root / "vms"
        options = {"vm_dir": str(vm_dir), "shutdown_timeout": 1}
        wanted = {
            "web": {"provider": "vmware", "cpus": 2, "memory": "1GiB",
                    "disks": [{"size": "2GiB"}], "options": options},
            "db": {"provider": "vmware", "memory": "512MiB", "state": "stopped",
                   "disks": [{"size": "1GiB"}, {"size": "1GiB"}], "options": options},
            "bare": {"provider": "vmware", "memory": "256MiB", "network": {"mode": "none"},
                     "options": options},
        }
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crashvm", "vms": wanted}))
        env = fake.env(DECL_STATE_DIR=str(root / "state"), HOME=str(root / "home"),
                       NO_COLOR="1", DECL_FAKE_DESKTOP_LATENCY="0.1")

        kill_then_converge(env, str(manifest), delay, STATS, (fstate.ENV, str(fake.path)))

        assert sorted(os.listdir(vm_dir)) == sorted(wanted)
        running = {os.path.basename(os.path.dirname(p)) for p in fake.load()["vmware"]["running"]}
        assert running == {"web", "bare"}
        for name, disks in (("web", 1), ("db", 2), ("bare", 0)):
            doc = VmxDocument((vm_dir / name / f"{name}.vmx").read_text())
            assert (doc.get("decl.project"), doc.get("memsize")) == (
                "crashvm", {"web": "1024", "db": "512", "bare": "256"}[name])
            # exactly the manifest's disks: nothing a killed apply made is left beside them
            assert sorted(f for f in os.listdir(vm_dir / name)
                          if f.endswith(".vmdk") and "-s0" not in f) == \
                [f"{name}-vd{d}.vmdk" for d in "ab"[:disks]]
        STATS.converged += 1
    print(STATS.line("vmware (fake)"))


def test_disks_a_dead_create_left_are_made_again(tmp_path):
    """Deterministic: a VM folder with a disk named for the VM and no .vmx, and a journal
    whose create of it never ended: apply makes the VM (the disk is decl's leftover);
    without the journal entry the same disk is refused, never overwritten."""
    fake = FakeDesktop(tmp_path / "desktop")
    vm_dir = tmp_path / "vms"
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "halfvm", "vms": {"web": {
        "provider": "vmware", "memory": "256MiB", "state": "stopped",
        "disks": [{"size": "1GiB"}], "options": {"vm_dir": str(vm_dir)}}}}))
    state = tmp_path / "state"
    env = fake.env(DECL_STATE_DIR=str(state), HOME=str(tmp_path / "home"), NO_COLOR="1")
    (vm_dir / "web").mkdir(parents=True)
    made = subprocess.run(["vmware-vdiskmanager", "-c", "-s", "64MB", "-a", "lsilogic",
                           "-t", "0", str(vm_dir / "web" / "web-vda.vmdk")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stdout + made.stderr
    refused = subprocess.run(decl_argv("apply", "-y", "-f", str(manifest)), env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert not (vm_dir / "web" / "web.vmx").exists()

    (state / "journal").mkdir(parents=True, exist_ok=True)
    with open(state / "journal" / "halfvm.jsonl", "a") as journal:
        journal.write(json.dumps({"event": "intent", "run": "dead", "address": "vm.web",
                                  "host": "local", "action": "create",
                                  "provider": "vmware"}) + "\n")
    done = subprocess.run(decl_argv("apply", "-y", "-f", str(manifest)), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    head = (vm_dir / "web" / "web-vda.vmdk").read_bytes()[:4096]
    assert vmdk_capacity(head) == 1024**3
    assert VmxDocument((vm_dir / "web" / "web.vmx").read_text()).get("decl.project") == \
        "halfvm"
    again = subprocess.run(decl_argv("plan", "--detailed-exitcode", "-f", str(manifest)),
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
