"""The example plugin package (tests/plugin_example) installed with pip into a fresh venv and
found through the `decl.providers` entry point: its options are in `decl schema`, its option
errors come from `decl validate` with file:line:col, and a create / no-op / delete cycle
passes against it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugin_example"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A venv that sees this checkout's decl and its dependencies, with the plugin
    installed by pip from its own pyproject.toml (offline: no index, no build isolation)."""
    where = tmp_path_factory.mktemp("plugin") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(where)], check=True)
    python = where / "bin" / "python"
    work = tmp_path_factory.mktemp("plugin-src")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-build-isolation", "--no-index",
         "--no-deps", "--disable-pip-version-check", "--quiet", str(PLUGIN)],
        capture_output=True, text=True, check=False, cwd=work,
        env={**os.environ, "PIP_NO_CACHE_DIR": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return where


def decl(venv: pathlib.Path, *args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(venv / "bin" / "python"), "-m", "decl", *args],
                          capture_output=True, text=True, check=False, cwd=cwd, env=env)


def manifest(path: pathlib.Path, root: pathlib.Path, **fields: object) -> str:
    vm = {"provider": "toyvm", "cpus": 2, "memory": "512MiB",
          "disks": [{"size": "1GiB"}], "options": {"root": str(root), "vram": 32}, **fields}
    path.write_text(json.dumps({"version": 1, "project": "plug", "vms": {"box": vm}},
                               indent=1))
    return str(path)


def test_found_through_the_entry_point(venv, tmp_path):
    done = decl(venv, "providers", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["provider"]: row for row in json.loads(done.stdout)["providers"]}
    assert rows["toyvm"]["status"] == "available"
    assert rows["toyvm"]["source"] == "decl_toyvm:ToyVmProvider"


def test_options_are_in_the_schema(venv, tmp_path):
    done = decl(venv, "schema", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    options = schema["$defs"]["ToyvmVmOptions"]["properties"]
    assert options["vram"]["description"] == "Video memory in MiB (compared, restart)."
    assert options["shutdown_timeout"]["description"]  # from the VM base
    rules = schema["$defs"]["Vm"]["allOf"]
    assert {"if": {"properties": {"provider": {"const": "toyvm"}}, "required": ["provider"]},
            "then": {"properties": {"options": {"$ref": "#/$defs/ToyvmVmOptions"}}}} in rules


def test_option_errors_have_positions(venv, tmp_path):
    path = tmp_path / "decl.yaml"
    path.write_text("version: 1\nproject: plug\nvms:\n  box:\n    provider: toyvm\n"
                    "    options:\n      vram: 1024\n      vrem: 2\n")
    done = decl(venv, "validate", "-f", str(path), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == (f"error: {path}:8:7: unknown option 'vrem'; did you mean 'vram'? "
                        "(and 1 more problem) (in vms -> box -> options -> vrem)")
    path.write_text("version: 1\nproject: plug\nvms:\n  box:\n    provider: toyvm\n"
                    "    options: {vram: 1024}\n")
    done = decl(venv, "validate", "-f", str(path), cwd=tmp_path)
    assert done.stderr.splitlines()[0] == (
        f"error: {path}:6:21: Input should be less than or equal to 256, got 1024 "
        "(in vms -> box -> options -> vram)")
    path.write_text("version: 1\nproject: plug\nvms:\n  toybox:\n    provider: toyvm\n")
    done = decl(venv, "validate", "-f", str(path), cwd=tmp_path)
    assert done.stderr.splitlines()[0] == (
        f"error: {path}:4:3: the toyvm provider reserves names starting with 'toy' "
        "(in vms -> toybox)")


def test_create_noop_delete(venv, tmp_path, monkeypatch):
    monkeypatch.setenv("DECL_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "vms"
    path = manifest(tmp_path / "decl.yaml", root)
    done = decl(venv, "apply", "-y", "-f", path, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((root / "box.json").read_text())
    assert data["power"] == "running" and data["config"]["vram"] == 32
    assert data["marks"]["project"] == "plug"
    done = decl(venv, "plan", "--detailed-exitcode", "-f", path, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # a change outside decl is drift; a restart field goes through stop, modify, start
    data["config"]["vram"] = 8
    (root / "box.json").write_text(json.dumps(data))
    done = decl(venv, "plan", "--json", "-f", path, cwd=tmp_path)
    change = json.loads(done.stdout)["changes"][0]
    assert change["action"] == "update_restart" and change["origin"] == "drift"
    assert decl(venv, "apply", "-y", "-f", path, cwd=tmp_path).returncode == 0
    after = json.loads((root / "box.json").read_text())
    assert after["config"]["vram"] == 32 and after["power"] == "running"
    done = decl(venv, "destroy", "-y", "-f", path, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (root / "box.json").exists()
