"""A Mac reached over SSH: Parallels works through prlctl; UTM cannot be scripted from an
SSH session, and decl says why. The tests' own sshd runs the fakes on the SSH side (as a
Mac's sshd runs the real tools), with the session's SSH_CONNECTION set as on a Mac."""

from __future__ import annotations

import json
import os
import shlex
import sys

import pytest

from tests.fakes.mac.harness import FAKES_BIN, FakeMac, run_decl, write_manifest
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.backend("sshd")


@pytest.fixture
def mac_over_ssh(tmp_path, sshd_factory):  # noqa: F811
    """(fake Mac, manifest host entry) for an sshd whose sessions see the fakes."""
    fake = FakeMac(tmp_path / "remote-mac.json")
    path = os.pathsep.join([FAKES_BIN, os.path.dirname(sys.executable), "/usr/bin", "/bin"])
    command = (f"env DECL_FAKE_MAC_STATE={shlex.quote(str(fake.path))} "
               f"PATH={shlex.quote(path)} /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"")
    server = sshd_factory(force_command=command)
    return fake, server.manifest_host()


def local_env_without_fakes(fake: FakeMac) -> dict[str, str]:
    """This side has no prlctl, utmctl or osascript: only the SSH side does."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FAKES_BIN]
    return {"PATH": os.pathsep.join(path), "DECL_FAKE_MAC_STATE": str(fake.path) + ".nope"}


def test_parallels_over_ssh(mac_over_ssh, decl_cmd, tmp_path):
    fake, host = mac_over_ssh
    wanted = {"web": {"provider": "parallels", "host": "mac", "cpus": 2, "memory": "2GiB",
                      "disks": [{"size": "10GiB"}]}}
    path = write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": "lab",
                                                    "hosts": {"mac": host}, "vms": wanted})
    env = local_env_without_fakes(fake)
    done = run_decl(fake, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    web = fake.parallels_vms()["web"]
    assert (web["state"], web["cpus"], web["memsize"]) == ("running", 2, 2048)
    again = run_decl(fake, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    done = run_decl(fake, decl_cmd, "destroy", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.parallels_vms() == {}


def test_utm_over_ssh_says_why_it_cannot(mac_over_ssh, decl_cmd, tmp_path):
    fake, host = mac_over_ssh
    wanted = {"web": {"provider": "utm", "host": "mac", "disks": [{"size": "10GiB"}]}}
    path = write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": "lab",
                                                    "hosts": {"mac": host}, "vms": wanted})
    env = local_env_without_fakes(fake)
    done = run_decl(fake, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    out = done.stdout + done.stderr
    assert "logged-in GUI session" in out and "SSH" in out, out
    assert fake.utm_vms() == {}
    providers = run_decl(fake, decl_cmd, "providers", "--json", "-f", str(path), env=env)
    rows = json.loads(providers.stdout)
    rows = rows.get("providers", rows) if isinstance(rows, dict) else rows
    utm = next(r for r in rows if r["provider"] == "utm" and r["host"] == "mac")
    assert utm["status"] == "missing" and "logged-in GUI session" in utm["detail"], utm
    parallels = next(r for r in rows if r["provider"] == "parallels" and r["host"] == "mac")
    assert (parallels["status"], parallels["version"]) == ("available", "26.1.1"), parallels
