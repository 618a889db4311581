"""A venv decl makes with pip is the venv `python -m venv` + `pip install` makes.

decl skips ensurepip's second interpreter (decl/providers/venv/seed.py): these tests build
the same venv both ways at the same path and compare what its user can see.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.e2e.venv_helpers import CLEAN_PIP_ENV, decl
from tests.wheelhouse import standard_wheelhouse

PACKAGES = ["alpha==1.0", "beta"]


@pytest.fixture
def wheels(tmp_path: pathlib.Path) -> pathlib.Path:
    return standard_wheelhouse(tmp_path / "wheels")


def pip_env() -> dict[str, str]:
    env = {**os.environ, **CLEAN_PIP_ENV, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in [k for k, v in CLEAN_PIP_ENV.items() if not v]:
        env.pop(key, None)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=pip_env(), timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done.stdout


def tree(venv: pathlib.Path) -> dict[str, str]:
    """Every path of the venv but byte code and decl's mark: mode and content (or target)."""
    found = {}
    for root, dirs, files in os.walk(venv):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in [*dirs, *files]:
            path = pathlib.Path(root, name)
            key = str(path.relative_to(venv))
            if key == "decl.json":
                continue
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[key] = "dir"
            else:
                data = path.read_bytes()
                if path.name == "RECORD":
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if b".pyc," not in line)
                found[key] = f"{oct(path.stat().st_mode & 0o777)} " \
                             f"{hashlib.sha256(data).hexdigest()}"
    return found


def what_the_user_sees(venv: pathlib.Path) -> dict[str, object]:
    return {"list": json.loads(run(str(venv / "bin" / "pip"), "list", "--format=json")),
            "version": run(str(venv / "bin" / "pip"), "--version"),
            "python": run(str(venv / "bin" / "python"), "-c",
                          "import sys; print(sys.prefix, sys.base_prefix, sys.path)"),
            "tree": tree(venv)}


def by_hand(venv: pathlib.Path, wheels: pathlib.Path, packages: list[str]) -> dict[str, object]:
    run(sys.executable, "-m", "venv", str(venv))
    if packages:
        run(str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", "--find-links",
            str(wheels), *packages)
    return what_the_user_sees(venv)


def with_decl(tmp_path: pathlib.Path, venv: pathlib.Path, wheels: pathlib.Path,
              packages: list[str], **extra: object) -> dict[str, object]:
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "seedtest", "venvs": {"env": {
        "path": str(venv), "backend": "venv", "pip": True, "packages": packages,
        "find_links": [str(wheels)], "no_index": True, **extra}}}))
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "made with ensurepip" not in done.stdout + done.stderr
    again = decl("plan", "--detailed-exitcode", "-f", str(manifest))
    assert again.returncode == 0, again.stdout + again.stderr
    return what_the_user_sees(venv)


@pytest.mark.parametrize("packages", [[], PACKAGES], ids=["empty", "packages"])
def test_decl_venv_with_pip_is_the_python_m_venv_one(tmp_path, wheels, packages):
    venv = tmp_path / "env"
    expected = by_hand(venv, wheels, packages)
    shutil.rmtree(venv)
    got = with_decl(tmp_path, venv, wheels, packages)
    assert got["list"] == expected["list"]
    assert got["version"] == expected["version"]
    assert got["python"] == expected["python"]
    assert got["tree"] == expected["tree"]
    assert {"pip", "alpha"} & {p["name"] for p in got["list"]} >= {"pip"}


def test_pip_inside_the_venv_installs_offline_and_its_records_hold(tmp_path, wheels):
    venv = tmp_path / "env"
    with_decl(tmp_path, venv, wheels, [])
    run(str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", "--find-links",
        str(wheels), "alpha==2.0")
    names = {p["name"]: p["version"]
             for p in json.loads(run(str(venv / "bin" / "pip"), "list", "--format=json"))}
    assert names["alpha"] == "2.0"
    site = next(venv.glob("lib/python*/site-packages"))
    for info in site.glob("*.dist-info"):
        assert (info / "INSTALLER").read_text() == "pip\n", info.name
        rows = list(csv.reader((info / "RECORD").read_text(encoding="utf-8").splitlines()))
        for path, digest, size in rows:
            if not digest:
                continue
            data = (site / path).read_bytes()
            want = "sha256=" + base64.urlsafe_b64encode(
                hashlib.sha256(data).digest()).decode().rstrip("=")
            assert (digest, int(size)) == (want, len(data)), f"{info.name}: {path}"
    # pip can remove itself as from any venv: every file it owns is in its RECORD
    run(str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--yes", "--quiet", "pip")
    assert not (venv / "bin" / "pip").exists()
    assert not list(site.glob("pip*"))


def test_another_interpreter_runs_the_seed_itself(tmp_path, wheels):
    """A python that is not decl's own (here: a launcher script) makes the venv in its own
    process, as a remote host's python does."""
    launcher = tmp_path / "bin" / "mypython"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    launcher.chmod(0o755)
    venv = tmp_path / "env"
    expected = by_hand(venv, wheels, PACKAGES)
    shutil.rmtree(venv)
    got = with_decl(tmp_path, venv, wheels, PACKAGES, python=str(launcher))
    assert got["list"] == expected["list"] and got["tree"] == expected["tree"]


def test_python_given_as_a_command_name(tmp_path, wheels):
    """`python: python3` is a command on the host's PATH, not a version."""
    command = pathlib.Path(sys.executable).name
    venv = tmp_path / "env"
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "cmdtest", "venvs": {"env": {
        "path": str(venv), "backend": "venv", "python": command, "packages": ["alpha"],
        "find_links": [str(wheels)], "no_index": True}}}))
    env = {"PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    done = decl("apply", "-y", "-f", str(manifest), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    cfg = (venv / "pyvenv.cfg").read_text()
    assert f"home = {os.path.dirname(os.path.realpath(sys.executable))}" in cfg or \
        os.path.dirname(sys.executable) in cfg
    again = decl("plan", "--detailed-exitcode", "-f", str(manifest), env=env)
    assert again.returncode == 0, again.stdout + again.stderr


def test_python_command_name_that_is_missing_is_one_clear_error(tmp_path, wheels):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "cmdtest", "venvs": {"env": {
        "path": str(tmp_path / "env"), "backend": "venv", "python": "python-nonesuch"}}}))
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 1
    assert "no python-nonesuch on host local" in done.stdout + done.stderr
    assert "pythonpython" not in done.stdout + done.stderr
