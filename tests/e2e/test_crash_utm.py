"""Kill decl with SIGKILL at random points of an apply of UTM VMs (the stateful fakes of
osascript and utmctl, with a real tool's start-up latency per call): no tool call outlives
decl, the next apply converges to exactly the manifest with no conflict, and a third plan is
empty. UTM makes a VM with its marks in one call, so it never exists unmarked."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, kill_then_converge
from tests.fakes.mac import state as fstate
from tests.fakes.mac.harness import FakeMac

pytestmark = pytest.mark.crash
STATS = CrashStats()


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0.3, max_value=2.5))
def test_kill_during_utm_apply_then_converge(delay):
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = Path(tmp)
        fake = FakeMac(root / "mac.json")
        options = {"shutdown_timeout": 1}
        wanted = {
            "web": {"provider": "utm", "cpus": 2, "memory": "1GiB",
                    "disks": [{"size": "2GiB"}], "options": options},
            "db": {"provider": "utm", "memory": "512MiB", "state": "stopped",
                   "disks": [{"size": "1GiB"}, {"size": "1GiB"}], "options": options},
            "bare": {"provider": "utm", "memory": "256MiB", "network": {"mode": "none"},
                     "options": options},
        }
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crashutm", "vms": wanted}))
        env = {**fake.env(), "DECL_STATE_DIR": str(root / "state"), "NO_COLOR": "1",
               "DECL_FAKE_MAC_LATENCY": "0.1"}

        kill_then_converge(env, str(manifest), delay, STATS, (fstate.ENV, str(fake.path)))

        found = fake.utm_vms()
        assert sorted(found) == sorted(wanted)
        assert {n: (vm["status"], vm["config"]["memory"], len(vm["config"]["drives"]))
                for n, vm in found.items()} == {
            "web": ("started", 1024, 1), "db": ("stopped", 512, 2),
            "bare": ("started", 256, 0)}
        STATS.converged += 1
    print(STATS.line("utm (fake)"))
