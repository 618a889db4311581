"""The venv survey gives the same answer in decl's process (local host) and as the script
another host's Python runs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import venv
from types import SimpleNamespace

from decl.connections.local import LocalConnection
from decl.core.resource import Desired
from decl.providers.venv.probe import CHECKED_SCRIPT, FLAGS, SCRIPT, survey_here
from decl.providers.venv.provider import VenvProvider
from tests.wheelhouse import make_wheel


def test_in_process_and_script_agree(tmp_path):
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "alpha", "1.0", ["gamma>=1"])
    site = next(env_dir.glob("lib/python*/site-packages"))
    import zipfile

    with zipfile.ZipFile(next(wheels.glob("*.whl"))) as archive:
        archive.extractall(site)
    (env_dir / "decl.json").write_text('{"project": "p", "address": "venv.e"}')
    (tmp_path / "plain").mkdir()
    request = {"paths": [str(env_dir), str(tmp_path / "plain"), str(tmp_path / "missing")],
               "index": str(tmp_path / "index.json"), "interpreters": [sys.executable]}
    here = survey_here(request)
    there = json.loads(subprocess.run([sys.executable, *FLAGS, "-c", SCRIPT],
                                      input=json.dumps(request).encode(), capture_output=True,
                                      check=True).stdout)
    assert here == there
    found = {item["path"]: item for item in here["venvs"]}
    assert found[str(env_dir)]["dists"] == [{"name": "alpha", "version": "1.0",
                                             "requires": ["gamma>=1"]}]
    assert found[str(env_dir)]["marks"]["project"] == "p"
    assert found[str(tmp_path / "plain")]["cfg"] is None
    assert found[str(tmp_path / "missing")]["exists"] is False


def run_script(script: str, request: dict, env: dict | None = None) -> list[str]:
    """The script's stdout lines, run as another host's Python runs it."""
    done = subprocess.run([sys.executable, *FLAGS, "-c", script],
                          input=json.dumps(request).encode(), capture_output=True, check=True,
                          env=env)
    return done.stdout.decode().splitlines()


def test_markers_are_the_platform_modules_values(tmp_path):
    env = survey_here({"paths": [], "index": ""})["env"]
    assert env == {"platform_system": platform.system(), "sys_platform": sys.platform,
                   "platform_machine": platform.machine(), "os_name": os.name,
                   "implementation_name": sys.implementation.name,
                   "platform_python_implementation": platform.python_implementation()}


def test_distributions_are_listed_as_glob_would(tmp_path):
    """dist-info directories sorted, then egg-info (file or directory); hidden entries and
    other files left out; every lib/python*/site-packages read."""
    env_dir = tmp_path / "env"
    (env_dir / "lib").mkdir(parents=True)
    (env_dir / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for version in ("python3.12", "python3.11"):
        (env_dir / "lib" / version / "site-packages").mkdir(parents=True)
    site = env_dir / "lib" / "python3.11" / "site-packages"
    for name in ("b-1.dist-info", "a-1.dist-info", ".h-1.dist-info"):
        (site / name).mkdir()
        (site / name / "METADATA").write_text(f"Name: {name[:-12]}\nVersion: 1\n\nbody\n")
    (site / "c.egg-info").write_text("Name: c\nVersion: 2\n")
    (site / "d.py").write_text("")
    other = env_dir / "lib" / "python3.12" / "site-packages" / "e-3.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Name: e\nVersion: 3\nRequires-Dist: a\n")
    found = survey_here({"paths": [str(env_dir)], "index": ""})["venvs"][0]["dists"]
    assert found == [{"name": "a", "version": "1", "requires": []},
                     {"name": "b", "version": "1", "requires": []},
                     {"name": "c", "version": "2", "requires": []},
                     {"name": "e", "version": "3", "requires": ["a"]}]


def test_checked_script_reports_python_venv_uv_then_the_survey(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "uv").write_text("#!/bin/sh\n")
    (tools / "uv").chmod(0o755)
    (tmp_path / "empty").mkdir()
    request = {"paths": [str(tmp_path / "missing")], "index": "", "interpreters": []}
    first, second = run_script(CHECKED_SCRIPT, request,
                               {"PATH": f"{tmp_path / 'empty'}:{tools}:/usr/bin:/bin"})
    assert json.loads(first) == {"version": platform.python_version(), "venv": True,
                                 "uv": str(tools / "uv")}
    assert json.loads(second) == {"survey": survey_here(request)}
    first, _ = run_script(CHECKED_SCRIPT, request, {"PATH": str(tmp_path / "empty")})
    assert json.loads(first)["uv"] is None


def test_checked_script_reports_a_survey_that_failed(tmp_path):
    first, second = run_script(CHECKED_SCRIPT, {"paths": None, "index": ""})
    assert json.loads(first)["venv"] is True
    assert json.loads(second)["error"].startswith("TypeError: ")


class RemoteLike(LocalConnection):
    """A host reached like a remote one (is_local False): the provider runs the checked
    script there with the host's `python`, as it does over SSH."""

    is_local = False

    def __init__(self, python: str) -> None:
        super().__init__("box")
        self.config = SimpleNamespace(python=python)
        self.commands: list[list[str]] = []

    def run(self, argv, **kwargs):  # type: ignore[no-untyped-def, override]
        self.commands.append(list(argv))
        return super().run(argv, **kwargs)


def wanted(path) -> Desired:
    spec = {"path": str(path), "python": None, "packages": {}, "system_site_packages": False,
            "pip": False}
    return Desired(address="venv.e", kind="venv", name="e", provider="venv", host="box",
                   state="present",
                   spec=spec, model=None)


def test_check_and_discover_on_a_remote_host_is_one_command(tmp_path):
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    conn = RemoteLike(sys.executable)
    provider = VenvProvider()
    availability, found = provider.check_and_discover(conn, "p", [wanted(env_dir)])
    assert len(conn.commands) == 1
    assert conn.commands[0][:3] == [sys.executable, *FLAGS]
    assert availability.available and availability.version == platform.python_version()
    assert found is not None and [o.address for o in found.observed] == ["venv.e"]
    assert found.observed[0].spec["python"] == platform.python_version()
    # the same answer as check() then discover() give
    separate = provider.discover(conn, "p", [wanted(env_dir)])
    assert separate.observed == found.observed
    assert provider.check(conn).version == availability.version


def test_check_and_discover_without_a_usable_python(tmp_path):
    conn = RemoteLike(str(tmp_path / "no-python"))
    availability, found = VenvProvider().check_and_discover(conn, "p", [wanted(tmp_path)])
    assert found is None and not availability.available
    assert "with the venv module is not usable" in str(availability.detail)
