"""The venv provider on remote hosts over SSH, through the real CLI and real sshd servers."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

import pytest

from tests.e2e.venv_helpers import CLEAN_PIP_ENV, decl, installed
from tests.sshd import sshd_factory  # noqa: F401
from tests.wheelhouse import standard_wheelhouse

pytestmark = pytest.mark.backend("sshd")

# The remote sessions get a clean pip configuration too (decl's environment does not travel).
REMOTE_ENV = {"PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
HOSTILE = "v 'q' \"dq\" $(touch canary) `touch canary` ; touch canary &&x\nline2"


@pytest.fixture
def wheels(tmp_path: pathlib.Path) -> pathlib.Path:
    return standard_wheelhouse(tmp_path / "wheels")


@pytest.fixture
def project():
    """A project name of this test's own; its venv index on the (loopback) host is removed."""
    name = f"ssh-{uuid.uuid4().hex[:10]}"
    yield name
    index = pathlib.Path(os.path.expanduser(f"~/.local/state/decl/venvs/{name}.json"))
    index.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("DECL_SSH_CONFIG", "")


def wrapper_python(path: pathlib.Path, on_venv: str) -> str:
    """A python3 that runs `on_venv` (shell) before `-m venv`, then the real interpreter."""
    path.write_text(f"""#!/bin/sh
case " $* " in *" -m venv "*) {on_venv} ;; esac
exec {sys.executable} "$@"
""")
    path.chmod(0o755)
    return str(path)


def venv_entry(path: pathlib.Path | str, wheels: pathlib.Path, packages: list[str],
               **extra: object) -> dict:
    return {"path": str(path), "packages": packages, "find_links": [str(wheels)],
            "no_index": True, "backend": "venv", "pip": False, **extra}


def write_manifest(path: pathlib.Path, project: str, hosts: dict, venvs: dict,
                   default_host: str | None = None) -> str:
    document = {"version": 1, "project": project, "hosts": hosts, "venvs": venvs}
    if default_host:
        document["defaults"] = {"host": default_host}
    path.write_text(json.dumps(document, indent=1))
    return str(path)


def test_venv_over_ssh_apply_noop_change_destroy(sshd_factory, wheels, tmp_path,  # noqa: F811
                                                  project):
    server = sshd_factory(env=REMOTE_ENV)
    hosts = {"box": server.manifest_host(python=sys.executable)}
    work = tmp_path / "remote"
    work.mkdir()
    venv = work / HOSTILE  # spaces, quotes, $(...), backticks, ;, && and a newline
    manifest = tmp_path / "decl.yaml"
    write_manifest(manifest, project, hosts,
                   {"tools": venv_entry(venv, wheels, ["alpha==1.0", "beta"])}, "box")

    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply: 1 done, 0 failed, 0 skipped." in done.stdout
    assert venv.is_dir(), os.listdir(work)
    assert installed(str(venv)).items() >= {"alpha": "1.0", "beta": "1.0"}.items()
    marks = json.loads((venv / "decl.json").read_text())
    assert (marks["project"], marks["address"]) == (project, "venv.tools")

    again = decl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    write_manifest(manifest, project, hosts,
                   {"tools": venv_entry(venv, wheels, ["alpha==2.0", "beta"])}, "box")
    planned = decl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert planned.returncode == 2 and "alpha==2.0" in planned.stdout, planned.stdout
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(str(venv))["alpha"] == "2.0"
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0

    done = decl("destroy", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not venv.exists()
    # Nothing but the venv's own directory was ever made or run.
    assert sorted(os.listdir(work)) == []
    assert not list(tmp_path.rglob("canary"))
    # One SSH login per decl run: every command and file of a run shared it.
    assert server.log().count("Accepted publickey") == 6


def test_two_hosts_converge_in_parallel(sshd_factory, wheels, tmp_path, project):  # noqa: F811
    log = tmp_path / "timeline"
    hosts = {}
    venvs = {}
    for name in ("one", "two"):
        server = sshd_factory(env=REMOTE_ENV)
        python = wrapper_python(
            tmp_path / f"python-{name}",
            f'echo "{name} start $(date +%s.%N)" >> {log}; sleep 1; '
            f'echo "{name} end $(date +%s.%N)" >> {log}')
        hosts[name] = server.manifest_host(python=python)
        for index in (1, 2):
            venvs[f"{name}{index}"] = venv_entry(tmp_path / f"{name}{index}", wheels,
                                                 ["alpha==1.0"], host=name)
    manifest = write_manifest(tmp_path / "decl.yaml", project, hosts, venvs)

    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply: 4 done, 0 failed, 0 skipped." in done.stdout
    for name in venvs:
        assert installed(str(tmp_path / name))["alpha"] == "1.0"
    # The hosts' venv creations overlapped in time: work on one did not wait for the other.
    spans: dict[str, list[tuple[float, float]]] = {"one": [], "two": []}
    starts: dict[str, list[float]] = {"one": [], "two": []}
    for line in log.read_text().splitlines():
        host, event, stamp = line.split()
        if event == "start":
            starts[host].append(float(stamp))
        else:
            spans[host].append((starts[host].pop(0), float(stamp)))
    assert any(a0 < b1 and b0 < a1 for a0, a1 in spans["one"] for b0, b1 in spans["two"]), spans
    assert decl("plan", "-f", manifest, "--detailed-exitcode").returncode == 0


def test_a_host_dropping_mid_apply_fails_only_its_own_resources(sshd_factory, wheels,  # noqa: F811
                                                                 tmp_path, project):
    steady = sshd_factory(env=REMOTE_ENV)
    flaky = sshd_factory(env=REMOTE_ENV)
    started = tmp_path / "started"
    hosts = {
        "steady": steady.manifest_host(python=sys.executable),
        "flaky": flaky.manifest_host(python=wrapper_python(
            tmp_path / "python-flaky", f"touch {started}; sleep 60")),
    }
    venvs = {
        "a1": venv_entry(tmp_path / "a1", wheels, ["alpha==1.0"], host="steady"),
        "a2": venv_entry(tmp_path / "a2", wheels, ["beta"], host="steady"),
        "b": venv_entry(tmp_path / "b", wheels, ["alpha==1.0"], host="flaky"),
    }
    manifest = write_manifest(tmp_path / "decl.yaml", project, hosts, venvs)
    env = {**os.environ, **CLEAN_PIP_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "decl", "apply", "-y", "-f", manifest],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the flaky host's venv never started"
            time.sleep(0.05)
        flaky.kill_sessions()  # the host goes away mid-apply
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    assert "Apply: 2 done, 1 failed, 0 skipped." in out, out + err
    text = out + err
    assert "venv.b" in text and "host flaky: unreachable" in text, text
    assert "lost" in text, text
    for name, package in (("a1", "alpha"), ("a2", "beta")):
        assert package in installed(str(tmp_path / name))
        assert json.loads((tmp_path / name / "decl.json").read_text())["project"] == project
    assert not (tmp_path / "b" / "decl.json").exists()


def test_hosts_that_refuse_us_fail_alone_with_their_reason(sshd_factory, wheels,  # noqa: F811
                                                           tmp_path, project):
    from tests.sshd import keygen

    good = sshd_factory(env=REMOTE_ENV)
    other = sshd_factory(env=REMOTE_ENV)
    hosts = {
        "good": good.manifest_host(python=sys.executable),
        "badkey": other.manifest_host(python=sys.executable,
                                      identity_file=str(keygen(tmp_path / "wrong"))),
        "stranger": other.manifest_host(python=sys.executable,
                                        known_hosts=str(tmp_path / "empty_known_hosts")),
    }
    venvs = {name: venv_entry(tmp_path / name, wheels, ["alpha==1.0"], host=name)
             for name in hosts}
    manifest = write_manifest(tmp_path / "decl.yaml", project, hosts, venvs)
    done = decl("apply", "-y", "-f", manifest)
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "host badkey: authentication failed" in text, text
    assert "host stranger: host key unknown" in text and "accept_new_host_key" in text, text
    assert installed(str(tmp_path / "good"))["alpha"] == "1.0"
    assert not (tmp_path / "badkey").exists() and not (tmp_path / "stranger").exists()
    assert not (tmp_path / "empty_known_hosts").exists()


def test_a_no_op_plan_is_one_login_and_one_command_per_host(sshd_factory, wheels,  # noqa: F811
                                                           tmp_path, project):
    """Each host's discovery is one round trip: the provider's check (Python, venv module,
    uv) and the survey of the host's 3 venvs run as one command. Counted by each sshd
    (its log has a line per login and per session), not by decl."""
    hosts, venvs, servers = {}, {}, []
    for name in ("one", "two"):
        home = tmp_path / f"home-{name}"  # each host its own index, as real machines have
        home.mkdir()
        server = sshd_factory(env={**REMOTE_ENV, "HOME": str(home)})
        servers.append(server)
        hosts[name] = server.manifest_host(python=sys.executable)
        for j in range(3):
            venvs[f"{name}-{j}"] = {**venv_entry(tmp_path / name / f"v{j}", wheels,
                                                 ["alpha==1.0"]), "host": name}
    manifest = write_manifest(tmp_path / "decl.yaml", project, hosts, venvs)
    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    before = [len(server.log()) for server in servers]
    planned = decl("plan", "--detailed-exitcode", "-f", manifest)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    for server, start in zip(servers, before, strict=True):
        seen = server.log()[start:]
        assert seen.count("Accepted publickey") == 1, seen
        assert seen.count("Starting session:") == 1, seen
        assert "Starting session: command" in seen


def test_new_venvs_with_pip_on_a_host_share_one_pip_run(sshd_factory, wheels, tmp_path,  # noqa: F811
                                                        project):
    """On a remote host too the first venv's pip chooses the wheels and the host's python
    unpacks them into the others (seed.py run with `-c`): one pip process for three."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import json, os, sys\n"
        "with open(os.environ['DECL_TEST_PYTHON_LOG'], 'a') as f:\n"
        "    f.write(json.dumps(sys.argv) + '\\n')\n")
    log = tmp_path / "pythons.log"
    server = sshd_factory(env={**REMOTE_ENV, "PYTHONPATH": str(hook),
                               "DECL_TEST_PYTHON_LOG": str(log)})
    hosts = {"box": server.manifest_host(python=sys.executable)}
    paths = [tmp_path / f"env{i}" for i in range(3)]
    venvs = {p.name: venv_entry(p, wheels, ["alpha==1.0", "beta"], pip=True) for p in paths}
    manifest = write_manifest(tmp_path / "decl.yaml", project, hosts, venvs, "box")

    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    argvs = [json.loads(line) for line in log.read_text().splitlines()]
    pips = [a for a in argvs if "install" in a and a[0] != "-c"]
    assert len(pips) == 1 and "--report" in pips[0], pips
    unpacked = [a for a in argvs if a[0] == "-c" and '"install"' in a[-1]]
    assert len(unpacked) == 2, argvs
    for path in paths:
        assert installed(str(path)).items() >= {"alpha": "1.0", "beta": "1.0",
                                                "gamma": "1.0"}.items()
        site = next(path.glob("lib/python*/site-packages"))
        assert (site / "beta" / "__pycache__").is_dir()  # byte-compiled, as pip does
        assert (site / "beta-1.0.dist-info" / "REQUESTED").exists()
        assert not (site / "gamma-1.0.dist-info" / "REQUESTED").exists()
        check = subprocess.run([str(path / "bin" / "pip"), "check"], capture_output=True,
                               text=True, env={**os.environ, **CLEAN_PIP_ENV})
        assert check.returncode == 0, check.stdout + check.stderr
    assert decl("plan", "-f", manifest, "--detailed-exitcode").returncode == 0
