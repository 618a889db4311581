"""Kill decl with SIGKILL at random points of an apply of VirtualBox VMs (the stateful fake
VBoxManage, with a real tool's start-up latency per call): no VBoxManage call outlives decl,
the next apply converges to exactly the manifest with no conflict (a VM that `createvm` made
but `setextradata` never marked is decl's: the journal says so), and a third plan is empty."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, kill_then_converge
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
