"""Engine behaviour a user sees, through the real venv provider: lock, failures, plan files,
secrets, orphans, targets."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from tests.e2e.test_host_lock import SLOW_PYTHON
from tests.e2e.venv_helpers import CLEAN_PIP_ENV, decl, plan_json
from tests.wheelhouse import standard_wheelhouse


@pytest.fixture
def wheels(tmp_path: pathlib.Path) -> pathlib.Path:
    return standard_wheelhouse(tmp_path / "wheels")


def manifest_text(venvs: dict, project: str = "enginetest") -> str:
    return json.dumps({"version": 1, "project": project, "venvs": venvs}, indent=1)


def bare(path: pathlib.Path, wheels: pathlib.Path, packages: list[str], **extra) -> dict:
    return {"path": str(path), "packages": packages, "find_links": [str(wheels)],
            "no_index": True, "backend": "venv", "pip": False, **extra}


def test_second_apply_fails_fast_naming_the_first(tmp_path, wheels):
    manifest = tmp_path / "decl.yaml"
    # A venv is made in a fraction of a second now: a Python that takes its time on
    # `-m venv` keeps the first apply running long enough to overlap (as in test_host_lock).
    slow_python = tmp_path / "slowpython"
    slow_python.write_text(SLOW_PYTHON)
    slow_python.chmod(0o755)
    manifest.write_text(manifest_text({"slow": {
        "path": str(tmp_path / "slow"), "python": str(slow_python), "backend": "venv",
        "pip": False, "lifecycle": {"ignore_changes": ["python"]}}}))
    env = {**os.environ, **CLEAN_PIP_ENV}
    first = subprocess.Popen([sys.executable, "-m", "decl", "apply", "-y", "-f", str(manifest)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lock = pathlib.Path(os.environ["DECL_STATE_DIR"]) / "locks" / "enginetest.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.05)
        started = time.monotonic()
        second = decl("apply", "-y", "-f", str(manifest))
        elapsed = time.monotonic() - started
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert second.returncode == 1
    assert f"project enginetest is locked by pid {first.pid}" in second.stderr
    assert "decl apply -y -f" in second.stderr
    assert elapsed < 5  # it does not wait for the first


def test_failure_skips_dependents_and_the_rest_converges(tmp_path, wheels):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(manifest_text({
        "broken": bare(tmp_path / "broken", wheels, ["nosuchpackage==9.9"]),
        "after": bare(tmp_path / "after", wheels, ["delta"], depends_on=["venv.broken"]),
        "free": bare(tmp_path / "free", wheels, ["delta"]),
    }))
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 1
    assert "failed: venv.broken: venv.broken: installing nosuchpackage==9.9 failed" in done.stdout
    assert "skipped: venv.after: skipped: venv.broken did not succeed" in done.stdout
    assert "Apply: 1 done, 1 failed, 1 skipped." in done.stdout
    assert (tmp_path / "free" / "decl.json").exists()
    assert not (tmp_path / "after").exists()
    # The next plan shows exactly what is left.
    planned = plan_json(str(manifest))
    assert sorted((c["address"], c["action"]) for c in planned["changes"]) == [
        ("venv.after", "create"), ("venv.broken", "update")]


def test_stale_plan_is_refused_naming_what_moved(tmp_path, wheels):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(manifest_text({"a": bare(tmp_path / "a", wheels, ["delta"]),
                                       "b": bare(tmp_path / "b", wheels, ["delta"])}))
    assert decl("apply", "-y", "-f", str(manifest), "--target", "venv.b").returncode == 0
    planfile = tmp_path / "plan.json"
    done = decl("plan", "-f", str(manifest), "--out", str(planfile))
    assert done.returncode == 0 and planfile.exists()
    # Something moves after the plan: venv.b loses a package behind decl's back.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(tmp_path / "b" / "bin" /
                    "python"), "uninstall", "-y", "-q", "delta"], check=True,
                   env={**os.environ, **CLEAN_PIP_ENV})
    refused = decl("apply", str(planfile))
    assert refused.returncode == 1
    assert "the saved plan is stale" in refused.stderr
    assert "venv.b changed" in refused.stderr
    assert not (tmp_path / "a").exists()  # nothing was applied

    fresh = tmp_path / "fresh.json"
    assert decl("plan", "-f", str(manifest), "--out", str(fresh)).returncode == 0
    applied = decl("apply", str(fresh))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0


def test_secret_values_appear_nowhere(tmp_path, wheels):
    secret = "s3cr3t-Hunter2-value"
    hidden = tmp_path / f"wheels-{secret}"
    wheels.rename(hidden)
    (tmp_path / "blocker").write_text("a file where a directory should be\n")
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(
        "version: 1\nproject: secrettest\nvenvs:\n"
        f"  ok:\n    path: {tmp_path / 'ok'}\n    backend: venv\n    pip: false\n"
        "    no_index: true\n    packages: [delta]\n"
        "    find_links: [\"{{ secret('WHEELHOUSE') }}\"]\n"
        f"  bad:\n    path: \"{tmp_path / 'blocker'}/{{{{ secret('DIRNAME') }}}}\"\n"
        "    backend: venv\n    pip: false\n")
    env = {"WHEELHOUSE": str(hidden), "DIRNAME": secret}
    planfile = tmp_path / "plan.json"
    outputs = [decl("plan", "-f", str(manifest), "--out", str(planfile), env=env),
               decl("plan", "-f", str(manifest), "--json", env=env),
               decl("apply", "-y", "-f", str(manifest), env=env),
               decl("apply", "-y", "-f", str(manifest), "--json", env=env),
               decl("status", "-f", str(manifest), env=env)]
    assert (tmp_path / "ok" / "decl.json").exists()  # the secret really was used
    # The venv whose path holds the secret is not made: `python -m venv PATH` would put the
    # secret on a command line every user can read (decl.connections.secret_env). The error
    # names the path: the secret part is masked, the rest is kept.
    assert "failed: venv.bad: host local: a secret value would go on the command line of " \
        in outputs[2].stdout, outputs[2].stdout
    assert f"{tmp_path / 'blocker'}/(sensitive)), where other users" in outputs[2].stdout
    planned = json.loads(outputs[1].stdout)
    bad = next(c for c in planned["changes"] if c["address"] == "venv.bad")
    path_field = next(f for f in bad["fields"] if f["path"] == "path")
    assert path_field["after"] == "(sensitive)" and path_field["sensitive"] is True
    journal = pathlib.Path(os.environ["DECL_STATE_DIR"]) / "journal" / "secrettest.jsonl"
    assert "(sensitive)" in journal.read_text()
    texts = [o.stdout + o.stderr for o in outputs] + [planfile.read_text(), journal.read_text()]
    texts.append((tmp_path / "ok" / "decl.json").read_text())
    for text in texts:
        assert secret not in text


def test_orphans_listed_then_pruned(tmp_path, wheels):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(manifest_text({"keep": bare(tmp_path / "keep", wheels, []),
                                       "gone": bare(tmp_path / "gone", wheels, [])}))
    assert decl("apply", "-y", "-f", str(manifest)).returncode == 0
    manifest.write_text(manifest_text({"keep": bare(tmp_path / "keep", wheels, [])}))
    listed = decl("plan", "-f", str(manifest))
    assert "Orphans" in listed.stdout and "venv.gone" in listed.stdout
    assert decl("apply", "-y", "-f", str(manifest)).returncode == 0
    assert (tmp_path / "gone").exists()  # not without --prune
    pruned = decl("apply", "-y", "--prune", "-f", str(manifest))
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "keep").exists()


def test_apply_without_terminal_needs_yes(tmp_path, wheels):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(manifest_text({"a": bare(tmp_path / "a", wheels, [])}))
    done = decl("apply", "-f", str(manifest), input="yes\n")
    assert done.returncode == 1
    assert "refusing to go on without -y" in done.stderr
    assert not (tmp_path / "a").exists()


def test_ctrl_c_lets_running_changes_finish_and_skips_the_rest(tmp_path, wheels):
    import signal

    manifest = tmp_path / "decl.yaml"
    # Packages make each change last a few seconds (a bare venv takes 0.2 s now): the first
    # is still running when Ctrl-C comes.
    manifest.write_text(manifest_text({
        f"v{i}": {**bare(tmp_path / f"v{i}", wheels, ["alpha==1.0", "beta", "delta"]),
                  "pip": True}
        for i in range(3)}))
    env = {**os.environ, **CLEAN_PIP_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "decl", "apply", "-y", "--parallelism", "1",
                             "-f", str(manifest)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("venv.v0: create..."):
            break
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    output = "".join(lines) + rest
    assert proc.returncode == 1, output + err
    assert "stopping: letting running changes finish" in output
    assert "Apply: 1 done, 0 failed, 2 skipped." in output
    assert (tmp_path / "v0" / "decl.json").exists()  # the running change finished cleanly
    planned = plan_json(str(manifest))
    assert sorted(c["address"] for c in planned["changes"]) == ["venv.v1", "venv.v2"]
