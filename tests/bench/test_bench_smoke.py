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
from tests.backends import missing_backend, skip_unless_required

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
         "--stability-runs", "2", "--out", str(out)],
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
    serial = results(smoke, "venvs", "decl-p1")
    assert set(serial) == {("decl-p1", "create"), ("decl-p1", "noop")}
    by_hand = results(smoke, "venvs", "by-hand")
    assert {phase for _, phase in by_hand} == {"create", "noop"}
    plans = results(smoke, "plan", "decl")
    assert ("decl", "venvs") in plans
    assert any(phase.startswith("validate") for _, phase in plans)
    assert results(smoke, "startup", "decl")[("decl", "version")]["median"] < 5
    assert ("decl", "validate20") in results(smoke, "startup", "decl")
    assert ("python", "pass") in results(smoke, "startup", "python")
    report = (smoke["_out"] / "RESULTS.md").read_text()
    assert "## N venvs, 3 packages each" in report
    assert "| decl-p1 | serial: `--parallelism 1` |" in report
    assert "## Where decl is not ahead" in report
    assert f"`nproc` = {os.cpu_count()}" in report


def test_large_manifests_are_parsed(smoke):
    parse = results(smoke, "parse", "decl")
    assert set(parse) == {("decl", "validate plain"), ("decl", "validate templated")}
    for result in parse.values():
        assert result["n"] == 1 and result["note"].startswith(("1.0", "1.1"))
    assert "## Parse time of large manifests" in (smoke["_out"] / "RESULTS.md").read_text()


def test_fleet_is_measured_or_named_as_missing(smoke):
    from bench.cases.fleet import unavailable

    why = unavailable()
    if why:
        missing_backend("sshd", why)
    fleet = results(smoke, "fleet", "decl")
    assert {phase for _, phase in fleet} == {"create", "noop plan", "noop apply"}
    for peer in ("ansible", "pyinfra"):
        names = {tool for tool, _ in results(smoke, "fleet")}
        if find_peers().has(peer):
            assert any(name.startswith(peer) for name in names), names


def test_decl_containers_are_measured(smoke):
    why = docker_missing()
    if why:
        missing_backend("docker", why)
    containers = results(smoke, "containers", "decl")
    assert set(containers) == {("decl", "create"), ("decl", "noop")}
    serial = results(smoke, "containers", "decl-p1")
    assert set(serial) == {("decl-p1", "create"), ("decl-p1", "noop"), ("decl-p1", "noop x2")}
    assert serial[("decl-p1", "noop x2")]["note"].startswith("exit codes: ")
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
    skip_unless_required(f"{peer} not measured: {peers.missing[peer]}")
    assert smoke["skipped"][peer] == peers.missing[peer]
    assert f"- {peer}: {peers.missing[peer]}" in (smoke["_out"] / "RESULTS.md").read_text()


def test_plot_is_drawn_when_matplotlib_is_in_the_bench_venv(smoke):
    if not find_peers().has("matplotlib"):
        skip_unless_required("matplotlib is not in bench/.venv-peers (python3 bench/peers.py)")
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
    document["results"] += [
        result("venvs", "decl-p1", 10, "create", 7.5),                # <= 8 s: met
        result("venvs", "decl-uv", 10, "create", 1.2),                # not < 1 s: missed
        result("startup", "python", 1, "pass", 0.02),
        result("startup", "decl", 1, "validate20", 0.15),             # 7.5x: met
        result("startup", "decl", 1, "version", 0.09),                # 4.5x: missed
        result("containers", "decl", 20, "create", 3.0),
        result("containers", "decl-p1", 20, "create", 4.5),
        result("containers", "compose", 20, "create", 4.0),           # 0.75 met, 1.12 missed
        {**result("containers", "decl-p1", 20, "noop x200", *[0.5] * 200),
         "note": "exit codes: -6 x1, 0 x199"},                        # one abort: missed
        result("fleet", "decl", 100, "noop plan", 2.0),
        result("fleet", "ansible-f20", 100, "noop plan", 30.0),       # 0.07: met
    ]
    text = render(document)
    assert "| no-op re-run, venvs, N = 10: ≥ 5x faster than Ansible | 1.10 / 8.00 = 0.14 " \
           "(need ≤ 0.2) | **met** |" in text
    assert "| no-op re-run, venvs, N = 10: ≥ 2x faster than pyinfra | 1.10 / 1.50 = 0.73 " \
           "(need ≤ 0.5) | **missed** |" in text
    assert "| create 10 venvs x 3 packages with pip, `--parallelism 1` | 7.50 s (need ≤ 8 s) " \
           "| **met** |" in text
    assert "| create 10 venvs x 3 packages with pip, default parallelism | 10.00 s " \
           "(need ≤ 5 s) | **missed** |" in text
    assert "| create 10 venvs x 3 packages, `backend: uv` | 1.20 s (need < 1 s) " \
           "| **missed** |" in text
    assert "| `decl validate` of 20 resources / `python -c pass` | 0.15 / 0.02 = 7.50 " \
           "(need ≤ 8) | **met** |" in text
    assert "| `decl --version` / `python -c pass` | 0.09 / 0.02 = 4.50 (need < 4) " \
           "| **missed** |" in text
    assert "| create 20 containers, default parallelism / Compose | 3.00 / 4.00 = 0.75 " \
           "(need ≤ 0.8) | **met** |" in text
    assert "| create 20 containers, `--parallelism 1` / Compose | 4.50 / 4.00 = 1.12 " \
           "(need ≤ 1) | **missed** |" in text
    assert "200 runs: every exit 0 (never 134) | exit codes: -6 x1, 0 x199 | **missed** |" \
        in text
    assert "| no-op plan, 100 hosts x 3 venvs / Ansible 20 forks `--check` | 2.00 / 30.00 = " \
           "0.07 (need ≤ 0.1) | **met** |" in text
    # every row where decl is behind is named, at both parallelisms
    behind = text.split("## Where decl is not ahead", 1)[1].split("##", 1)[0]
    assert "- venvs, N = 10, create: decl 10.00 s, pyinfra 9.00 s (1.11x)" in behind
    assert "- containers, N = 20, create: decl-p1 4.50 s, compose 4.00 s (1.12x)" in behind
    assert "ansible" not in behind
    assert "| `decl plan venvs` | 1N | 0.30 (1 run) | 0.80 (1 run) | 10.0 |" in text
