"""bench/bench_desktop.py on 2 VMs, one run, so that it cannot rot; the process counts it
reports are those of a batched discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_desktop_small(tmp_path):
    out = tmp_path / "desktop.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_desktop.py"),
                           "--vms", "2", "--runs", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["provider"]: row for row in json.loads(out.read_text())["results"]}
    # VBoxManage: --version, list vms, showvminfo per VM (marks read from the settings
    # files), list hdds
    assert rows["virtualbox"]["tool_processes"] == 3 + 2
    # vmrun: the usage text (its version) and one list; the files are read, not run
    assert rows["vmware"]["tool_processes"] == 2
    assert "virtualbox" in done.stdout and "vmware" in done.stdout
