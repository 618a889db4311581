"""A small run of the bench harness (N = 1, one repetition), so that it cannot rot.

decl's part always runs. The peers run when they are there: Debian's docker-compose (CI
installs it), and ansible/pyinfra from bench/.venv-peers (`python3 bench/peers.py`; never
installed by the tests, which use no network). A peer that is not installed is a skip with
the reason on a developer's machine; under DECL_REQUIRE_BACKENDS=1 (CI) the test checks
instead that the harness names it as not measured, and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.peers import find_peers
from bench.report import render
from tests.backends import backends_required, missing_backend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "bench", "run.py")


def docker_missing() -> str | None:
    """Why the harness cannot start its dockerd here, or None."""
    from bench.run import docker_unavailable

    return docker_unavailable()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One run of `bench/run.py` at N = 1 with one repetition; its results document."""
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, RUN, "--sizes", "1", "--repeat", "1", "--no-install", "--quiet",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((out / "results.json").read_text())
    document["_out"] = out
    return document


def results(document, case, tool=None):
    return {(r["tool"], r["phase"]): r for r in document["results"]
            if r["case"] == case and (tool is None or r["tool"] == tool)}


def test_decl_venvs_startup_and_plan_are_measured(smoke):
    venvs = results(smoke, "venvs", "decl")
    assert set(venvs) == {("decl", "create"), ("decl", "noop")}
    for result in venvs.values():
        assert result["n"] == 1 and len(result["samples"]) == 1 and result["median"] > 0
    plans = results(smoke, "plan", "decl")
    assert ("decl", "venvs") in plans
    assert any(phase.startswith("validate") for _, phase in plans)
    assert results(smoke, "startup", "decl")[("decl", "version")]["median"] < 5
    report = (smoke["_out"] / "RESULTS.md").read_text()
    assert "## N venvs, 3 packages each" in report
    assert f"`nproc` = {os.cpu_count()}" in report


def test_decl_containers_are_measured(smoke):
    why = docker_missing()
    if why:
        missing_backend("docker", why)
    containers = results(smoke, "containers", "decl")
    assert set(containers) == {("decl", "create"), ("decl", "noop")}
    assert ("decl", "containers") in results(smoke, "plan", "decl")
    assert ("decl", "venvs+containers") in results(smoke, "plan", "decl")


@pytest.mark.parametrize("peer, case", [("compose", "containers"), ("ansible", "venvs"),
                                        ("ansible", "containers"), ("pyinfra", "venvs")])
def test_installed_peer_is_measured_or_named_as_missing(smoke, peer, case):
    peers = find_peers()
    if case == "containers" and docker_missing():
        missing_backend("docker", docker_missing())
    if peers.has(peer):
        measured = results(smoke, case, peer)
        assert {phase for _, phase in measured} == {"create", "noop"}
        assert all(r["median"] > 0 for r in measured.values())
        assert f"decl / {peer}" in (smoke["_out"] / "RESULTS.md").read_text()
        return
    if not backends_required():
        pytest.skip(f"{peer} not measured: {peers.missing[peer]}")
    assert smoke["skipped"][peer] == peers.missing[peer]
    assert f"- {peer}: {peers.missing[peer]}" in (smoke["_out"] / "RESULTS.md").read_text()


def test_plot_is_drawn_when_matplotlib_is_in_the_bench_venv(smoke):
    if not find_peers().has("matplotlib"):
        if not backends_required():
            pytest.skip("matplotlib is not in bench/.venv-peers (python3 bench/peers.py)")
        assert not (smoke["_out"] / "results.png").exists()
        return
    assert (smoke["_out"] / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def result(case, tool, n, phase, *samples):
    return {"case": case, "tool": tool, "n": n, "phase": phase, "samples": list(samples),
            "median": sorted(samples)[len(samples) // 2], "note": ""}


def test_targets_are_judged_from_the_medians():
    document = {
        "settings": {"repeat": 3, "time_budget": 45, "parallelism": 4},
        "machine": {"cpu": "x", "nproc": 2, "os": "d", "kernel": "k", "memory": "m",
                    "versions": {}},
        "date": "now", "command": "c", "seconds": 1,
        "results": [
            result("venvs", "decl", 10, "noop", 1.0, 1.1, 1.2),
            result("venvs", "ansible", 10, "noop", 8.0, 8.0, 8.0),    # 0.14: met
            result("venvs", "pyinfra", 10, "noop", 1.5, 1.5, 1.5),    # 0.73: missed
            result("venvs", "decl", 10, "create", 10.0),
            result("venvs", "ansible", 10, "create", 40.0),
            result("venvs", "pyinfra", 10, "create", 9.0),            # decl slower: missed
            result("plan", "decl", 1, "venvs", 0.3), result("plan", "decl", 51, "venvs", 0.8),
        ],
    }
    text = render(document)
    assert "| no-op re-run, venvs, N = 10: ≥ 5x faster than Ansible | 0.14 (need ≤ 0.2) " \
           "| **met** |" in text
    assert "| no-op re-run, venvs, N = 10: ≥ 2x faster than pyinfra | 0.73 (need ≤ 0.5) " \
           "| **missed** |" in text
    assert "faster than every peer | ansible 0.25, pyinfra 1.11 (need < 1) | **missed** |" \
        in text
    assert "| `decl plan venvs` | 1N | 0.30 (1 run) | 0.80 (1 run) | 10.0 |" in text
