"""New venvs with pip that ask for the same packages share one pip run.

The first is filled by `pip install --report`; the others get the wheels pip chose unpacked
by decl (decl/providers/venv/sharing.py, seed.install_wheels). These tests build each venv
by hand first (`python -m venv` + the venv's `pip install`) at the same path, then with
decl, and compare what a user of the venv can see; they count the pip processes decl
started through a sitecustomize module that logs every interpreter's argv; and they take
each way back to a plain `pip install` per venv.
"""

from __future__ import annotations

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
from tests.wheelhouse import make_sdist, make_tool_wheel, make_wheel, standard_wheelhouse

SEED_PACKAGES = ("pip", "setuptools", "_distutils_hack", "pkg_resources")
LOGGER = """import json, os, sys
_log = os.environ.get("DECL_TEST_PYTHON_LOG")
if _log:
    with open(_log, "a", encoding="utf-8") as _f:
        _f.write(json.dumps(sys.argv) + "\\n")
"""


@pytest.fixture
def wheels(tmp_path: pathlib.Path) -> pathlib.Path:
    directory = standard_wheelhouse(tmp_path / "wheels")
    make_tool_wheel(directory, "tool")
    make_tool_wheel(directory, "native", purelib=False)
    return directory


def pip_env() -> dict[str, str]:
    env = {**os.environ, **CLEAN_PIP_ENV, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in [k for k, v in CLEAN_PIP_ENV.items() if not v]:
        env.pop(key, None)
    for key in ("PYTHONPATH", "VIRTUAL_ENV", "DECL_TEST_PYTHON_LOG"):
        env.pop(key, None)
    return env


def run(*argv: object, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          env=pip_env(), timeout=300)
    if ok:
        assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done


def seed_byte_code(key: str) -> bool:
    """Byte code of pip, setuptools and friends: ensurepip compiles it, decl does not."""
    parts = pathlib.PurePath(key).parts
    return "__pycache__" in parts and any(part in SEED_PACKAGES for part in parts)


def tree(venv: pathlib.Path) -> dict[str, str]:
    """Every path of the venv but decl's mark: mode and content (byte code: mode only, it
    holds times; the seeded packages' byte code and its RECORD rows: left out)."""
    found = {}
    for root, dirs, files in os.walk(venv):
        for name in [*dirs, *files]:
            path = pathlib.Path(root, name)
            key = str(path.relative_to(venv))
            if key == "decl.json" or seed_byte_code(key):
                continue
            mode = oct(path.lstat().st_mode & 0o777)
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[key] = f"{mode} dir"
            elif path.suffix == ".pyc":
                found[key] = f"{mode} pyc"
            else:
                data = path.read_bytes()
                if path.name == "RECORD" and path.parent.name.split("-")[0] in SEED_PACKAGES:
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if b".pyc," not in line)
                found[key] = f"{mode} {hashlib.sha256(data).hexdigest()}"
    return found


def what_the_user_sees(venv: pathlib.Path, names: list[str]) -> dict[str, object]:
    files = tree(venv)  # before pip runs in it (pip's own byte code would appear)
    pip = venv / "bin" / "pip"
    return {"tree": files,
            "list": json.loads(run(pip, "list", "--format=json").stdout),
            "check": run(pip, "check").stdout,
            "show": run(pip, "show", "-f", *names).stdout}


def by_hand(venv: pathlib.Path, wheels: pathlib.Path, packages: list[str]) -> None:
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "--quiet", "--no-index", "--find-links", wheels,
        *packages)


def manifest(tmp_path: pathlib.Path, paths: list[pathlib.Path], wheels: pathlib.Path,
             packages: list[str]) -> str:
    target = tmp_path / "decl.yaml"
    target.write_text(json.dumps({"version": 1, "project": "sharetest", "venvs": {
        path.name: {"path": str(path), "backend": "venv", "pip": True, "packages": packages,
                    "find_links": [str(wheels)], "no_index": True} for path in paths}}))
    return str(target)


def apply_counting(tmp_path: pathlib.Path, manifest_path: str, *extra: str
                   ) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """`decl apply -y`, and the argv of every `pip install` process it started."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(LOGGER)
    log = tmp_path / "pythons.log"
    log.unlink(missing_ok=True)
    path = os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])
    done = decl("apply", "-y", *extra, "-f", manifest_path,
                env={"PYTHONPATH": path, "DECL_TEST_PYTHON_LOG": str(log)})
    argvs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    installs = [a for a in argvs if a and a[0] != "-c" and "install" in a]
    return done, installs


def record_paths(venv: pathlib.Path, dist_info: str) -> list[pathlib.Path]:
    site = next(venv.glob("lib/python*/site-packages"))
    text = (site / dist_info / "RECORD").read_text(encoding="utf-8")
    return [(site / row[0]).resolve() for row in csv.reader(text.splitlines()) if row]


def test_venvs_filled_from_one_pip_run_are_the_ones_pip_makes(tmp_path, wheels):
    delta = make_wheel(tmp_path / "direct", "delta", "1.0")
    packages = ["tool", "native", "beta", "alpha==1.0", f"delta @ {delta.as_uri()}"]
    names = ["tool", "native", "beta", "gamma", "alpha", "delta"]
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(3)]
    expected = {}
    for path in paths:
        by_hand(path, wheels, packages)
        expected[path] = what_the_user_sees(path, names)
        shutil.rmtree(path)
    done, installs = apply_counting(tmp_path, manifest(tmp_path, paths, wheels, packages))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(installs) == 1, installs  # one pip for three venvs
    assert "--report" in installs[0]
    for path in paths:
        got = what_the_user_sees(path, names)
        for part in ("tree", "list", "check", "show"):
            assert got[part] == expected[path][part], f"{path.name}: {part}"
        assert "direct_url.json" in got["show"]  # the direct reference, as pip writes it
    for path in paths:
        assert run(path / "bin" / "tool", "a").stdout == "tool ran ['a']\n"
        assert run(path / "bin" / "tool-helper").stdout == "helper ran\n"
        owned = record_paths(path, "tool-1.0.dist-info")
        run(path / "bin" / "pip", "uninstall", "-y", "--quiet", "tool")
        assert [p for p in owned if p.exists()] == []
        run(path / "bin" / "pip", "install", "--quiet", "--upgrade", "--no-index",
            "--find-links", wheels, "alpha")
        listed = {p["name"]: p["version"]
                  for p in json.loads(run(path / "bin" / "pip", "list", "--format=json").stdout)}
        assert listed["alpha"] == "2.0" and "tool" not in listed
        run(path / "bin" / "pip", "check")
    again = decl("plan", "--detailed-exitcode", "-f", str(tmp_path / "decl.yaml"))
    assert again.returncode == 2  # tool is gone and alpha moved: decl sees the drift


def test_a_package_pip_builds_from_an_sdist_is_installed_by_pip_in_every_venv(tmp_path,
                                                                                wheels):
    make_sdist(wheels, "built", "1.0")
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(3)]
    done, installs = apply_counting(tmp_path, manifest(tmp_path, paths, wheels,
                                                       ["built", "alpha"]),
                                    "--parallelism", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(installs) == 3, installs
    for path in paths:
        listed = {p["name"] for p in
                  json.loads(run(path / "bin" / "pip", "list", "--format=json").stdout)}
        assert {"built", "alpha"} <= listed
        assert run(path / "bin" / "python", "-c", "import built; print(built.BUILT)"
                   ).stdout == "True\n"


def test_a_package_that_replaces_a_seeded_one_is_installed_by_pip_in_every_venv(tmp_path,
                                                                                 wheels):
    make_wheel(wheels, "setuptools", "99.0")
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(2)]
    done, installs = apply_counting(tmp_path, manifest(tmp_path, paths, wheels,
                                                       ["setuptools==99.0", "alpha"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(installs) == 2, installs
    for path in paths:
        listed = {p["name"]: p["version"] for p in
                  json.loads(run(path / "bin" / "pip", "list", "--format=json").stdout)}
        assert listed["setuptools"] == "99.0" and listed["alpha"] == "2.0"
        assert len(list(path.glob("lib/python*/site-packages/setuptools-*.dist-info"))) == 1


def test_when_the_first_pip_fails_every_venv_says_why_from_its_own_pip(tmp_path, wheels):
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(2)]
    done, installs = apply_counting(tmp_path, manifest(tmp_path, paths, wheels,
                                                       ["alpha", "nonesuch-pkg"]))
    assert done.returncode != 0
    assert len(installs) == 2, installs
    output = done.stdout + done.stderr
    for path in paths:
        assert f"venv.{path.name}" in output
    assert output.count("nonesuch-pkg") >= 2


def test_a_wheel_with_headers_is_installed_by_pip_in_every_venv(tmp_path, wheels):
    """seed.py leaves C headers to pip (pip puts them under include/site): the venvs the
    first wheel was already unpacked into are made again and filled by pip."""
    import zipfile

    plain = make_wheel(tmp_path / "plain", "zed", "1.0")
    with zipfile.ZipFile(plain) as source, \
            zipfile.ZipFile(wheels / plain.name, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr("zed-1.0.data/headers/zed.h", b"int zed;\n")
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(3)]
    done, installs = apply_counting(tmp_path, manifest(tmp_path, paths, wheels,
                                                       ["alpha", "zed"]), "--parallelism", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(installs) == 3, installs
    for path in paths:
        assert (path / "include" / "site" / "python{}.{}".format(*sys.version_info[:2]) /
                "zed" / "zed.h").read_bytes() == b"int zed;\n"
        run(path / "bin" / "pip", "check")
        assert len(list(path.glob("lib/python*/site-packages/alpha-*.dist-info"))) == 1
        assert json.loads((path / "decl.json").read_text())["state"] == "complete"


def test_a_pip_configured_not_to_compile_is_followed_by_pip_in_every_venv(tmp_path, wheels):
    """What pip's configuration changes (here: no byte code) shows in the first venv's
    RECORDs: the others, whose RECORDs differ, are made again and filled by pip.
    (pip reads a "no-" option's value into the positive setting: PIP_NO_COMPILE=0 is
    `compile = false`, what `--no-compile` does.)"""
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(2)]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(LOGGER)
    log = tmp_path / "pythons.log"
    done = decl("apply", "-y", "--parallelism", "1", "-f",
                manifest(tmp_path, paths, wheels, ["beta"]),
                env={"PIP_NO_COMPILE": "0", "DECL_TEST_PYTHON_LOG": str(log),
                     "PYTHONPATH": os.pathsep.join([str(hook),
                                                    os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 0, done.stdout + done.stderr
    installs = [a for a in (json.loads(line) for line in log.read_text().splitlines())
                if a[0] != "-c" and "install" in a]
    assert len(installs) == 2, installs
    for path in paths:
        site = next(path.glob("lib/python*/site-packages"))
        assert not (site / "beta" / "__pycache__").exists()
        assert ".pyc" not in (site / "beta-1.0.dist-info" / "RECORD").read_text()
        run(path / "bin" / "pip", "check")


@pytest.fixture
def served(wheels):
    """The wheelhouse as a find-links page on 127.0.0.1 (http.server's directory list)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(wheels))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_wheels_pip_downloads_are_fetched_once_for_the_other_venvs(tmp_path, wheels, served):
    packages = ["tool", "beta"]
    paths = [tmp_path / "venvs" / f"v{i}" for i in range(3)]
    expected = {}
    for path in paths[1:]:
        by_hand(path, wheels, packages)
        expected[path] = what_the_user_sees(path, ["tool", "beta", "gamma"])
        shutil.rmtree(path)
    target = pathlib.Path(manifest(tmp_path, paths, wheels, packages))
    document = json.loads(target.read_text())
    for entry in document["venvs"].values():
        entry["find_links"] = [served]
    target.write_text(json.dumps(document))
    cache = tmp_path / "cache"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(LOGGER)
    log = tmp_path / "pythons.log"
    done = decl("apply", "-y", "--parallelism", "1", "-f", str(target),
                env={"XDG_CACHE_HOME": str(cache), "DECL_TEST_PYTHON_LOG": str(log),
                     "PYTHONPATH": os.pathsep.join([str(hook),
                                                    os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 0, done.stdout + done.stderr
    argvs = [json.loads(line) for line in log.read_text().splitlines()]
    pips = [a for a in argvs if a[0] != "-c" and ("install" in a or "download" in a)]
    assert [("install" in a, "download" in a) for a in pips] == [(True, False), (False, True)]
    kept = sorted(p.name for p in (cache / "decl" / "wheels").glob("*/*.whl"))
    assert kept == ["beta-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl",
                    "tool-1.0-py3-none-any.whl"]
    for path in paths[1:]:  # filled from the cache: what pip makes from the same wheels
        got = what_the_user_sees(path, ["tool", "beta", "gamma"])
        assert got == expected[path]
