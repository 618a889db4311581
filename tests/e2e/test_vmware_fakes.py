"""VMware Workstation/Fusion VMs end to end: the decl CLI against the stateful fakes of
vmrun and vmware-vdiskmanager, with the .vmx files on disk."""

from __future__ import annotations

import base64
import os
import subprocess

import pytest

from decl.providers.vmware.output import vmdk_capacity
from decl.providers.vmware.vmx import VmxDocument
from tests.fakes.desktop.harness import (  # noqa: F401 - fake_desktop_fixture is a fixture
    FAKES_BIN,
    FakeDesktop,
    fake_desktop_fixture,
    plan_json,
    run_decl,
    write_manifest,
)
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

GIB = 1024**3
MIB = 1024**2


@pytest.fixture
def host(fake_desktop, tmp_path):
    return fake_desktop


def manifest(tmp_path, vms, project="lab", hosts=None):
    for vm in vms.values():
        vm.setdefault("provider", "vmware")
        vm.setdefault("options", {})
        vm["options"].setdefault("vm_dir", str(tmp_path / "vms"))
        vm["options"].setdefault("shutdown_timeout", 3)
    document = {"version": 1, "project": project, "vms": vms}
    if hosts:
        document["hosts"] = hosts
    return write_manifest(tmp_path / "decl.yaml", document)


def decl(fake, decl_cmd, tmp_path, *args, env=None):
    """The CLI with HOME in the test's directory (the per-host index lives there)."""
    return run_decl(fake, decl_cmd, *args, env={"HOME": str(tmp_path / "home"), **(env or {})})


def apply(fake, decl_cmd, tmp_path, path, *extra, env=None, command="apply"):
    done = decl(fake, decl_cmd, tmp_path, command, "-y", *extra, "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def plan(fake, decl_cmd, tmp_path, path):
    done = decl(fake, decl_cmd, tmp_path, "plan", "--json", "-f", str(path))
    import json

    changes = json.loads(done.stdout)["changes"]
    conflict = any(c["action"] == "conflict" for c in changes)  # a conflict exits 1 (README)
    assert done.returncode in ((1,) if conflict else (0, 2)), done.stdout + done.stderr
    return [(c["address"], c["action"]) for c in changes if c["action"] != "noop"]


def assert_noop(fake, decl_cmd, tmp_path, path):
    again = decl(fake, decl_cmd, tmp_path, "plan", "--detailed-exitcode", "-f", str(path))
    assert again.returncode == 0, again.stdout + again.stderr


def vmx_path(tmp_path, name):
    return tmp_path / "vms" / name / f"{name}.vmx"


def vmx(tmp_path, name) -> VmxDocument:
    return VmxDocument(vmx_path(tmp_path, name).read_text())


def running(fake: FakeDesktop) -> list[str]:
    return list(fake.load()["vmware"]["running"])


def disk_size(tmp_path, name, dev):
    return vmdk_capacity((tmp_path / "vms" / name / f"{name}-{dev}.vmdk").read_bytes())


def vmrun_calls(fake):
    return [argv[2:] for argv in fake.calls("vmrun")]


def test_lifecycle_create_noop_restart_grow_stop_start_destroy(host, decl_cmd, tmp_path):
    wanted = {
        "web": {"cpus": 2, "memory": "2GiB", "firmware": "uefi",
                "disks": [{"size": "3GiB"}, {"size": "512MiB"}],
                "cloud_init": {"hostname": "web", "user": "lab",
                               "ssh_authorized_keys": ["ssh-ed25519 AAAA test"]},
                "options": {"guest_os": "ubuntu-64", "nic_type": "vmxnet3"}},
        "db": {"memory": "1GiB", "state": "stopped", "network": {"mode": "none"},
               "disks": [{"size": "1GiB"}]},
    }
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, tmp_path, path)
    web = vmx(tmp_path, "web")
    assert (web.get("numvcpus"), web.get("memsize"), web.get("firmware"),
            web.get("guestOS"), web.get("ethernet0.virtualDev")) == \
        ("2", "2048", "efi", "ubuntu-64", "vmxnet3")
    assert (web.get("decl.project"), web.get("decl.address")) == ("lab", "vm.web")
    userdata = base64.b64decode(web.get("guestinfo.userdata") or "").decode()
    assert userdata.startswith("#cloud-config") and "ssh-ed25519 AAAA test" in userdata
    assert running(host) == [str(vmx_path(tmp_path, "web"))]
    assert web.get("uuid.bios")  # added by VMware at power-on
    assert disk_size(tmp_path, "web", "vda") == 3 * GIB
    assert disk_size(tmp_path, "web", "vdb") == 512 * MIB
    db = vmx(tmp_path, "db")
    assert db.get("ethernet0.present") == "FALSE"
    assert ["start", str(vmx_path(tmp_path, "web")), "nogui"] in vmrun_calls(host)

    assert_noop(host, decl_cmd, tmp_path, path)

    # memory of a running VM: stop (soft), edit the .vmx, start
    wanted["web"]["memory"] = "4GiB"
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.web", "update_restart")]
    host.clear_calls()
    apply(host, decl_cmd, tmp_path, path)
    sent = vmrun_calls(host)
    vmx_file = str(vmx_path(tmp_path, "web"))
    assert sent.index(["stop", vmx_file, "soft"]) < sent.index(["start", vmx_file, "nogui"])
    assert ["stop", vmx_file, "hard"] not in sent
    assert vmx(tmp_path, "web").get("memsize") == "4096"
    assert running(host) == [vmx_file]
    assert_noop(host, decl_cmd, tmp_path, path)

    # grow a disk (powered off), never shrink
    wanted["web"]["disks"][1]["size"] = "1GiB"
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.web", "update_restart")]
    apply(host, decl_cmd, tmp_path, path)
    assert disk_size(tmp_path, "web", "vdb") == GIB
    assert_noop(host, decl_cmd, tmp_path, path)
    wanted["web"]["disks"][1]["size"] = "512MiB"
    shrink = decl(host, decl_cmd, tmp_path, "plan", "-f", str(manifest(tmp_path, wanted)))
    assert shrink.returncode == 1 and "cannot shrink" in shrink.stdout + shrink.stderr
    wanted["web"]["disks"][1]["size"] = "1GiB"

    # stop, start
    wanted["web"]["state"] = "stopped"
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.web", "stop")]
    apply(host, decl_cmd, tmp_path, path)
    assert running(host) == []
    wanted["web"]["state"] = "running"
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.web", "start")]
    apply(host, decl_cmd, tmp_path, path)
    assert_noop(host, decl_cmd, tmp_path, path)

    # destroy: both VMs and their files
    apply(host, decl_cmd, tmp_path, path, command="destroy")
    assert running(host) == []
    assert not (tmp_path / "vms" / "web").exists()
    assert not (tmp_path / "vms" / "db").exists()
    index = tmp_path / "home" / ".local" / "state" / "decl" / "vmware" / "lab.json"
    assert '"vms": {}' in index.read_text()


def test_hard_stop_when_soft_stop_fails_or_hangs(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "options": {"shutdown_timeout": 1}}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, tmp_path, path)
    vmx_file = str(vmx_path(tmp_path, "web"))
    for behaviour, cpus in (("no_tools", 2), ("hang", 3)):
        host.edit(lambda d, b=behaviour: d["vmware"].update(soft_stop=b, hang_seconds=5))
        wanted["web"]["cpus"] = cpus
        path = manifest(tmp_path, wanted)
        host.clear_calls()
        apply(host, decl_cmd, tmp_path, path)
        sent = vmrun_calls(host)
        assert sent.index(["stop", vmx_file, "soft"]) < sent.index(["stop", vmx_file, "hard"])
        assert vmx(tmp_path, "web").get("numvcpus") == str(cpus)
        assert running(host) == [vmx_file]


def handmade_vm(tmp_path, name, running_host: FakeDesktop | None = None) -> str:
    """A VM someone made in the VMware GUI at the path decl would use."""
    folder = tmp_path / "vms" / name
    folder.mkdir(parents=True)
    done = subprocess.run([os.path.join(FAKES_BIN, "vmware-vdiskmanager"), "-c", "-s", "100MB",
                           "-a", "lsilogic", "-t", "0", str(folder / f"{name}.vmdk")],
                          capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stdout
    text = ("#!/usr/bin/vmware\n.encoding = \"UTF-8\"\ndisplayName = \"" + name + "\"\n"
            "memSize = \"512\"\nnumvcpus = \"1\"\nguestOS = \"otherlinux-64\"\n"
            "# tuned by hand\nscsi0.present = \"TRUE\"\nscsi0:0.present = \"TRUE\"\n"
            f"scsi0:0.fileName = \"{name}.vmdk\"\nethernet0.present = \"TRUE\"\n"
            "ethernet0.connectionType = \"nat\"\nethernet0.virtualDev = \"e1000e\"\n"
            "mks.enable3d = \"TRUE\"\n")
    (folder / f"{name}.vmx").write_text(text)
    return str(folder / f"{name}.vmx")


def test_conflict_leaves_an_unmarked_vm_byte_for_byte_and_adopt_takes_it(host, decl_cmd,
                                                                           tmp_path):
    path_vmx = handmade_vm(tmp_path, "old")
    started = host.run("vmrun", "-T", "ws", "start", path_vmx, "nogui")
    assert started.returncode == 0, started.stdout
    before = {p.name: p.read_bytes() for p in (tmp_path / "vms" / "old").iterdir()}
    wanted = {"old": {"memory": "1GiB", "disks": [{"size": "100MiB"}]}}
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.old", "conflict")]
    done = decl(host, decl_cmd, tmp_path, "apply", "-y", "-f", str(path))
    assert done.returncode != 0 and "adopt" in done.stdout + done.stderr
    after = {p.name: p.read_bytes() for p in (tmp_path / "vms" / "old").iterdir()}
    assert after == before
    assert running(host) == [path_vmx]

    wanted["old"]["adopt"] = True
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.old", "adopt")]
    apply(host, decl_cmd, tmp_path, path)
    doc = vmx(tmp_path, "old")
    assert doc.get("decl.project") == "lab" and doc.get("memsize") == "1024"
    text = vmx_path(tmp_path, "old").read_text()
    assert text.startswith("#!/usr/bin/vmware\n")
    assert "# tuned by hand\n" in text and 'mks.enable3d = "TRUE"' in text
    assert 'memSize = "1024"' in text  # rewritten in place, the key's spelling kept
    assert running(host) == [path_vmx]
    assert_noop(host, decl_cmd, tmp_path, path)

    # destroy deletes the VM but not the disk decl did not make
    apply(host, decl_cmd, tmp_path, path, command="destroy")
    assert not vmx_path(tmp_path, "old").exists()
    assert (tmp_path / "vms" / "old" / "old.vmdk").exists()


def test_stopped_orphans_are_found_in_the_index_and_pruned(host, decl_cmd, tmp_path):
    wanted = {"a": {"memory": "1GiB"}, "b": {"memory": "1GiB", "state": "stopped"}}
    apply(host, decl_cmd, tmp_path, manifest(tmp_path, wanted))
    handmade_vm(tmp_path, "stranger")
    del wanted["b"]
    path = manifest(tmp_path, wanted)
    listed = decl(host, decl_cmd, tmp_path, "plan", "-f", str(path))
    assert "? vm.b (vmware on local)" in listed.stdout and "stranger" not in listed.stdout
    assert vmx_path(tmp_path, "b").exists()
    apply(host, decl_cmd, tmp_path, path, "--prune")
    assert not vmx_path(tmp_path, "b").exists()
    assert vmx_path(tmp_path, "a").exists() and vmx_path(tmp_path, "stranger").exists()
    assert_noop(host, decl_cmd, tmp_path, path)


def test_a_failure_mid_apply_leaves_a_plan_that_finishes_the_job(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "disks": [{"size": "1GiB"}, {"size": "1GiB"}]},
              "db": {"memory": "1GiB"}}
    path = manifest(tmp_path, wanted)
    host.fail("vmware-vdiskmanager", "web-vdb.vmdk")
    done = decl(host, decl_cmd, tmp_path, "apply", "-y", "-f", str(path))
    assert done.returncode != 0 and "injected fault" in done.stdout + done.stderr
    assert vmx_path(tmp_path, "db").exists()
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.web", "create")]
    apply(host, decl_cmd, tmp_path, path)
    assert disk_size(tmp_path, "web", "vdb") == GIB
    assert_noop(host, decl_cmd, tmp_path, path)


def test_wrong_host_type_is_reported(host, decl_cmd, tmp_path):
    host.edit(lambda d: d["vmware"].__setitem__("product", "fusion"))
    done = decl(host, decl_cmd, tmp_path, "plan", "-f",
                str(manifest(tmp_path, {"web": {"memory": "1GiB"}})))
    assert "Unable to connect to host" in done.stdout + done.stderr or \
        "not supported for the specified parameters" in done.stdout + done.stderr
    assert "could not be planned" in done.stdout + done.stderr


def test_providers_lists_vmrun_with_its_version(host, decl_cmd, tmp_path):
    done = decl(host, decl_cmd, tmp_path, "providers")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.split()[:1] == ["vmware"])
    assert "1.17.0 build-24319023" in line


def test_over_ssh(tmp_path, decl_cmd, sshd_factory):  # noqa: F811
    fake = FakeDesktop(tmp_path / "remote")
    home = tmp_path / "remote-home"
    server = sshd_factory(env={"DECL_FAKE_DESKTOP_DIR": str(fake.path), "HOME": str(home),
                               "PATH": f"{FAKES_BIN}:/usr/bin:/bin"})
    wanted = {"web": {"host": "box", "memory": "1GiB", "disks": [{"size": "1GiB"}]}}
    path = manifest(tmp_path, wanted, hosts={"box": server.manifest_host()})
    local_path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FAKES_BIN]
    env = {"PATH": os.pathsep.join(local_path), "DECL_FAKE_DESKTOP_DIR": str(tmp_path / "nope")}
    apply(fake, decl_cmd, tmp_path, path, env=env)
    assert running(fake) == [str(vmx_path(tmp_path, "web"))]
    assert (home / ".local" / "state" / "decl" / "vmware" / "lab.json").exists()
    again = decl(fake, decl_cmd, tmp_path, "plan", "--detailed-exitcode", "-f", str(path),
                 env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    apply(fake, decl_cmd, tmp_path, path, env=env, command="destroy")
    assert not vmx_path(tmp_path, "web").exists()


def test_cloud_init_drift_in_the_vmx_is_seen_and_repaired(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "state": "stopped",
                      "cloud_init": {"hostname": "web", "user": "lab"}}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, tmp_path, path)
    text = vmx_path(tmp_path, "web").read_text()
    other = base64.b64encode(b"#cloud-config\nhostname: evil\n").decode()
    start = text.index('guestinfo.userdata = "') + len('guestinfo.userdata = "')
    end = text.index('"', start)
    vmx_path(tmp_path, "web").write_text(text[:start] + other + text[end:])
    done = decl(host, decl_cmd, tmp_path, "plan", "--json", "-f", str(path))
    import json

    changes = [c for c in json.loads(done.stdout)["changes"] if c["action"] != "noop"]
    assert [(c["address"], c["action"], c["origin"]) for c in changes] == [
        ("vm.web", "update", "drift")]  # stopped: no restart needed
    apply(host, decl_cmd, tmp_path, path)
    assert vmx(tmp_path, "web").get("guestinfo.userdata") != other
    assert_noop(host, decl_cmd, tmp_path, path)


def test_cdrom_given_with_a_tilde(host, decl_cmd, tmp_path):
    iso = tmp_path / "home" / "isos" / "debian.iso"
    iso.parent.mkdir(parents=True)
    iso.write_bytes(b"iso")
    wanted = {"web": {"memory": "1GiB", "cdrom": "~/isos/debian.iso",
                      "network": {"mode": "bridge", "bridge": "vmnet2"}}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, tmp_path, path)
    doc = vmx(tmp_path, "web")
    assert doc.get("sata0:0.fileName") == str(iso)
    assert (doc.get("ethernet0.connectionType"), doc.get("ethernet0.vnet")) == ("custom",
                                                                              "vmnet2")
    assert_noop(host, decl_cmd, tmp_path, path)


def test_a_disk_copied_from_a_vmdk_image(host, decl_cmd, tmp_path):
    image = tmp_path / "base.vmdk"
    done = host.run("vmware-vdiskmanager", "-c", "-s", "64MB", "-a", "lsilogic", "-t", "0",
                    str(image))
    assert done.returncode == 0, done.stdout
    wanted = {"web": {"memory": "1GiB", "disks": [{"image": str(image), "size": "1GiB"}]}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, tmp_path, path)
    assert disk_size(tmp_path, "web", "vda") == GIB
    sent = [argv for argv in host.calls("vmware-vdiskmanager")]
    assert ["-r", str(image), "-t", "1", str(tmp_path / "vms" / "web" / "web-vda.vmdk")] in sent
    assert_noop(host, decl_cmd, tmp_path, path)
    apply(host, decl_cmd, tmp_path, path, command="destroy")
    assert image.exists() and not (tmp_path / "vms" / "web").exists()
    qcow = {"web": {"disks": [{"image": "https://example.org/x.qcow2",
                               "checksum": "sha256:" + "0" * 64}]}}
    done = decl(host, decl_cmd, tmp_path, "validate", "-f", str(manifest(tmp_path, qcow)))
    assert done.returncode == 1 and "local .vmdk images only" in done.stderr


def test_vm_dir_is_used_at_creation_only(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "state": "stopped"}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, tmp_path, path)
    wanted["web"]["options"]["vm_dir"] = str(tmp_path / "elsewhere")
    wanted["web"]["memory"] = "2GiB"
    path = manifest(tmp_path, wanted)
    assert plan(host, decl_cmd, tmp_path, path) == [("vm.web", "update")]
    apply(host, decl_cmd, tmp_path, path)
    assert vmx(tmp_path, "web").get("memsize") == "2048"  # changed where it is
    assert not (tmp_path / "elsewhere").exists()
    apply(host, decl_cmd, tmp_path, path, command="destroy")
    assert not vmx_path(tmp_path, "web").exists()
