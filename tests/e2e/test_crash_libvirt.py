"""Kill decl with SIGKILL at random points of an apply of libvirt domains (the real libvirtd,
QEMU TCG): the next apply converges to exactly the manifest and a third plan is empty. The
domain and its marks are defined in one call, so a domain is never half-made; disk files a
dead apply left are made again."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_apply_after, plan_actions
from tests.e2e.vm_helpers import decl, write_manifest
from tests.libvirt_daemon import libvirtd, shared_dir, undefine_all, virsh  # noqa: F401

pytestmark = [pytest.mark.backend("libvirt"), pytest.mark.crash]
STATS = CrashStats()


def test_kill_during_libvirt_apply_then_converge(libvirtd):  # noqa: F811 - the fixture
    @settings(max_examples=5, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(delay=st.floats(min_value=0.2, max_value=6.0))
    def run(delay: float) -> None:
        prefix = f"dc{uuid.uuid4().hex[:6]}"
        pool = shared_dir("decl-crash-")
        try:
            with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
                options = {"domain_type": "qemu", "pool_dir": pool, "shutdown_timeout": 1}
                vms = {f"{prefix}-{n}": {
                    "provider": "libvirt", "memory": "64MiB", "cpus": 1, "state": state,
                    "disks": [{"size": "16MiB"}, {"size": "8MiB"}][:disks],
                    "network": {"mode": "none"}, "options": options}
                    for n, state, disks in (("a", "running", 1), ("b", "stopped", 2),
                                            ("c", "stopped", 1))}
                manifest = write_manifest(os.path.join(tmp, "decl.yaml"), "crashlv", vms)
                env = {**os.environ, "DECL_STATE_DIR": os.path.join(tmp, "state")}
                STATS.kills += 1
                STATS.delays.append(delay)
                kill_apply_after(decl_argv("apply", "-y", "-f", manifest), env, delay)

                done = decl("apply", "-y", "--json", "-f", manifest, env=env)
                assert done.returncode == 0, done.stdout + done.stderr
                actions = plan_actions(done)
                assert all(a["action"] != "conflict" for a in actions), actions
                again = decl("plan", "--detailed-exitcode", "-f", manifest, env=env)
                assert again.returncode == 0, again.stdout + again.stderr
                listed = virsh("list", "--all", "--name").stdout.split()
                assert sorted(n for n in listed if n.startswith(prefix)) == sorted(vms)
                assert virsh("domstate", f"{prefix}-a").stdout.strip() == "running"
                # Exactly the manifest's disks are in the pool.
                assert sorted(f for f in os.listdir(pool) if f.endswith(".qcow2")) == sorted(
                    [f"{prefix}-a-vda.qcow2", f"{prefix}-b-vda.qcow2", f"{prefix}-b-vdb.qcow2",
                     f"{prefix}-c-vda.qcow2"])
                STATS.converged += 1
        finally:
            undefine_all(prefix)
            shutil.rmtree(pool, ignore_errors=True)
        print(STATS.line("libvirt"))

    run()
