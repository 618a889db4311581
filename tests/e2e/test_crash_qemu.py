"""Kill decl with SIGKILL at random points of an apply of QEMU VMs (real qemu-system, TCG):
the next apply converges to exactly the manifest and a third plan is empty. A VM directory
that a dead apply made but never marked is decl's (the journal says so) and is made again.
The VMs themselves are meant to outlive decl: they run daemonized in sessions of their own."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backends import missing_backend
from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_apply_after, plan_actions
from tests.e2e.vm_helpers import decl, write_manifest

pytestmark = [pytest.mark.backend("qemu"), pytest.mark.crash]
STATS = CrashStats()


def _kill_vms(root: str) -> None:
    for dirpath, _dirs, files in os.walk(root):
        if "qemu.pid" in files:
            try:
                os.kill(int(open(os.path.join(dirpath, "qemu.pid")).read().strip()),
                        signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _running(vmdir: str) -> bool:
    try:
        pid = int(open(os.path.join(vmdir, "qemu.pid")).read().strip())
        return bool(open(f"/proc/{pid}/cmdline", "rb").read())
    except (OSError, ValueError):
        return False


def test_kill_during_qemu_apply_then_converge(tmp_path, monkeypatch):
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            missing_backend("qemu", f"{tool} is not installed")
    monkeypatch.setenv("DECL_CACHE_DIR", str(tmp_path / "cache"))

    @settings(max_examples=5, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(delay=st.floats(min_value=0.1, max_value=1.5))  # an apply takes 1-2 s here
    def run(delay: float) -> None:
        root = tempfile.mkdtemp(prefix="dq-", dir="/tmp")  # short QMP socket paths
        try:
            with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
                options = {"accel": "tcg", "vm_dir": root, "shutdown_timeout": 1}
                vms = {n: {"provider": "qemu", "memory": "64MiB", "cpus": 1, "state": state,
                           "disks": [{"size": "16MiB"}, {"size": "8MiB"}][:disks],
                           "network": {"mode": "none"}, "options": options}
                       for n, state, disks in (("a", "running", 1), ("b", "stopped", 2),
                                               ("c", "running", 1))}
                manifest = write_manifest(os.path.join(tmp, "decl.yaml"), "crashq", vms)
                env = {**os.environ, "DECL_STATE_DIR": os.path.join(tmp, "state")}
                STATS.kills += 1
                STATS.delays.append(delay)
                kill_apply_after(decl_argv("apply", "-y", "-f", manifest), env, delay)

                done = decl("apply", "-y", "--json", "-f", manifest, env=env)
                assert done.returncode == 0, done.stdout + done.stderr
                actions = plan_actions(done)
                assert all(a["action"] != "conflict" for a in actions), actions
                STATS.finished_in_flight += sum(1 for a in actions if a["in_flight"]
                                                and a["action"] != "create")
                again = decl("plan", "--detailed-exitcode", "-f", manifest, env=env)
                assert again.returncode == 0, again.stdout + again.stderr
                project_dir = os.path.join(root, "crashq")
                assert sorted(os.listdir(project_dir)) == ["a", "b", "c"]
                assert [_running(os.path.join(project_dir, n)) for n in "abc"] == \
                    [True, False, True]
                assert sorted(f for f in os.listdir(os.path.join(project_dir, "b"))
                              if f.endswith(".qcow2")) == ["disk-vda.qcow2", "disk-vdb.qcow2"]
                STATS.converged += 1
        finally:
            _kill_vms(root)
            shutil.rmtree(root, ignore_errors=True)
        print(STATS.line("qemu"))

    run()


def test_half_made_vm_directory_from_a_dead_apply_is_made_again(tmp_path, monkeypatch):
    """Deterministic: a VM directory with a disk and no decl.json, and a journal whose create
    of it never ended. The plan says replace (decl's own half-made VM), not conflict; apply
    makes it again; without the journal entry the same directory is a conflict."""
    if shutil.which("qemu-img") is None:
        missing_backend("qemu", "qemu-img is not installed")
    import json
    import subprocess

    monkeypatch.setenv("DECL_CACHE_DIR", str(tmp_path / "cache"))
    root = tempfile.mkdtemp(prefix="dq-", dir="/tmp")
    try:
        vmdir = os.path.join(root, "halfq", "web")
        os.makedirs(vmdir)
        subprocess.run(["qemu-img", "create", "-f", "qcow2", os.path.join(vmdir,
                        "disk-vda.qcow2"), "16M"], check=True, capture_output=True)
        manifest = write_manifest(str(tmp_path / "decl.yaml"), "halfq", {"web": {
            "provider": "qemu", "memory": "64MiB", "cpus": 1, "state": "stopped",
            "disks": [{"size": "16MiB"}], "network": {"mode": "none"},
            "options": {"accel": "tcg", "vm_dir": root}}})
        state = tmp_path / "state"
        env = {**os.environ, "DECL_STATE_DIR": str(state)}
        plan = json.loads(decl("plan", "--json", "-f", manifest, env=env).stdout)
        assert [c["action"] for c in plan["changes"]] == ["conflict"]

        (state / "journal").mkdir(parents=True)
        (state / "journal" / "halfq.jsonl").write_text(json.dumps(
            {"event": "intent", "run": "dead", "address": "vm.web", "host": "local",
             "action": "create", "provider": "qemu"}) + "\n")
        plan = json.loads(decl("plan", "--json", "-f", manifest, env=env).stdout)
        [change] = plan["changes"]
        assert (change["action"], change["in_flight"]) == ("replace", True)
        assert "decl was making it when an earlier apply stopped" in change["cause"]
        done = decl("apply", "-y", "-f", manifest, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.load(open(os.path.join(vmdir, "decl.json")))["project"] == "halfq"
        assert decl("plan", "--detailed-exitcode", "-f", manifest, env=env).returncode == 0
    finally:
        _kill_vms(root)
        shutil.rmtree(root, ignore_errors=True)
