"""`decl import`: unmarked objects become manifest entries with `adopt: true`; the next plan
adopts them with no other change and the plan after that is empty (docker, libvirt, venv)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.docker_engine import TEST_IMAGE, docker_engine  # noqa: F401 - session fixture
from tests.fakes.windows.harness import fake_windows_fixture, run_decl  # noqa: F401
from tests.libvirt_daemon import libvirtd, make_qcow2, shared_dir, undefine_all, virsh  # noqa: F401
from tests.wheelhouse import standard_wheelhouse

MANIFEST_HEAD = """\
# The lab, written by hand.
version: 1
project: {project}   # the project

# what we have so far
{body}
"""


def decl(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "UV_"))}
    env.update({"PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1", "NO_COLOR": "1"})
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True, text=True,
                          timeout=600, check=False, env=env, cwd=cwd)


def plan(manifest: pathlib.Path) -> dict:
    done = decl("plan", "-f", str(manifest), "--json")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    return json.loads(done.stdout)


def round_trip(manifest: pathlib.Path, provider: str, names: list[str], *extra: str,
               expect: set[str]) -> str:
    """import (printed, then --write), plan = only adopts with no fields, apply, plan empty."""
    shown = decl("import", "-f", str(manifest), "--provider", provider, *extra, *names)
    assert shown.returncode == 0, shown.stderr
    for address in expect:
        assert f"  {address.split('.', 1)[1]}:\n" in shown.stdout, shown.stdout
    assert shown.stdout.count("adopt: true") == len(expect), shown.stdout
    before = manifest.read_text()
    written = decl("import", "-f", str(manifest), "--provider", provider, "--write", *extra,
                   *names)
    assert written.returncode == 0, written.stderr
    assert "Added" in written.stdout
    text = manifest.read_text()
    for line in before.splitlines():  # every line written by hand is still there
        if not line.endswith(": {}"):  # (the empty section now holds the entries)
            assert line in text.splitlines()
    first = plan(manifest)
    adopted = {c["address"] for c in first["changes"] if c["action"] == "adopt"}
    assert adopted == expect, first["changes"]
    for change in first["changes"]:
        assert change["action"] == "adopt" and change["fields"] == [], change
    applied = decl("apply", "-y", "-f", str(manifest))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = decl("plan", "-f", str(manifest), "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr
    return text


# -- venv -------------------------------------------------------------------------------------

def test_venvs_in_a_directory_are_imported_and_adopted(tmp_path):
    wheels = standard_wheelhouse(tmp_path / "wheels")
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    for name, packages in (("tools", ["alpha==1.0", "beta"]), ("bare", [])):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venvs / name)],
                       check=True)
        if packages:
            subprocess.run([sys.executable, "-m", "pip", "--python",
                            str(venvs / name / "bin" / "python"), "install", "-q",
                            "--no-index", "--find-links", str(wheels), *packages],
                           check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    (venvs / "not-a-venv").mkdir()
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(MANIFEST_HEAD.format(project="impvenv", body="venvs: {}\n"))
    text = round_trip(manifest, "venv", [], "--path", str(venvs),
                      expect={"venv.tools", "venv.bare"})
    assert "packages: [alpha==1.0, beta==1.0]" in text  # gamma is beta's: not listed
    assert "# what we have so far" in text and "# the project" in text
    again = decl("import", "-f", str(manifest), "--provider", "venv", "--path", str(venvs))
    assert "0 objects" in again.stdout and "adopt: true" not in again.stdout


def test_import_needs_paths_for_venvs_and_names_what_is_missing(tmp_path):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text("version: 1\nproject: impmsg\n")
    done = decl("import", "-f", str(manifest), "--provider", "venv")
    assert done.returncode == 1
    assert done.stderr == "error: venvs can be anywhere: give the directories to look in " \
        "with --path DIR\n"
    done = decl("import", "-f", str(manifest), "--provider", "venv", "--path", str(tmp_path),
                "ghost")
    assert done.returncode == 1 and "nothing to import named ghost on host local" in done.stderr
    done = decl("import", "-f", str(manifest), "--provider", "wsl", "--host", "nas")
    assert done.returncode == 1 and "no host nas in" in done.stderr


# -- docker -----------------------------------------------------------------------------------

@pytest.mark.backend("docker")
def test_containers_are_imported_and_adopted_networks_and_volumes_are_explained(
        tmp_path, docker_engine):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    net, vol, web = f"imp{tag}-net", f"imp{tag}-data", f"imp{tag}-web"
    for argv in (["network", "create", "--subnet", "10.78.0.0/24", net],
                 ["volume", "create", vol],
                 ["run", "-d", "--name", web, "--init", "--network", net, "-v", f"{vol}:/data",
                  "-e", "MODE=one", "-p", "127.0.0.1::8080", "--memory", "64m",
                  "--restart", "unless-stopped", "--label", "team=lab", TEST_IMAGE,
                  "sleep", "3600"],
                 ["create", "--name", f"imp{tag}-idle", TEST_IMAGE, "true"]):
        done = docker_engine.docker(*argv)
        assert done.returncode == 0, done.stderr
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(MANIFEST_HEAD.format(project=f"impd{tag}", body="containers: {}\n"))
    shown = decl("import", "-f", str(manifest), "--provider", "docker")
    assert f"# not importable: network.{net}: the engine cannot add labels" in shown.stdout
    assert f"# not importable: volume.{vol}:" in shown.stdout
    text = round_trip(manifest, "docker", [web, f"imp{tag}-idle"],
                      expect={f"container.{web}", f"container.imp{tag}-idle"})
    assert "    restart: unless-stopped\n" in text and "    memory: 64MiB\n" in text
    assert '    command: [sleep, "3600"]\n' in text and "    init: true\n" in text
    assert "    state: stopped\n" in text  # the container that was created, not started
    labels = json.loads(docker_engine.docker("inspect", web).stdout)[0]["Config"]["Labels"]
    assert labels["io.decl.project"] == f"impd{tag}" and labels["team"] == "lab"


# -- libvirt ----------------------------------------------------------------------------------

@pytest.mark.backend("libvirt")
def test_a_domain_defined_by_hand_is_imported_and_adopted(tmp_path, libvirtd):  # noqa: F811
    prefix = f"dt{uuid.uuid4().hex[:6]}"
    pool = shared_dir("decl-imp-")
    try:
        disk = make_qcow2(os.path.join(pool, "hand.qcow2"), "16M")
        name = f"{prefix}-hand"
        by_hand = f"""<domain type='qemu'><name>{name}</name><memory unit='KiB'>65536</memory>
          <vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>
          <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
          <source file='{disk}'/><target dev='vda' bus='virtio'/></disk></devices></domain>"""
        done = subprocess.run(["virsh", "-c", "qemu:///system", "define", "/dev/stdin"],
                              input=by_hand, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        manifest = tmp_path / "decl.yaml"
        manifest.write_text(MANIFEST_HEAD.format(project=f"impl{prefix}", body="vms: {}\n"))
        text = round_trip(manifest, "libvirt", [name], expect={f"vm.{name}"})
        assert "    memory: 64MiB\n" in text
        assert "    lifecycle: {ignore_changes: [disk_source]}\n" in text
        assert "    state: stopped\n" in text
        xml = virsh("dumpxml", "--inactive", name).stdout
        assert f"impl{prefix}" in xml  # the marks are in the domain's metadata now
        assert os.path.exists(disk)
    finally:
        undefine_all(prefix)
        shutil.rmtree(pool, ignore_errors=True)


# -- WSL (the stateful fake wsl.exe) ----------------------------------------------------------

def test_a_wsl_distro_made_by_hand_is_imported_and_adopted(fake_windows, tmp_path):
    fake = fake_windows
    fake.add_file("C:\\images\\rootfs.tar")
    subprocess.run(["wsl.exe", "--import", "dev", "C:\\mine", "C:\\images\\rootfs.tar",
                    "--version", "1"], env=fake.env(), check=True, capture_output=True)
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(MANIFEST_HEAD.format(project="impwsl", body="wsl: {}\n"))
    cmd = [sys.executable, "-m", "decl"]
    written = run_decl(fake, cmd, "import", "-f", str(manifest), "--provider", "wsl",
                       "--write")
    assert written.returncode == 0, written.stdout + written.stderr
    text = manifest.read_text()
    assert "  dev:\n    source: {distribution: dev}\n    version: 1\n" in text, text
    first = json.loads(run_decl(fake, cmd, "plan", "-f", str(manifest), "--json").stdout)
    assert [(c["address"], c["action"], c["fields"]) for c in first["changes"]] == \
        [("wsl.dev", "adopt", [])]
    assert run_decl(fake, cmd, "apply", "-y", "-f", str(manifest)).returncode == 0
    after = run_decl(fake, cmd, "plan", "-f", str(manifest), "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr
    assert fake.load()["wsl"]["distros"]["dev"]["version"] == 1


# -- QEMU -------------------------------------------------------------------------------------

def test_qemu_vm_directories_without_marks_are_listed_with_why_they_cannot_be_adopted(
        tmp_path):
    from tests.backends import missing_backend

    if shutil.which("qemu-img") is None:
        missing_backend("qemu", "qemu-img is not installed (apt-get install qemu-utils)")
    vms = tmp_path / "vms"
    (vms / "db").mkdir(parents=True)
    make_qcow2(str(vms / "db" / "disk-vda.qcow2"), "16M")
    manifest = tmp_path / "decl.yaml"
    manifest.write_text("version: 1\nproject: impqemu\n")
    shown = decl("import", "-f", str(manifest), "--provider", "qemu", "--path", str(vms))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "# decl import: 0 objects on host local (provider qemu) that the manifest does not "
        "name yet",
        f"# not importable: vm.db: {vms / 'db'} has no decl.json, so its CPUs, memory and how "
        "it starts cannot be read back (disks: vda 16MiB); write its entry by hand with "
        "adopt: true"]
    assert sorted(os.listdir(vms / "db")) == ["disk-vda.qcow2"]
