"""QEMU VMs end to end: decl's CLI starting real qemu-system-* processes (TCG)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time

import pytest

from tests.backends import missing_backend
from tests.e2e.vm_helpers import (
    actions,
    apply,
    assert_no_changes,
    decl,
    destroy,
    plan_json,
    qemu_img_info,
    sha256_of,
    status_json,
    write_manifest,
)
from tests.libvirt_daemon import http_server, make_qcow2

pytestmark = pytest.mark.backend("qemu")
MiB = 1024 * 1024


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A short VM root (QMP socket paths stay short), an isolated image cache."""
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            missing_backend("qemu", f"{tool} is not installed")
    root = tempfile.mkdtemp(prefix="dq-", dir="/tmp")
    monkeypatch.setenv("DECL_CACHE_DIR", str(tmp_path / "cache"))
    yield {"root": root, "dir": str(tmp_path)}
    for pidfile in _pidfiles(root):
        try:
            os.kill(int(open(pidfile).read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    shutil.rmtree(root, ignore_errors=True)


def _pidfiles(root: str) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        found += [os.path.join(dirpath, f) for f in files if f == "qemu.pid"]
    return found


def vm(lab: dict, **fields) -> dict:
    """A small TCG VM under the lab's root."""
    options = {"accel": "tcg", "vm_dir": lab["root"], "shutdown_timeout": 1}
    options.update(fields.pop("options", {}))
    base = {"provider": "qemu", "memory": "64MiB", "cpus": 1,
            "disks": [{"size": "16MiB"}], "network": {"mode": "none"}, "options": options}
    base.update(fields)
    return base


def pid_of(vmdir: str) -> int | None:
    """The pid of the VM's qemu if that process is alive."""
    try:
        pid = int(open(os.path.join(vmdir, "qemu.pid")).read().strip())
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except (OSError, ValueError):
        return None
    return pid if cmdline else None


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not open(f"/proc/{pid}/cmdline", "rb").read():
                return
        except OSError:
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still alive")


def test_lifecycle_create_update_restart_stop_start_crash_destroy(lab):
    images = os.path.join(lab["dir"], "www")
    os.makedirs(images)
    base = make_qcow2(os.path.join(images, "base.qcow2"), "16M")
    checksum = sha256_of(base)
    with http_server(images) as url:
        manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "qlife", {
            "web": vm(lab, disks=[{"image": f"{url}/base.qcow2", "checksum": checksum,
                                   "size": "32MiB"}],
                      network={"mode": "nat"}, options={"disk_mode": "copy"}),
        })
        assert actions(plan_json(manifest)) == {"vm.web": "create"}
        apply(manifest)
    vmdir = os.path.join(lab["root"], "qlife", "web")
    first = pid_of(vmdir)
    assert first is not None
    assert_no_changes(manifest)
    mark = json.load(open(os.path.join(vmdir, "decl.json")))
    assert mark["project"] == "qlife" and mark["address"] == "vm.web"
    info = qemu_img_info(os.path.join(vmdir, "disk-vda.qcow2"))
    assert info["virtual-size"] == 32 * MiB
    assert "backing-filename" not in info  # disk_mode copy: no backing file
    resources = status_json(manifest)["resources"]
    assert resources[0]["state"] == "running"
    assert resources[0]["details"]["accelerator"] == "tcg"

    # Memory: an update with a restart (a new process with the new size), converging.
    document = open(manifest).read().replace('"64MiB"', '"96MiB"')
    open(manifest, "w").write(document)
    plan = plan_json(manifest)
    assert actions(plan) == {"vm.web": "update_restart"}
    apply(manifest)
    second = pid_of(vmdir)
    assert second is not None and second != first
    assert "96M" in open(f"/proc/{second}/cmdline", "rb").read().decode().split("\0")
    assert_no_changes(manifest)

    # Stop, then start.
    open(manifest, "w").write(document.replace('"provider"', '"state": "stopped", "provider"'))
    assert actions(plan_json(manifest)) == {"vm.web": "stop"}
    apply(manifest)
    assert pid_of(vmdir) is None
    open(manifest, "w").write(document)
    assert actions(plan_json(manifest)) == {"vm.web": "start"}
    apply(manifest)
    third = pid_of(vmdir)
    assert third is not None

    # A VM whose process died is seen as stopped and started again by apply.
    os.kill(third, signal.SIGKILL)
    wait_gone(third)
    plan = plan_json(manifest)
    assert actions(plan) == {"vm.web": "start"}
    assert "is stopped" in plan["changes"][0]["cause"]
    apply(manifest)
    assert pid_of(vmdir) is not None

    # Destroy removes the VM and the files decl made, and nothing else.
    notes = os.path.join(vmdir, "notes.txt")
    open(notes, "w").write("mine")
    destroy(manifest)
    assert pid_of(vmdir) is None
    assert sorted(os.listdir(vmdir)) == ["notes.txt"]


def test_unmarked_directory_is_a_conflict_and_untouched(lab):
    vmdir = os.path.join(lab["root"], "qconf", "db")
    os.makedirs(vmdir)
    disk = make_qcow2(os.path.join(vmdir, "disk-vda.qcow2"))
    before = sha256_of(disk)
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "qconf",
                              {"db": vm(lab)})
    plan = plan_json(manifest)
    assert actions(plan) == {"vm.db": "conflict"}
    assert decl("apply", "-y", "-f", manifest).returncode != 0
    destroy(manifest)
    assert sorted(os.listdir(vmdir)) == ["disk-vda.qcow2"]
    assert sha256_of(disk) == before


def test_aarch64_guest_under_emulation_runs(lab):
    if shutil.which("qemu-system-aarch64") is None:
        missing_backend("qemu", "qemu-system-aarch64 is not installed (qemu-system-arm)")
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "qarm",
                              {"arm": vm(lab, arch="aarch64", memory="128MiB",
                                         options={"accel": "auto"})})
    apply(manifest)
    vmdir = os.path.join(lab["root"], "qarm", "arm")
    pid = pid_of(vmdir)
    assert pid is not None
    argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
    assert argv[0].endswith("qemu-system-aarch64")
    assert_no_changes(manifest)
    resources = status_json(manifest)["resources"]
    assert resources[0]["state"] == "running"
    assert resources[0]["details"]["accelerator"] == "tcg"
    destroy(manifest)
    assert pid_of(vmdir) is None
    assert not os.path.exists(vmdir)


def test_bad_input_is_a_plan_error(lab):
    from decl.providers.vmspec import QEMU_BINARY

    vms = {
        "img": vm(lab, disks=[{"image": "/nonexistent/base.qcow2"}]),
        "br": vm(lab, network={"mode": "bridge", "bridge": "nosuchbr0"}),
        "kvmarm": vm(lab, arch="aarch64", options={"accel": "kvm"}),
    }
    missing = next((a for a, b in QEMU_BINARY.items() if shutil.which(b) is None), None)
    if missing:
        vms["arch"] = vm(lab, arch=missing)
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "qbad", vms)
    errors = {e["address"]: e["message"] for e in plan_json(manifest)["errors"]}
    assert "/nonexistent/base.qcow2 does not exist" in errors["vm.img"]
    assert "bridge nosuchbr0 does not exist" in errors["vm.br"]
    assert "accel kvm is not possible" in errors["vm.kvmarm"]
    if missing:
        assert f"{QEMU_BINARY[missing]}, which is not installed" in errors["vm.arch"]
    assert decl("apply", "-y", "-f", manifest).returncode != 0
    assert not os.path.exists(os.path.join(lab["root"], "qbad"))


def _fields(plan: dict) -> dict:
    (change,) = plan["changes"]
    assert change["origin"] == "drift" and "changed outside decl" in change["cause"], change
    return {f["path"]: (f["before"], f["after"]) for f in change["fields"]}


def test_changes_outside_decl_are_seen_from_the_backend(lab):
    """Every observed field comes from qemu itself: the running process's command line and
    QMP, the seed ISO's content, the disk files; a stopped VM's launch config (its
    definition). Each changed outside decl shows as drift."""
    import subprocess

    from decl.providers import cloudinit
    from decl.providers.qemu.vmdir import qemu_argv

    if cloudinit.iso_tool(__import__("decl.connections.local", fromlist=["x"])
                          .LocalConnection()) is None:
        missing_backend("qemu", "cloud_init needs genisoimage, mkisofs or xorriso")
    isos = {name: os.path.join(lab["dir"], f"{name}.iso") for name in ("a", "b")}
    for path in isos.values():
        open(path, "wb").write(b"\0" * 65536)
    wanted = vm(lab, cloud_init={"hostname": "alpha"}, cdrom=isos["a"], arch="x86_64")
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "qdrift", {"web": wanted})
    apply(manifest)
    vmdir = os.path.join(lab["root"], "qdrift", "web")
    assert_no_changes(manifest)
    config = json.load(open(os.path.join(vmdir, "decl.json")))["config"]

    # qemu restarted by hand with more memory, another cpu count and a network
    pid = pid_of(vmdir)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    by_hand = {**config, "memory": 96 * MiB, "cpus": 2, "network": {"mode": "nat"}}
    done = subprocess.run(qemu_argv(by_hand, vmdir, False), cwd=vmdir, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    fields = _fields(plan_json(manifest))
    assert fields["memory"] == (96 * MiB, 64 * MiB) and fields["cpus"] == (2, 1)
    assert fields["network.mode"] == ("nat", "none")
    apply(manifest)
    assert_no_changes(manifest)

    # the seed ISO replaced: its content is read back
    cloudinit.make_seed_iso(__import__("decl.connections.local", fromlist=["x"])
                            .LocalConnection(), os.path.join(vmdir, "seed.iso"),
                            {"hostname": "beta", "user": None, "ssh_authorized_keys": []}, "web")
    fields = _fields(plan_json(manifest))
    assert fields["cloud_init"][0]["hostname"] == "beta"
    apply(manifest)
    assert_no_changes(manifest)

    # stopped: the definition qemu will start from, edited by hand
    stopped = write_manifest(manifest, "qdrift", {"web": {**wanted, "state": "stopped"}})
    apply(stopped)
    assert pid_of(vmdir) is None
    path = os.path.join(vmdir, "decl.json")
    mark = json.load(open(path))
    mark["config"].update(cdrom=isos["b"], memory=128 * MiB)
    json.dump(mark, open(path, "w"))
    fields = _fields(plan_json(stopped))
    assert fields["cdrom"] == (isos["b"], isos["a"])
    assert fields["memory"] == (128 * MiB, 64 * MiB)
    mark["config"].update(firmware="uefi", uefi_code="/usr/share/OVMF/OVMF_CODE.fd",
                          cdrom=isos["a"], memory=64 * MiB)
    json.dump(mark, open(path, "w"))
    plan = plan_json(stopped)
    assert _fields(plan)["firmware"] == ("uefi", "bios")
    assert plan["changes"][0]["action"] == "replace"
    mark["config"].update(firmware="bios", uefi_code=None, arch="aarch64",
                          binary="qemu-system-aarch64")
    json.dump(mark, open(path, "w"))
    plan = plan_json(stopped)
    assert _fields(plan)["arch"] == ("aarch64", "x86_64")
    assert plan["changes"][0]["action"] == "replace"
    destroy(stopped)
    assert not os.path.exists(vmdir)
