"""Kill decl with SIGKILL at random points of an apply of Xen domains (the stateful fake xl
on the local host, with a real tool's start-up latency per call): no xl call outlives decl,
the next apply converges to exactly the manifest with no conflict (disk images a dead create
left before writing the config file, which carries the marks, are made again), and a third
plan is empty."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_then_converge
from tests.fakes.datacenter import xen as fxen
from tests.fakes.datacenter.harness import FakeXen

pytestmark = pytest.mark.crash
STATS = CrashStats()


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0.2, max_value=2.0))  # an apply takes about 2 s here
def test_kill_during_xen_apply_then_converge(delay):
    with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
        root = Path(tmp)
        fake = FakeXen(root / "xen")
        options = {"config_dir": str(root / "etc-xen"), "disk_dir": str(root / "images"),
                   "shutdown_timeout": 1}
        wanted = {
            "web": {"provider": "xen", "cpus": 2, "memory": "1GiB",
                    "disks": [{"size": "1GiB"}], "options": options},
            "db": {"provider": "xen", "memory": "512MiB", "state": "stopped",
                   "disks": [{"size": "1GiB"}, {"size": "1GiB"}], "options": options},
            "bare": {"provider": "xen", "memory": "256MiB", "network": {"mode": "none"},
                     "options": options},
        }
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps({"version": 1, "project": "crashxen", "vms": wanted}))
        env = {**os.environ, **fake.env(), "DECL_STATE_DIR": str(root / "state"), "NO_COLOR": "1",
               "DECL_FAKE_DATACENTER_LATENCY": "0.2"}

        kill_then_converge(env, str(manifest), delay, STATS, (fxen.ENV, str(fake.directory)))

        assert sorted(os.listdir(root / "etc-xen")) == ["bare.cfg", "db.cfg", "web.cfg"]
        domains = fake.domains()
        assert {n: d["memory"] for n, d in domains.items()} == {"web": 1024, "bare": 256}
        # exactly the manifest's disk images: nothing a killed apply made is left behind
        assert sorted(os.listdir(root / "images")) == ["db-xvda.img", "db-xvdb.img",
                                                       "web-xvda.img"]
        STATS.converged += 1
    print(STATS.line("xen (fake)"))


def test_disk_images_a_dead_create_left_are_made_again(tmp_path):
    """Deterministic: a disk image named for a domain, no config file, and a journal whose
    create of it never ended: apply makes the domain (the image is decl's); without the
    journal entry the same image is refused, never overwritten."""
    fake = FakeXen(tmp_path / "xen")
    options = {"config_dir": str(tmp_path / "etc-xen"), "disk_dir": str(tmp_path / "images"),
               "shutdown_timeout": 1}
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "halfxen", "vms": {"web": {
        "provider": "xen", "memory": "256MiB", "state": "stopped",
        "disks": [{"size": "1GiB"}], "options": options}}}))
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "web-xvda.img").write_bytes(b"left by a dead apply")
    state = tmp_path / "state"
    env = {**os.environ, **fake.env(), "DECL_STATE_DIR": str(state), "NO_COLOR": "1"}
    refused = subprocess.run(decl_argv("apply", "-y", "-f", str(manifest)), env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "already exists" in refused.stdout + refused.stderr
    assert (tmp_path / "images" / "web-xvda.img").read_bytes() == b"left by a dead apply"

    (state / "journal").mkdir(parents=True, exist_ok=True)
    with open(state / "journal" / "halfxen.jsonl", "a") as journal:
        journal.write(json.dumps({"event": "intent", "run": "dead", "address": "vm.web",
                                  "host": "local", "action": "create",
                                  "provider": "xen"}) + "\n")
    done = subprocess.run(decl_argv("apply", "-y", "-f", str(manifest)), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.path.getsize(tmp_path / "images" / "web-xvda.img") == 1024**3
    assert "halfxen" in (tmp_path / "etc-xen" / "web.cfg").read_text()
    again = subprocess.run(decl_argv("plan", "--detailed-exitcode", "-f", str(manifest)),
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
