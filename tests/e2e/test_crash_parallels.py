"""Kill decl with SIGKILL at random points of an apply of Parallels VMs (the stateful fake
prlctl, with a real tool's start-up latency per call): no prlctl call outlives decl, the next
apply converges to exactly the manifest with no conflict (a VM that `prlctl create` made but
`prlctl set --description` never marked is decl's: the journal says so), and a third plan is
empty."""

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
@given(delay=st.floats(min_value=0.3, max_value=3.0))
def test_kill_during_parallels_apply_then_converge(delay):
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = Path(tmp)
        fake = FakeMac(root / "mac.json")
        options = {"shutdown_timeout": 1}
        wanted = {
            "web": {"provider": "parallels", "cpus": 2, "memory": "1GiB",
                    "disks": [{"size": "2GiB"}], "options": options},
            "db": {"provider": "parallels", "memory": "512MiB", "state": "stopped",
                   "disks": [{"size": "1GiB"}, {"size": "1GiB"}], "options": options},
            "bare": {"provider": "parallels", "memory": "256MiB",
                     "network": {"mode": "none"}, "options": options},
        }
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crashprl", "vms": wanted}))
        env = {**fake.env(), "DECL_STATE_DIR": str(root / "state"), "NO_COLOR": "1",
               "DECL_FAKE_MAC_LATENCY": "0.1"}

        kill_then_converge(env, str(manifest), delay, STATS, (fstate.ENV, str(fake.path)))

        found = fake.parallels_vms()
        assert sorted(found) == sorted(wanted)
        assert {n: (vm["state"], vm["memsize"],
                    sum(1 for d in vm["devices"] if d.startswith("hdd")))
                for n, vm in found.items()} == {
            "web": ("running", 1024, 1), "db": ("stopped", 512, 2),
            "bare": ("running", 256, 0)}
        STATS.converged += 1
    print(STATS.line("parallels (fake)"))
