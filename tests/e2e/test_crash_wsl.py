"""Kill decl with SIGKILL at random points of an apply of WSL distros (the stateful fake
wsl.exe, with a real tool's start-up latency per call): the next apply converges to exactly
the manifest, a third plan is empty, and no wsl.exe call outlives decl."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backends import missing_backend
from tests.e2e.crash_helpers import CrashStats, kill_apply_after, processes_with_env
from tests.fakes.windows import state as fstate
from tests.fakes.windows.harness import FakeWindows

pytestmark = pytest.mark.crash
STATS = CrashStats()
TARBALL = "C:\\images\\rootfs.tar"
WANTED = {
    "dev": {"source": {"tarball": TARBALL}, "location": "C:\\WSL\\dev", "version": 2,
            "default": True, "user": "alice", "state": "running"},
    "ops": {"source": {"tarball": TARBALL}, "location": "C:\\WSL\\ops", "version": 1,
            "state": "stopped"},
    "ub": {"source": {"distribution": "Ubuntu-24.04"}, "version": 2, "state": "stopped"},
}


def _run(fake: FakeWindows, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True, text=True,
                          timeout=300, env=env)


@settings(max_examples=5, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0.2, max_value=6.0))
def test_kill_during_wsl_apply_then_converge(delay):
    if not os.path.isdir("/proc/self"):
        missing_backend("procfs", "the crash test looks for leftover tools in /proc")
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = pathlib.Path(tmp)
        fake = FakeWindows(root / "windows.json")
        fake.add_file(TARBALL)
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crashwsl", "wsl": WANTED}))
        env = {**fake.env(), "DECL_STATE_DIR": str(root / "state"), "NO_COLOR": "1",
               "DECL_FAKE_WINDOWS_LATENCY": "0.15"}

        STATS.kills += 1
        STATS.delays.append(delay)
        kill_apply_after([sys.executable, "-m", "decl", "apply", "-y", "-f", str(manifest)],
                         env, delay)
        deadline = time.monotonic() + 15
        left = processes_with_env(fstate.ENV, str(fake.path))
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = processes_with_env(fstate.ENV, str(fake.path))
        STATS.leftover_tools += len(left)
        assert left == [], left

        done = _run(fake, env, "apply", "-y", "--json", "-f", str(manifest))
        assert done.returncode == 0, done.stdout + done.stderr + fake.dump()
        changes = json.loads(done.stdout)["plan"]["changes"]
        assert all(c["action"] != "conflict" for c in changes), changes
        STATS.finished_in_flight += sum(1 for c in changes if c.get("in_flight")
                                     and c["action"] != "create")
        STATS.incomplete_finished += sum(1 for c in changes if c.get("origin") == "interrupted"
                                         and not c.get("in_flight"))
        again = _run(fake, env, "plan", "--detailed-exitcode", "-f", str(manifest))
        assert again.returncode == 0, again.stdout + again.stderr
        distros = fake.load()["wsl"]["distros"]
        assert sorted(distros) == sorted(WANTED)
        assert fake.load()["wsl"]["default"] == "dev"
        assert {name: (d["version"], d["state"]) for name, d in distros.items()} == {
            "dev": (2, "Running"), "ops": (1, "Stopped"), "ub": (2, "Stopped")}
        STATS.converged += 1
    print(STATS.line("wsl (fake)"))
