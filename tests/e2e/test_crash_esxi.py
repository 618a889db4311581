"""Kill decl with SIGKILL at random points of an apply of ESXi VMs (the stateful fakes of
vim-cmd and vmkfstools behind the tests' own sshd, with a real tool's start-up latency per
call): no tool call outlives decl, the next apply converges to exactly the manifest with no
conflict (a VM folder a dead create left before registering the VM is made again), and a
third plan is empty."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, kill_then_converge
from tests.fakes.datacenter import esxi as fesxi
from tests.fakes.datacenter.harness import FAKES_BIN, FakeEsxi
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.crash
STATS = CrashStats()


def test_kill_during_esxi_apply_then_converge(tmp_path, sshd_factory):  # noqa: F811
    directory = tmp_path / "esxi"
    server = sshd_factory(env={"PATH": f"{FAKES_BIN}:/usr/bin:/bin",
                               fesxi.ENV: str(directory),
                               "DECL_FAKE_DATACENTER_LATENCY": "0.1"})
    host = dict(server.manifest_host())

    @settings(max_examples=4, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(delay=st.floats(min_value=0.5, max_value=4.0))
    def run(delay: float) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        fake = FakeEsxi(directory)
        datastore = Path(fake.datastore())
        with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
            root = Path(tmp)
            wanted = {
                "web": {"cpus": 2, "memory": "1GiB", "disks": [{"size": "1GiB"}]},
                "db": {"memory": "512MiB", "state": "stopped",
                       "disks": [{"size": "1GiB"}, {"size": "1GiB"}]},
                "bare": {"memory": "256MiB", "network": {"mode": "none"}},
            }
            for vm in wanted.values():
                vm.update(provider="esxi", host="esx", options={"shutdown_timeout": 1})
            manifest = root / "decl.yaml"
            manifest.write_text(json.dumps({"version": 1, "project": "crashesx",
                                            "hosts": {"esx": host}, "vms": wanted}))
            env = {**os.environ, "DECL_STATE_DIR": str(root / "state"), "NO_COLOR": "1",
                   fesxi.ENV: "/nonexistent"}

            kill_then_converge(env, str(manifest), delay, STATS, (fesxi.ENV, str(directory)))

            found = fake.vms()
            assert sorted(found) == sorted(wanted)
            assert {n: (vm["power"], vm["keys"]["memsize"], vm["keys"]["guestinfo.decl.project"])
                    for n, vm in found.items()} == {
                "web": ("on", "1024", "crashesx"), "db": ("off", "512", "crashesx"),
                "bare": ("on", "256", "crashesx")}
            # exactly the manifest's VM folders and disks: nothing a killed apply left
            assert sorted(p.name for p in datastore.iterdir()) == ["bare", "db", "web"]
            assert sorted(f for f in os.listdir(datastore / "db") if f.endswith(".vmdk")
                          and "-flat" not in f) == ["db.vmdk", "db_1.vmdk"]
            STATS.converged += 1
        print(STATS.line("esxi (fake, over sshd)"))

    run()
