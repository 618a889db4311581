"""libvirt VMs end to end: decl's CLI against a real libvirtd, domains on QEMU TCG."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET

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
from tests.libvirt_daemon import (  # noqa: F401 - libvirtd is a fixture
    default_network_active,
    http_server,
    libvirtd,
    make_qcow2,
    shared_dir,
    undefine_all,
    virsh,
)

pytestmark = pytest.mark.backend("libvirt")
MiB = 1024 * 1024


@pytest.fixture
def lab(libvirtd, tmp_path):  # noqa: F811 - the fixture
    """A pool directory libvirt's qemu can reach, a unique name prefix, cleanup after."""
    pool = shared_dir("decl-lv-")
    prefix = f"dt{uuid.uuid4().hex[:6]}"
    yield {"pool": pool, "prefix": prefix, "dir": str(tmp_path)}
    undefine_all(prefix)
    shutil.rmtree(pool, ignore_errors=True)


def vm(lab: dict, **fields) -> dict:
    """A small TCG domain in the lab's pool."""
    options = {"domain_type": "qemu", "pool_dir": lab["pool"], "shutdown_timeout": 1}
    options.update(fields.pop("options", {}))
    base = {"provider": "libvirt", "memory": "64MiB", "cpus": 1,
            "disks": [{"size": "16MiB"}], "network": {"mode": "none"}, "options": options}
    base.update(fields)
    return base


def domstate(name: str) -> str:
    return virsh("domstate", name).stdout.strip()


def inactive_xml(name: str) -> ET.Element:
    done = virsh("dumpxml", "--inactive", name)
    assert done.returncode == 0, done.stderr
    return ET.fromstring(done.stdout)


def test_lifecycle_create_update_restart_stop_start_destroy(lab):
    name = f"{lab['prefix']}-web"
    images = os.path.join(lab["dir"], "www")
    os.makedirs(images)
    base = make_qcow2(os.path.join(images, "base.qcow2"), "16M")
    checksum = sha256_of(base)
    with http_server(images) as url:
        manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvlife", {
            name: vm(lab, disks=[{"image": f"{url}/base.qcow2", "checksum": checksum,
                                  "size": "32MiB"}, {"size": "8MiB"}],
                     network={"mode": "nat"} if default_network_active() else {"mode": "none"}),
        })
        plan = plan_json(manifest)
        assert actions(plan) == {f"vm.{name}": "create"}
        apply(manifest)
    assert domstate(name) == "running"
    assert_no_changes(manifest)

    # The first disk is a qcow2 overlay on the verified, cached image; it grew to 32MiB.
    disk = os.path.join(lab["pool"], f"{name}-vda.qcow2")
    info = qemu_img_info(disk)
    assert info["virtual-size"] == 32 * MiB
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    assert backing and backing.startswith(os.path.join(lab["pool"], "decl-images"))
    assert sha256_of(backing) == checksum
    # Marks live in <metadata> under decl's namespace.
    marks = inactive_xml(name).find(
        "metadata/{https://decl.dev/xmlns/libvirt/1}resource")
    assert marks is not None
    assert marks.findtext("{https://decl.dev/xmlns/libvirt/1}project") == "lvlife"

    # Memory: an update with a restart, and it converges.
    document = open(manifest).read().replace('"64MiB"', '"96MiB"')
    open(manifest, "w").write(document)
    plan = plan_json(manifest)
    assert actions(plan) == {f"vm.{name}": "update_restart"}
    assert "needs a restart" in plan["changes"][0]["cause"]
    apply(manifest)
    assert inactive_xml(name).findtext("memory") == str(96 * 1024)
    assert domstate(name) == "running"
    assert_no_changes(manifest)

    # A disk grows in place, never shrinks.
    document = document.replace('"32MiB"', '"48MiB"')
    open(manifest, "w").write(document)
    assert actions(plan_json(manifest)) == {f"vm.{name}": "update"}
    apply(manifest)
    assert qemu_img_info(disk)["virtual-size"] == 48 * MiB
    open(manifest, "w").write(document.replace('"48MiB"', '"16MiB"'))
    plan = plan_json(manifest)
    assert "cannot shrink" in plan["errors"][0]["message"]
    open(manifest, "w").write(document)

    # Stop, then start.
    open(manifest, "w").write(document.replace('"provider"', '"state": "stopped", "provider"'))
    assert actions(plan_json(manifest)) == {f"vm.{name}": "stop"}
    apply(manifest)
    assert domstate(name) == "shut off"
    open(manifest, "w").write(document)
    assert actions(plan_json(manifest)) == {f"vm.{name}": "start"}
    apply(manifest)
    assert domstate(name) == "running"

    # Destroy removes the domain and the disks decl made, and nothing else.
    bystander = os.path.join(lab["pool"], "not-decls.qcow2")
    make_qcow2(bystander)
    destroy(manifest)
    assert virsh("dominfo", name).returncode != 0
    assert not os.path.exists(disk)
    assert not os.path.exists(os.path.join(lab["pool"], f"{name}-vdb.qcow2"))
    assert os.path.exists(bystander)
    assert os.path.exists(backing)  # the image cache stays for the next VM


def test_drift_is_reported(lab):
    name = f"{lab['prefix']}-drift"
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvdrift",
                              {name: vm(lab, state="stopped")})
    apply(manifest)
    assert virsh("setvcpus", name, "2", "--config", "--maximum").returncode == 0
    assert virsh("setvcpus", name, "2", "--config").returncode == 0
    plan = plan_json(manifest)
    change = plan["changes"][0]
    assert change["action"] == "update" and change["origin"] == "drift"
    assert "changed outside decl" in change["cause"]
    apply(manifest)
    assert inactive_xml(name).findtext("vcpu") == "1"
    destroy(manifest)


def test_unmarked_domain_is_a_conflict_and_untouched(lab):
    name = f"{lab['prefix']}-mine"
    disk = make_qcow2(os.path.join(lab["pool"], "hand.qcow2"))
    by_hand = f"""<domain type='qemu'><name>{name}</name><memory unit='KiB'>65536</memory>
      <vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk></devices></domain>"""
    done = subprocess.run(["virsh", "-c", "qemu:///system", "define", "/dev/stdin"],
                          input=by_hand, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    before = virsh("dumpxml", "--inactive", name).stdout
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvconf",
                              {name: vm(lab, memory="128MiB")})
    plan = plan_json(manifest)
    assert actions(plan) == {f"vm.{name}": "conflict"}
    assert "adopt" in plan["changes"][0]["cause"]
    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode != 0
    destroy(manifest)
    assert virsh("dumpxml", "--inactive", name).stdout == before
    assert domstate(name) == "shut off"
    assert os.path.exists(disk)


def test_aarch64_guest_under_emulation_runs(lab):
    if shutil.which("qemu-system-aarch64") is None:
        missing_backend("qemu-aarch64", "qemu-system-aarch64 is not installed "
                        "(Debian: qemu-system-arm)")
    name = f"{lab['prefix']}-arm"
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvarm",
                              {name: vm(lab, arch="aarch64", memory="128MiB")})
    apply(manifest)
    assert domstate(name) == "running"
    root = inactive_xml(name)
    assert root.find("os/type").get("arch") == "aarch64"
    assert root.get("type") == "qemu"
    assert_no_changes(manifest)
    resources = status_json(manifest)["resources"]
    assert resources[0]["state"] == "running"
    assert resources[0]["details"]["accelerator"] == "tcg"
    destroy(manifest)
    assert virsh("dominfo", name).returncode != 0


def _missing_arch() -> str | None:
    from decl.providers.vmspec import QEMU_BINARY

    for arch, binary in QEMU_BINARY.items():
        if shutil.which(binary) is None:
            return arch
    return None


def test_bad_input_is_a_plan_error(lab):
    name = lab["prefix"]
    vms = {
        f"{name}-img": vm(lab, disks=[{"image": "/nonexistent/base.qcow2"}]),
        f"{name}-br": vm(lab, network={"mode": "bridge", "bridge": "nosuchbr0"}),
    }
    arch = _missing_arch()
    if arch:
        vms[f"{name}-arch"] = vm(lab, arch=arch)
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvbad", vms)
    plan = plan_json(manifest)
    errors = {e["address"]: e["message"] for e in plan["errors"]}
    assert "does not exist" in errors[f"vm.{name}-img"]
    assert "bridge nosuchbr0 does not exist" in errors[f"vm.{name}-br"]
    if arch:
        assert "not installed" in errors[f"vm.{name}-arch"]
    done = decl("apply", "-y", "-f", manifest)
    assert done.returncode != 0
    assert virsh("list", "--all", "--name").stdout.count(name) == 0


def test_unknown_option_is_an_error(lab):
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvopt",
                              {f"{lab['prefix']}-o": vm(lab, options={"domian_type": "kvm"})})
    done = decl("plan", "-f", manifest)
    assert done.returncode == 1
    assert "domian_type" in done.stdout + done.stderr


def test_over_ssh(lab, request):
    from tests.sshd import start_sshd

    try:
        server = start_sshd(request.getfixturevalue("tmp_path_factory").mktemp("lvsshd"))
    except FileNotFoundError as exc:
        from tests.backends import missing_backend

        missing_backend("sshd", str(exc))
        return
    try:
        name = f"{lab['prefix']}-ssh"
        manifest = write_manifest(
            os.path.join(lab["dir"], "decl.yaml"), "lvssh",
            {name: vm(lab, host="box")}, hosts={"box": server.manifest_host()})
        assert actions(plan_json(manifest)) == {f"vm.{name}": "create"}
        apply(manifest)
        assert domstate(name) == "running"
        assert_no_changes(manifest)
        destroy(manifest)
        assert virsh("dominfo", name).returncode != 0
        assert not os.path.exists(os.path.join(lab["pool"], f"{name}-vda.qcow2"))
    finally:
        server.stop()


def test_cloud_init_is_read_from_the_seed_iso(lab):
    from decl.connections.local import LocalConnection
    from decl.providers import cloudinit

    if cloudinit.iso_tool(LocalConnection()) is None:
        from tests.backends import missing_backend

        missing_backend("libvirt", "cloud_init needs genisoimage, mkisofs or xorriso")
    name = f"{lab['prefix']}-ci"
    wanted = vm(lab, state="stopped", cloud_init={"hostname": "alpha", "user": "lab"})
    manifest = write_manifest(os.path.join(lab["dir"], "decl.yaml"), "lvci", {name: wanted})
    apply(manifest)
    assert_no_changes(manifest)
    seed = os.path.join(lab["pool"], f"{name}-seed.iso")
    cloudinit.make_seed_iso(LocalConnection(), seed,
                            {"hostname": "beta", "user": "lab", "ssh_authorized_keys": []},
                            name)
    change = plan_json(manifest)["changes"][0]
    assert change["origin"] == "drift" and "changed outside decl" in change["cause"]
    assert [f["path"] for f in change["fields"]] == ["cloud_init"]
    assert change["fields"][0]["before"]["hostname"] == "beta"
    apply(manifest)
    assert cloudinit.read_seed(open(seed, "rb").read())["hostname"] == "alpha"
    assert_no_changes(manifest)
    destroy(manifest)
