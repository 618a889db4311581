"""Kill decl with SIGKILL at random points of an apply of ESXi VMs (the stateful fakes of
vim-cmd and vmkfstools behind the tests' own sshd, with a real tool's start-up latency per
call): no tool call outlives decl, the next apply converges to exactly the manifest with no
conflict (a VM folder a dead create left before registering the VM is made again), and a
third plan is empty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_then_converge
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


def test_folder_a_dead_create_left_is_made_again(tmp_path, sshd_factory):  # noqa: F811
    """Deterministic: an unregistered VM folder holding a disk named for the VM, and a
    journal whose create of it never ended: apply removes the folder and makes the VM.
    Without the journal entry, or with a file in it decl never makes, it is refused."""
    fake = FakeEsxi(tmp_path / "esxi")
    server = sshd_factory(env={"PATH": f"{FAKES_BIN}:/usr/bin:/bin",
                               fesxi.ENV: str(fake.directory)})
    folder = Path(fake.datastore()) / "web"
    folder.mkdir()
    made = fake.run("vmkfstools", "-c", "64M", "-d", "thin", str(folder / "web.vmdk"))
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "halfesx",
                                    "hosts": {"esx": dict(server.manifest_host())},
                                    "vms": {"web": {"provider": "esxi", "host": "esx",
                                                    "memory": "256MiB", "state": "stopped",
                                                    "disks": [{"size": "1GiB"}]}}}))
    state = tmp_path / "state"
    env = {**os.environ, "DECL_STATE_DIR": str(state), "NO_COLOR": "1",
           fesxi.ENV: "/nonexistent"}

    def apply() -> subprocess.CompletedProcess[str]:
        return subprocess.run(decl_argv("apply", "-y", "-f", str(manifest)), env=env,
                              capture_output=True, text=True, timeout=300)

    refused = apply()
    assert refused.returncode != 0 and "already exists" in refused.stdout + refused.stderr

    def dead_apply(run: str) -> None:
        (state / "journal").mkdir(parents=True, exist_ok=True)
        with open(state / "journal" / "halfesx.jsonl", "a") as journal:
            journal.write(json.dumps({"event": "intent", "run": run, "address": "vm.web",
                                      "host": "esx", "action": "create",
                                      "provider": "esxi"}) + "\n")

    dead_apply("dead1")
    (folder / "notes.txt").write_text("the user's")
    kept = apply()
    assert kept.returncode != 0 and (folder / "notes.txt").exists()
    (folder / "notes.txt").unlink()
    dead_apply("dead2")

    done = apply()
    assert done.returncode == 0, done.stdout + done.stderr
    web = fake.vms()["web"]
    assert (web["keys"]["guestinfo.decl.project"], web["power"]) == ("halfesx", "off")
    assert fesxi.disk_size(str(folder / "web.vmdk")) == 1024**3
    again = subprocess.run(decl_argv("plan", "--detailed-exitcode", "-f", str(manifest)),
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
