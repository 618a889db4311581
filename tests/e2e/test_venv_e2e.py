"""The venv provider end to end on this machine, from a local wheelhouse (no network)."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil

import pytest

from tests.backends import missing_backend
from tests.e2e.venv_helpers import decl, installed, plan_json
from tests.wheelhouse import standard_wheelhouse


@pytest.fixture
def wheels(tmp_path: pathlib.Path) -> pathlib.Path:
    return standard_wheelhouse(tmp_path / "wheels")


def write_manifest(path: pathlib.Path, venvs: dict, project: str = "venvtest") -> str:
    path.write_text(json.dumps({"version": 1, "project": project, "venvs": venvs}, indent=1))
    return str(path)


def venv_entry(path: pathlib.Path, wheels: pathlib.Path, packages: list[str],
               **extra: object) -> dict:
    return {"path": str(path), "packages": packages, "find_links": [str(wheels)],
            "no_index": True, **extra}


@pytest.mark.parametrize("backend", ["venv", "uv"])
def test_apply_noop_change_remove_destroy(tmp_path, wheels, backend):
    if backend == "uv" and shutil.which("uv") is None:
        missing_backend("uv", "uv is not installed (pip install '.[test]' brings it)")
    venv = tmp_path / "env"
    manifest = tmp_path / "decl.yaml"
    extra = {"backend": backend, "pip": backend == "venv"}
    write_manifest(manifest, {"tools": venv_entry(venv, wheels, ["alpha==1.0", "beta"], **extra)})

    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply: 1 done, 0 failed, 0 skipped." in done.stdout
    assert installed(str(venv)).items() >= {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}.items()
    assert json.loads((venv / "decl.json").read_text())["project"] == "venvtest"

    again = decl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    assert "No changes." in again.stdout

    # A package change: the plan shows exactly that change.
    write_manifest(manifest, {"tools": venv_entry(venv, wheels, ["alpha==2.0", "beta"], **extra)})
    planned = plan_json(str(manifest))
    assert [(c["address"], c["action"]) for c in planned["changes"]] == [("venv.tools", "update")]
    fields = planned["changes"][0]["fields"]
    assert [(f["path"], f["before"], f["after"]) for f in fields] == \
        [("packages.alpha", "alpha==1.0", "alpha==2.0")]
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 2
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(str(venv))["alpha"] == "2.0"
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0

    # A package the manifest no longer lists is removed, with the dependency only it needed.
    write_manifest(manifest, {"tools": venv_entry(venv, wheels, ["alpha==2.0"], **extra)})
    planned = plan_json(str(manifest))
    assert [(f["path"], f["after"]) for f in planned["changes"][0]["fields"]] == \
        [("packages.beta", None), ("packages.gamma", None)]
    assert decl("apply", "-y", "-f", str(manifest)).returncode == 0
    left = installed(str(venv))
    assert "beta" not in left and "gamma" not in left and left["alpha"] == "2.0"
    if backend == "venv":
        assert "pip" in left  # seed packages are never removed
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0

    # state: absent removes it.
    write_manifest(manifest, {"tools": venv_entry(venv, wheels, ["alpha==2.0"], **extra,
                                                  state="absent")})
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not venv.exists()
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0


def test_destroy_removes_only_what_decl_made(tmp_path, wheels):
    ours = tmp_path / "ours"
    manifest = tmp_path / "decl.yaml"
    write_manifest(manifest, {"a": venv_entry(ours, wheels, ["delta"], pip=False,
                                              backend="venv")})
    assert decl("apply", "-y", "-f", str(manifest)).returncode == 0
    assert ours.exists()
    done = decl("destroy", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "venv.a" in done.stdout and "will be deleted" in done.stdout
    assert not ours.exists()
    assert decl("destroy", "-y", "-f", str(manifest)).returncode == 0  # nothing left to do


def tree_digest(root: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        stat = path.lstat()
        digest.update(f"{stat.st_mode}:{stat.st_mtime_ns}".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_unmarked_directory_is_a_conflict_and_untouched(tmp_path, wheels):
    stranger = tmp_path / "precious"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("my thesis\n")
    (stranger / "sub").mkdir()
    (stranger / "sub" / "data.bin").write_bytes(os.urandom(64))
    before = tree_digest(stranger)
    manifest = tmp_path / "decl.yaml"
    write_manifest(manifest, {"x": venv_entry(stranger, wheels, ["delta"], backend="venv",
                                              pip=False)})

    planned = plan_json(str(manifest), codes=(1,))
    assert planned["changes"][0]["action"] == "conflict"
    # adopt cannot take over a directory that is not a venv: no hint that it could
    assert "adopt: true" not in planned["changes"][0]["cause"]
    assert "cannot be adopted" in planned["changes"][0]["cause"]
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 1
    assert "conflict" in done.stderr
    destroyed = decl("destroy", "-y", "-f", str(manifest))
    assert destroyed.returncode == 0
    # Even adopt: a directory that is not a venv is never taken over.
    write_manifest(manifest, {"x": venv_entry(stranger, wheels, ["delta"], backend="venv",
                                              pip=False, adopt=True)})
    adopted = decl("apply", "-y", "-f", str(manifest))
    assert adopted.returncode == 1
    assert "not a Python venv" in adopted.stdout + adopted.stderr
    assert tree_digest(stranger) == before


def test_adopt_an_unmarked_venv(tmp_path, wheels):
    import subprocess
    import sys

    venv = tmp_path / "theirs"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    manifest = tmp_path / "decl.yaml"
    write_manifest(manifest, {"t": venv_entry(venv, wheels, ["delta"], backend="venv",
                                              pip=False)})
    conflict = plan_json(str(manifest), codes=(1,))["changes"][0]
    assert conflict["action"] == "conflict" and "adopt: true" in conflict["cause"]
    write_manifest(manifest, {"t": venv_entry(venv, wheels, ["delta"], backend="venv",
                                              pip=False, adopt=True)})
    planned = plan_json(str(manifest))
    assert planned["changes"][0]["action"] == "adopt"
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(str(venv)) == {"delta": "1.0"}
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0
