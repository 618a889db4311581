"""`decl import` of the VMs of ESXi, Xen, Parallels and UTM, each on its stateful fake: a VM
made behind decl's back is listed as a manifest entry with `adopt: true`, written with
--write, adopted by the next plan with no other change, and the plan after the apply is
empty; the VM's settings decl does not manage are left as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.datacenter.harness import FakeEsxi, esxi_over_sshd
from tests.sshd import free_port, sshd_factory  # noqa: F401 - fixtures

ROOT = str(Path(__file__).resolve().parents[2])

HEAD = """\
# The lab, written by hand.
version: 1
project: {project}   # the project
{hosts}
# the VMs so far
vms: {{}}
"""


def decl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": ROOT, "NO_COLOR": "1", **env})


def write_head(path: Path, project: str, hosts: dict | None = None) -> Path:
    lines = "".join(f"  {name}: {json.dumps(host)}\n" for name, host in (hosts or {}).items())
    path.write_text(HEAD.format(project=project, hosts=f"hosts:\n{lines}" if lines else ""))
    return path


def round_trip(env: dict[str, str], manifest: Path, provider: str, select: list[str],
               *extra: str, expect: set[str]) -> str:
    """import (printed, then --write), a plan of adopts with no fields, apply, empty plan;
    the manifest's text after --write."""
    shown = decl(env, "import", "-f", str(manifest), "--provider", provider, *extra, *select)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.count("adopt: true") == len(expect), shown.stdout
    before = manifest.read_text()
    written = decl(env, "import", "-f", str(manifest), "--provider", provider, "--write",
                   *extra, *select)
    assert written.returncode == 0, written.stdout + written.stderr
    text = manifest.read_text()
    for line in before.splitlines():
        if not line.endswith(": {}"):
            assert line in text.splitlines(), text
    done = decl(env, "plan", "--json", "-f", str(manifest))
    assert done.returncode in (0, 2), done.stdout + done.stderr
    changes = json.loads(done.stdout)["changes"]
    assert {c["address"] for c in changes} == expect, changes
    for change in changes:
        assert change["action"] == "adopt" and change["fields"] == [], change
    applied = decl(env, "apply", "-y", "-f", str(manifest))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = decl(env, "plan", "--detailed-exitcode", "-f", str(manifest))
    assert after.returncode == 0, after.stdout + after.stderr
    return text


# -- ESXi (fake vim-cmd, vmkfstools over the tests' sshd) --------------------------------------

@pytest.fixture
def esxi(tmp_path, sshd_factory):  # noqa: F811
    fake = FakeEsxi(tmp_path / "esxi")
    return fake, esxi_over_sshd(fake, sshd_factory)


def test_esxi_vm_made_by_hand_is_imported_and_adopted(esxi, tmp_path):
    fake, host = esxi
    env = {"DECL_FAKE_ESXI_STATE": "/nonexistent"}  # the tools are on the SSH side only
    fake.add_vm("Build Box (2)", disk_gib=2, keys={
        "numvcpus": "2", "memSize": "3072", "firmware": "efi", "guestOS": "debian12-64",
        "ethernet0.networkName": "Lab Net", "ethernet0.virtualDev": "e1000",
        "annotation": "made by hand", "scsi0:1.present": "TRUE",
        "scsi0:1.deviceType": "scsi-hardDisk", "scsi0:1.fileName": "extra.vmdk"})
    folder = os.path.join(fake.datastore(), "Build Box (2)")
    assert fake.run("vmkfstools", "-c", "512M", "-d", "thin",
                    os.path.join(folder, "extra.vmdk")).returncode == 0
    fake.add_vm("web", power="on")
    manifest = write_head(tmp_path / "decl.yaml", "impesxi", {"esx": host})

    listed = decl(env, "import", "-f", str(manifest), "--host", "esx", "--provider", "esxi")
    assert listed.returncode == 0, listed.stderr
    assert "# decl import: 2 objects on host esx (provider esxi)" in listed.stdout
    assert "  web:\n    provider: esxi\n    host: esx\n    cpus: 1\n    memory: 1GiB\n" \
        "    disks:\n      - {size: 1GiB}\n    adopt: true\n" in listed.stdout, listed.stdout

    text = round_trip(env, manifest, "esxi", ["Build-Box-2"], "--host", "esx",
                      expect={"vm.Build-Box-2"})
    assert "  Build-Box-2:\n    provider: esxi\n    host: esx\n    state: stopped\n" \
        "    cpus: 2\n    memory: 3GiB\n    firmware: uefi\n" \
        "    disks:\n      - {size: 2GiB}\n      - {size: 512MiB}\n" in text, text
    assert "port_group: Lab Net" in text and "display_name: Build Box (2)" in text
    assert "guest_os: debian12-64" in text and "adopt: true" in text
    vm = fake.vms()["Build Box (2)"]
    keys = vm["keys"]
    assert keys["guestinfo.decl.project"] == "impesxi"
    assert keys["guestinfo.decl.address"] == "vm.Build-Box-2"
    assert (keys["numvcpus"], keys["memsize"], keys["firmware"], keys["guestos"]) == \
        ("2", "3072", "efi", "debian12-64")
    assert (keys["annotation"], keys["ethernet0.virtualdev"], keys["scsi0:1.filename"]) == \
        ("made by hand", "e1000", "extra.vmdk")
    assert vm["power"] == "off" and fake.vms()["web"]["power"] == "on"
    assert "guestinfo.decl.project" not in fake.vms()["web"]["keys"]
