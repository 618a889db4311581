"""The bench harness inside a virtualenv: it runs decl with the venv's interpreter.

Before, bench/cases/common.py took `realpath(sys.executable)`, which inside a venv is the
base interpreter: a venv that held decl and its dependencies left them behind, and the
smoke run failed with "No module named decl". Here a venv with the system's site-packages
(so that no network is needed) runs the harness on N = 1, and must report its own
interpreter as the one decl ran on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.bench.test_bench_smoke import ROOT, RUN


def test_harness_runs_decl_with_the_venvs_python(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    python = venv / "bin" / "python"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(python), RUN, "--cases", "startup,venvs", "--sizes", "1", "--repeat", "1",
         "--skip-peers", "--quiet", "--stability-runs", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((out / "results.json").read_text())
    assert document["machine"]["versions"]["python"].endswith(f"({python})")
    tools = {(r["case"], r["tool"], r["phase"]) for r in document["results"]}
    assert {("venvs", "decl", "create"), ("venvs", "decl-p1", "create"),
            ("startup", "decl", "validate20")} <= tools
