"""WSL and Hyper-V over SSH: decl's SSH connection (shell: powershell) to the tests' own
sshd, whose ForceCommand plays Windows OpenSSH: it parses decl's PowerShell command line
and runs the fakes on the SSH side."""

from __future__ import annotations

import json
import os
import shlex

import pytest

from tests.fakes.windows.harness import FAKES_BIN, FakeWindows, run_decl, write_manifest
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.backend("sshd")

SHIM = os.path.join(FAKES_BIN, "pwsh-sshd-shim")
TARBALL = "C:\\images\\rootfs.tar"


@pytest.fixture
def windows_over_ssh(tmp_path, sshd_factory):  # noqa: F811
    """(fake Windows host, manifest host entry) for an sshd that runs the fakes."""
    fake = FakeWindows(tmp_path / "remote-windows.json")
    command = (f"env DECL_FAKE_WINDOWS_STATE={shlex.quote(str(fake.path))} "
               f"PATH={shlex.quote(FAKES_BIN)}:/usr/bin:/bin {shlex.quote(SHIM)}")
    server = sshd_factory(force_command=command)
    return fake, server.manifest_host(shell="powershell")


def local_env_without_fakes(fake: FakeWindows) -> dict[str, str]:
    """This side has no wsl.exe or PowerShell: only the SSH side does."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FAKES_BIN]
    return {"PATH": os.pathsep.join(path), "DECL_FAKE_WINDOWS_STATE": str(fake.path) + ".nope"}


def test_wsl_over_ssh(windows_over_ssh, decl_cmd, tmp_path):
    fake, host = windows_over_ssh
    fake.add_file(TARBALL)
    wanted = {"dev": {"host": "winbox", "source": {"tarball": TARBALL},
                      "location": "C:\\WSL\\it's dev", "user": "alice", "state": "running",
                      "default": True}}
    path = write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": "lab",
                                                    "hosts": {"winbox": host}, "wsl": wanted})
    env = local_env_without_fakes(fake)
    done = run_decl(fake, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    distro = fake.load()["wsl"]["distros"]["dev"]
    assert distro["location"] == "C:\\WSL\\it's dev"  # passed through unchanged
    assert distro["state"] == "Running"
    with open(os.path.join(distro["root"], "etc", "decl.json")) as handle:
        assert json.load(handle)["io.decl.address"] == "wsl.dev"
    again = run_decl(fake, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    done = run_decl(fake, decl_cmd, "destroy", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.load()["wsl"]["distros"] == {}


def test_hyperv_over_ssh(windows_over_ssh, decl_cmd, tmp_path):
    fake, host = windows_over_ssh
    wanted = {"web": {"provider": "hyperv", "host": "winbox", "cpus": 2, "memory": "1GiB",
                      "disks": [{"size": "2GiB"}],
                      "options": {"disk_dir": "\\\\nas\\vms\\o'neil"}}}
    path = write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": "lab",
                                                    "hosts": {"winbox": host}, "vms": wanted})
    env = local_env_without_fakes(fake)
    done = run_decl(fake, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    vm = fake.load()["hyperv"]["vms"][0]
    assert (vm["Name"], vm["State"], vm["ProcessorCount"]) == ("web", 2, 2)
    assert vm["Disks"] == ["\\\\nas\\vms\\o'neil\\web.vhdx"]  # UNC path unchanged
    wanted["web"]["memory"] = "2GiB"
    path = write_manifest(path, {"version": 1, "project": "lab", "hosts": {"winbox": host},
                                 "vms": wanted})
    done = run_decl(fake, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0 and "updated with a restart" in done.stdout, done.stdout
    assert fake.load()["hyperv"]["vms"][0]["MemoryStartup"] == 2 * 1024**3
    done = run_decl(fake, decl_cmd, "destroy", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.load()["hyperv"]["vms"] == [] and fake.load()["hyperv"]["vhds"] == {}
