"""Kill decl with SIGKILL at random points of an apply of venvs; the next apply converges to
exactly the manifest, a third plan is empty, and no tool outlives decl."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backends import missing_backend
from tests.e2e.crash_helpers import (
    CrashStats,
    decl_argv,
    kill_apply_after,
    plan_actions,
    wait_for_no_tools,
)
from tests.e2e.venv_helpers import CLEAN_PIP_ENV, decl, installed
from tests.wheelhouse import standard_wheelhouse

pytestmark = pytest.mark.crash
STATS = CrashStats()
PACKAGES = {"one": ["alpha==1.0"], "two": ["beta"], "three": ["alpha==2.0", "delta"]}
EXPECTED = {"one": {"alpha": "1.0"}, "two": {"beta": "1.0", "gamma": "1.0"},
            "three": {"alpha": "2.0", "delta": "1.0"}}


def _env(state: pathlib.Path) -> dict[str, str]:
    env = {**os.environ, **CLEAN_PIP_ENV, "DECL_STATE_DIR": str(state), "NO_COLOR": "1"}
    return {k: v for k, v in env.items() if v != "" or not k.startswith(("PIP_", "UV_"))}


@settings(max_examples=5, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0.3, max_value=9.0))
def test_kill_during_venv_apply_then_converge(delay):
    if not os.path.isdir("/proc/self"):
        missing_backend("procfs", "the crash test looks for leftover tools in /proc")
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = pathlib.Path(tmp)
        wheels = standard_wheelhouse(root / "wheels")
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crash", "venvs": {
            # "two" has no pip of its own (fast to make, installed into by uv or the host's
            # pip), so kills also land while packages go in, after the marks are written.
            name: {"path": str(root / name), "backend": "venv", "pip": name != "two",
                   "packages": packages, "find_links": [str(wheels)], "no_index": True}
            for name, packages in PACKAGES.items()}}))
        env = _env(root / "state")

        STATS.kills += 1
        STATS.delays.append(delay)
        kill_apply_after(decl_argv("apply", "-y", "-f", str(manifest)), env, delay)
        # No tool decl started may go on writing after decl died.
        left = wait_for_no_tools(tmp)
        STATS.leftover_tools += len(left)
        assert left == [], left

        done = decl("apply", "-y", "--json", "-f", str(manifest), env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        actions = plan_actions(done)
        assert all(a["action"] != "conflict" for a in actions), actions
        STATS.finished_in_flight += sum(1 for a in actions if a["in_flight"]
                                     and a["action"] != "create")
        STATS.incomplete_finished += sum(1 for a in actions if a["origin"] == "interrupted"
                                         and not a["in_flight"])

        again = decl("plan", "--detailed-exitcode", "-f", str(manifest), env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes." in again.stdout
        for name, packages in EXPECTED.items():
            have = installed(str(root / name))
            for seed in ("pip", "setuptools", "wheel"):
                have.pop(seed, None)
            assert have == packages, (name, have)
            marks = json.loads((root / name / "decl.json").read_text())
            assert marks["state"] == "complete" and marks["project"] == "crash"
        STATS.converged += 1
    print(STATS.line("venv"))


def test_ctrl_c_on_the_terminal_reaches_decl_only(tmp_path):
    """The terminal sends SIGINT to its whole foreground process group: decl's tools (and its
    watchdog) are in sessions of their own, so the running change still finishes whole."""
    import signal
    import subprocess
    import time

    wheels = standard_wheelhouse(tmp_path / "wheels")
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "ctrlc", "venvs": {
        f"v{i}": {"path": str(tmp_path / f"v{i}"), "backend": "venv", "pip": True,
                  "packages": ["alpha==1.0"], "find_links": [str(wheels)], "no_index": True}
        for i in range(3)}}))
    env = _env(tmp_path / "state")
    proc = subprocess.Popen(decl_argv("apply", "-y", "--parallelism", "1", "-f", str(manifest)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # a stand-in for the terminal's group
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("venv.v0: create..."):
            break
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
    rest, err = proc.communicate(timeout=180)
    output = "".join(lines) + rest
    assert "stopping: letting running changes finish" in output, output + err
    assert "Apply: 1 done, 0 failed, 2 skipped." in output, output + err
    marks = json.loads((tmp_path / "v0" / "decl.json").read_text())
    assert marks["state"] == "complete"
    assert installed(str(tmp_path / "v0"))["alpha"] == "1.0"
    assert wait_for_no_tools(str(tmp_path)) == []
