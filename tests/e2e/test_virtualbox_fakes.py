"""VirtualBox VMs end to end: the decl CLI against the stateful fake VBoxManage."""

from __future__ import annotations

import json
import os

import pytest

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
        vm.setdefault("provider", "virtualbox")
        vm.setdefault("options", {})
        vm["options"].setdefault("vm_dir", str(tmp_path / "vms"))
        vm["options"].setdefault("shutdown_timeout", 5)
    document = {"version": 1, "project": project, "vms": vms}
    if hosts:
        document["hosts"] = hosts
    return write_manifest(tmp_path / "decl.yaml", document)


def vms(fake: FakeDesktop) -> dict[str, dict]:
    return {vm["name"]: vm for vm in fake.load()["virtualbox"]["vms"]}


def media(fake: FakeDesktop) -> dict[str, dict]:
    return fake.load()["virtualbox"]["media"]


def disk_sizes(fake: FakeDesktop, name: str) -> list[int]:
    vm = vms(fake)[name]
    found = media(fake)
    return [found[slot["medium"]]["size"] for _, slot in sorted(vm["attachments"].items())
            if slot["type"] == "hdd"]


def commands(fake: FakeDesktop) -> list[list[str]]:
    """VBoxManage calls without the -q flag decl passes."""
    return [[a for a in argv if a != "-q"] for argv in fake.calls("VBoxManage")]


def apply(fake, decl_cmd, path, *extra, env=None, command="apply"):
    done = run_decl(fake, decl_cmd, command, "-y", *extra, "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def assert_noop(fake, decl_cmd, path):
    again = run_decl(fake, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path))
    assert again.returncode == 0, again.stdout + again.stderr


def actions(plan):
    return [(c["address"], c["action"]) for c in plan["changes"] if c["action"] != "noop"]


def test_lifecycle_create_noop_restart_grow_stop_start_destroy(host, decl_cmd, tmp_path):
    wanted = {
        "web": {"cpus": 2, "memory": "2GiB", "firmware": "uefi",
                "disks": [{"size": "2GiB"}, {"size": "512MiB"}],
                "options": {"ostype": "Ubuntu_64", "nic_type": "virtio"}},
        "db": {"memory": "1GiB", "state": "stopped", "network": {"mode": "none"},
               "disks": [{"size": "1GiB"}]},
    }
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, path)
    found = vms(host)
    web, db = found["web"], found["db"]
    assert (web["state"], web["cpus"], web["memory"], web["firmware"], web["ostype"]) == \
        ("running", 2, 2048, "EFI", "Ubuntu_64")
    assert web["nics"]["1"]["attachment"] == "nat" and web["nics"]["1"]["type"] == "virtio"
    assert web["session"] == "headless"
    assert web["extradata"]["decl/project"] == "lab"
    assert web["extradata"]["decl/address"] == "vm.web"
    assert len(web["extradata"]["decl/spec-hash"]) == 64
    assert disk_sizes(host, "web") == [2 * GIB, 512 * MIB]
    assert web["cfgfile"] == str(tmp_path / "vms" / "web" / "web.vbox")
    assert (db["state"], db["nics"]["1"]["attachment"]) == ("poweroff", "none")
    for argv in commands(host):
        assert argv[0] != "modifyvm" or "--memory" in argv  # settings in one call

    assert_noop(host, decl_cmd, path)

    # memory of a running VM: a restart (ACPI shutdown, modifyvm, start)
    wanted["web"]["memory"] = "4GiB"
    path = manifest(tmp_path, wanted)
    plan = plan_json(host, decl_cmd, path)
    assert actions(plan) == [("vm.web", "update_restart")]
    host.clear_calls()
    apply(host, decl_cmd, path)
    sent = commands(host)
    shutdown = sent.index(["controlvm", "web", "acpipowerbutton"])
    modify = next(i for i, a in enumerate(sent) if a[0] == "modifyvm")
    start = next(i for i, a in enumerate(sent) if a[0] == "startvm")
    assert shutdown < modify < start
    assert ["controlvm", "web", "poweroff"] not in sent  # the guest obeyed ACPI
    assert vms(host)["web"]["memory"] == 4096 and vms(host)["web"]["state"] == "running"
    assert_noop(host, decl_cmd, path)

    # grow a disk (VirtualBox locks disks of a running VM: a restart); shrinking is refused
    wanted["web"]["disks"][1]["size"] = "1GiB"
    path = manifest(tmp_path, wanted)
    assert actions(plan_json(host, decl_cmd, path)) == [("vm.web", "update_restart")]
    apply(host, decl_cmd, path)
    assert disk_sizes(host, "web") == [2 * GIB, GIB]
    assert_noop(host, decl_cmd, path)
    wanted["web"]["disks"][1]["size"] = "512MiB"
    shrink = run_decl(host, decl_cmd, "plan", "-f", str(manifest(tmp_path, wanted)))
    assert shrink.returncode == 1 and "cannot shrink" in shrink.stdout + shrink.stderr
    wanted["web"]["disks"][1]["size"] = "1GiB"

    # stop, then start
    wanted["web"]["state"] = "stopped"
    path = manifest(tmp_path, wanted)
    assert actions(plan_json(host, decl_cmd, path)) == [("vm.web", "stop")]
    apply(host, decl_cmd, path)
    assert vms(host)["web"]["state"] == "poweroff"
    wanted["web"]["state"] = "running"
    path = manifest(tmp_path, wanted)
    assert actions(plan_json(host, decl_cmd, path)) == [("vm.web", "start")]
    apply(host, decl_cmd, path)
    assert vms(host)["web"]["state"] == "running"
    assert_noop(host, decl_cmd, path)

    # destroy: both VMs, their settings and the disks decl made
    files = [m["path"] for m in media(host).values()]
    assert all(os.path.exists(f) for f in files)
    apply(host, decl_cmd, path, command="destroy")
    assert vms(host) == {}
    assert not any(os.path.exists(f) for f in files)
    assert not (tmp_path / "vms" / "web").exists()


def test_hard_power_off_when_the_guest_ignores_acpi(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "options": {"shutdown_timeout": 1}}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, path)
    host.edit(lambda d: d["virtualbox"].__setitem__("acpi", "ignore"))
    wanted["web"]["cpus"] = 2
    path = manifest(tmp_path, wanted)
    host.clear_calls()
    apply(host, decl_cmd, path)
    sent = commands(host)
    assert sent.index(["controlvm", "web", "acpipowerbutton"]) < \
        sent.index(["controlvm", "web", "poweroff"])
    assert vms(host)["web"]["cpus"] == 2 and vms(host)["web"]["state"] == "running"


def unmarked_vm(host: FakeDesktop, tmp_path, name: str) -> None:
    """A VM someone made by hand, with a disk, running."""
    folder = tmp_path / "handmade"
    folder.mkdir(exist_ok=True)
    for args in (["createvm", "--name", name, "--basefolder", str(folder), "--register"],
                 ["modifyvm", name, "--memory", "512", "--cpus", "1", "--nic1", "nat"],
                 ["storagectl", name, "--name", "SATA Controller", "--add", "sata"],
                 ["createmedium", "disk", "--filename", str(folder / f"{name}.vdi"),
                  "--size", "100"],
                 ["storageattach", name, "--storagectl", "SATA Controller", "--port", "0",
                  "--device", "0", "--type", "hdd", "--medium", str(folder / f"{name}.vdi")],
                 ["setextradata", name, "GUI/LastCloseAction", "PowerOff"],
                 ["startvm", name, "--type", "headless"]):
        done = host.run("VBoxManage", *args)
        assert done.returncode == 0, done.stderr


def test_conflict_leaves_an_unmarked_vm_untouched_and_adopt_takes_it(host, decl_cmd, tmp_path):
    unmarked_vm(host, tmp_path, "old")
    before = json.dumps(vms(host)["old"], sort_keys=True)
    vbox_file = (tmp_path / "handmade" / "old" / "old.vbox").read_bytes()
    wanted = {"old": {"memory": "1GiB", "disks": [{"size": "100MiB"}]}}
    path = manifest(tmp_path, wanted)
    plan = plan_json(host, decl_cmd, path)
    assert actions(plan) == [("vm.old", "conflict")]
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode != 0
    assert "adopt" in done.stdout + done.stderr
    assert json.dumps(vms(host)["old"], sort_keys=True) == before
    assert (tmp_path / "handmade" / "old" / "old.vbox").read_bytes() == vbox_file
    changing = [a for a in commands(host) if a[0] not in ("list", "showvminfo",
                                                          "getextradata", "--version")]
    assert len(changing) == 7  # the hand-made VM's own commands only

    wanted["old"]["adopt"] = True
    path = manifest(tmp_path, wanted)
    assert actions(plan_json(host, decl_cmd, path)) == [("vm.old", "adopt")]
    apply(host, decl_cmd, path)
    old = vms(host)["old"]
    assert old["extradata"]["decl/project"] == "lab" and old["memory"] == 1024
    assert old["extradata"]["GUI/LastCloseAction"] == "PowerOff"  # other keys kept
    assert old["state"] == "running"
    assert_noop(host, decl_cmd, path)

    # destroying an adopted VM deletes the VM but not the disk decl did not make
    disk = tmp_path / "handmade" / "old.vdi"
    apply(host, decl_cmd, path, command="destroy")
    assert "old" not in vms(host)
    assert disk.exists()


def test_orphans_are_listed_then_pruned(host, decl_cmd, tmp_path):
    wanted = {"a": {"memory": "1GiB"}, "b": {"memory": "1GiB", "state": "stopped"}}
    apply(host, decl_cmd, manifest(tmp_path, wanted))
    unmarked_vm(host, tmp_path, "stranger")
    del wanted["b"]
    path = manifest(tmp_path, wanted)
    plan = plan_json(host, decl_cmd, path)
    assert [o["address"] for o in plan["orphans"]] == ["vm.b"]  # not the stranger
    listed = run_decl(host, decl_cmd, "plan", "-f", str(path))
    assert "? vm.b (virtualbox on local)" in listed.stdout
    assert "b" in vms(host)
    apply(host, decl_cmd, path, "--prune")
    assert set(vms(host)) == {"a", "stranger"}
    assert_noop(host, decl_cmd, path)


def test_another_projects_vm_is_not_an_orphan_of_this_one(host, decl_cmd, tmp_path):
    apply(host, decl_cmd, manifest(tmp_path, {"x": {"memory": "1GiB"}}, project="other"))
    path = manifest(tmp_path, {"y": {"memory": "1GiB"}})
    apply(host, decl_cmd, path, "--prune")
    assert set(vms(host)) == {"x", "y"}


def test_a_failure_mid_apply_leaves_a_plan_that_finishes_the_job(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "disks": [{"size": "1GiB"}, {"size": "1GiB"}]}}
    path = manifest(tmp_path, wanted)
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path),
                    env={"DECL_FAKE_DESKTOP_FAIL": "VBoxManage:storageattach"})
    assert done.returncode != 0
    assert "injected fault" in done.stdout + done.stderr
    plan = plan_json(host, decl_cmd, path)
    # the half-made VM carries the marks (set first): the plan replaces it
    assert actions(plan) == [("vm.web", "replace")], plan
    apply(host, decl_cmd, path)
    assert disk_sizes(host, "web") == [GIB, GIB]
    assert vms(host)["web"]["state"] == "running"
    assert_noop(host, decl_cmd, path)
    leftovers = {p.name for p in (tmp_path / "vms" / "web").iterdir()}
    assert leftovers == {"web.vbox", "web-vda.vdi", "web-vdb.vdi"}


def test_plan_time_problems(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "1GiB", "cdrom": str(tmp_path / "missing.iso")}}
    done = run_decl(host, decl_cmd, "plan", "-f", str(manifest(tmp_path, wanted)))
    assert done.returncode == 1
    assert "missing.iso does not exist" in done.stdout + done.stderr
    bad = {"web": {"options": {"nic_type": "e1000"}}}
    done = run_decl(host, decl_cmd, "plan", "-f", str(manifest(tmp_path, bad)))
    assert done.returncode == 1
    assert "decl.yaml:7:" in done.stderr and "options -> nic_type" in done.stderr
    odd = {"web": {"disks": [{"size": "1000000"}]}}
    done = run_decl(host, decl_cmd, "validate", "-f", str(manifest(tmp_path, odd)))
    assert done.returncode == 1
    assert "whole MiB" in done.stderr and "disks -> 0 -> size" in done.stderr
    image = {"web": {"disks": [{"image": str(tmp_path / "missing.vmdk")}]}}
    done = run_decl(host, decl_cmd, "plan", "-f", str(manifest(tmp_path, image)))
    assert done.returncode == 1 and "missing.vmdk does not exist" in done.stdout + done.stderr
    assert vms(host) == {}


def test_cdrom_and_bridge(host, decl_cmd, tmp_path):
    iso = tmp_path / "installer.iso"
    iso.write_bytes(b"iso")
    wanted = {"web": {"memory": "1GiB", "cdrom": str(iso),
                      "network": {"mode": "bridge", "bridge": "en0"}, "disks": [{"size": "1GiB"}]}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, path)
    web = vms(host)["web"]
    assert web["nics"]["1"] == {**web["nics"]["1"], "attachment": "bridged", "bridge": "en0"}
    dvds = [s for s in web["attachments"].values() if s["type"] == "dvddrive"]
    assert [media(host)[s["medium"]]["path"] for s in dvds] == [str(iso)]
    assert_noop(host, decl_cmd, path)
    other = tmp_path / "other.iso"
    other.write_bytes(b"iso2")
    wanted["web"]["cdrom"] = str(other)
    path = manifest(tmp_path, wanted)
    assert actions(plan_json(host, decl_cmd, path)) == [("vm.web", "update_restart")]
    apply(host, decl_cmd, path)
    dvds = [s for s in vms(host)["web"]["attachments"].values() if s["type"] == "dvddrive"]
    assert [media(host)[s["medium"]]["path"] for s in dvds] == [str(other)]
    assert_noop(host, decl_cmd, path)


def test_providers_lists_vboxmanage_with_its_version(host, decl_cmd):
    done = run_decl(host, decl_cmd, "providers")
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "virtualbox" in line)
    assert "7.1.4r165100" in line


def test_over_ssh(tmp_path, decl_cmd, sshd_factory):  # noqa: F811
    fake = FakeDesktop(tmp_path / "remote")
    server = sshd_factory(env={"DECL_FAKE_DESKTOP_DIR": str(fake.path),
                               "PATH": f"{FAKES_BIN}:/usr/bin:/bin"})
    wanted = {"web": {"host": "box", "memory": "1GiB", "disks": [{"size": "1GiB"}]}}
    path = manifest(tmp_path, wanted, hosts={"box": server.manifest_host()})
    local_path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FAKES_BIN]
    env = {"PATH": os.pathsep.join(local_path), "DECL_FAKE_DESKTOP_DIR": str(tmp_path / "nope")}
    apply(fake, decl_cmd, path, env=env)
    assert vms(fake)["web"]["state"] == "running"
    assert not (tmp_path / "nope" / "state.json").exists()
    again = run_decl(fake, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    apply(fake, decl_cmd, path, env=env, command="destroy")
    assert vms(fake) == {}


def test_cloud_init_seed_is_read_back_from_the_iso(host, decl_cmd, tmp_path):
    from decl.connections.local import LocalConnection
    from decl.providers import cloudinit
    from tests.backends import missing_backend

    if cloudinit.iso_tool(LocalConnection()) is None:
        missing_backend("genisoimage", "cloud_init seeds need genisoimage, mkisofs or xorriso")

    wanted = {"web": {"memory": "1GiB", "disks": [{"size": "1GiB"}],
                      "cloud_init": {"hostname": "web", "user": "lab",
                                     "ssh_authorized_keys": ["ssh-ed25519 AAAA k"]}}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, path)
    seed = tmp_path / "vms" / "web" / "web-seed.iso"
    dvds = [s for s in vms(host)["web"]["attachments"].values() if s["type"] == "dvddrive"]
    assert [media(host)[s["medium"]]["path"] for s in dvds] == [str(seed)]
    assert cloudinit.read_seed(seed.read_bytes())["user"] == "lab"
    assert_noop(host, decl_cmd, path)

    # someone rewrites the seed: drift, seen from the ISO's content
    cloudinit.make_seed_iso(LocalConnection(), str(seed),
                            {"hostname": "evil", "user": "lab", "ssh_authorized_keys": []}, "web")
    plan = plan_json(host, decl_cmd, path)
    assert actions(plan) == [("vm.web", "update_restart")]
    assert plan["changes"][0]["origin"] == "drift"
    apply(host, decl_cmd, path)
    assert cloudinit.read_seed(seed.read_bytes())["hostname"] == "web"
    assert_noop(host, decl_cmd, path)


def test_a_disk_made_from_an_image(host, decl_cmd, tmp_path):
    import hashlib

    image = tmp_path / "base.vmdk"
    image.write_bytes(b"\0" * (2 * MIB))
    checksum = "sha256:" + hashlib.sha256(image.read_bytes()).hexdigest()
    wanted = {"web": {"memory": "1GiB",
                      "disks": [{"image": str(image), "checksum": checksum, "size": "1GiB"}]}}
    path = manifest(tmp_path, wanted)
    apply(host, decl_cmd, path)
    assert disk_sizes(host, "web") == [GIB]
    clone = tmp_path / "vms" / "web" / "web-vda.vdi"
    assert clone.read_bytes() == image.read_bytes()
    assert ["clonemedium", "disk", str(image), str(clone), "--format", "VDI"] in commands(host)
    assert_noop(host, decl_cmd, path)
    wanted["web"]["disks"][0]["checksum"] = "sha256:" + "0" * 64
    assert actions(plan_json(host, decl_cmd, manifest(tmp_path, wanted))) == [
        ("vm.web", "replace")]  # another image: a new disk
    wanted["web"]["disks"][0]["checksum"] = checksum
    apply(host, decl_cmd, manifest(tmp_path, wanted), command="destroy")
    assert not clone.exists() and image.exists()


def test_over_ssh_to_a_windows_host(tmp_path, decl_cmd, sshd_factory):  # noqa: F811
    """shell: powershell: decl finds VBoxManage.exe with Get-Command and runs it through
    PowerShell; the fake answers as VBoxManage.exe does on Windows (CRLF, `VBoxManage.exe:
    error:`)."""
    import shlex

    fake = FakeDesktop(tmp_path / "remote-windows")
    fake.edit(lambda d: d.__setitem__("windows", True))
    shim = os.path.join(FAKES_BIN, "pwsh-sshd-shim")
    windows_state = tmp_path / "windows.json"  # the fake powershell.exe's (Get-Command)
    command = (f"env DECL_FAKE_DESKTOP_DIR={shlex.quote(str(fake.path))} "
               f"DECL_FAKE_WINDOWS_STATE={shlex.quote(str(windows_state))} "
               f"PATH={shlex.quote(FAKES_BIN)}:/usr/bin:/bin {shlex.quote(shim)}")
    server = sshd_factory(force_command=command)
    wanted = {"web": {"host": "winbox", "memory": "1GiB", "disks": [{"size": "1GiB"}]}}
    path = manifest(tmp_path, wanted,
                    hosts={"winbox": server.manifest_host(shell="powershell")})
    local_path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FAKES_BIN]
    env = {"PATH": os.pathsep.join(local_path), "DECL_FAKE_DESKTOP_DIR": str(tmp_path / "nope")}
    apply(fake, decl_cmd, path, env=env)
    assert vms(fake)["web"]["state"] == "running"
    again = run_decl(fake, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    wanted["web"]["memory"] = "2GiB"
    path = manifest(tmp_path, wanted, hosts={"winbox": server.manifest_host(shell="powershell")})
    apply(fake, decl_cmd, path, env=env)
    assert vms(fake)["web"]["memory"] == 2048
    apply(fake, decl_cmd, path, env=env, command="destroy")
    assert vms(fake) == {}


def test_an_inaccessible_vm_does_not_break_discovery(host, decl_cmd, tmp_path):
    unmarked_vm(host, tmp_path, "broken")
    host.edit(lambda d: d["virtualbox"]["vms"][0].__setitem__("inaccessible", True))
    listed = host.run("VBoxManage", "list", "vms")
    assert listed.stdout.startswith('"<inaccessible>" {')
    path = manifest(tmp_path, {"web": {"memory": "1GiB"}})
    apply(host, decl_cmd, path)
    assert_noop(host, decl_cmd, path)
    assert set(vms(host)) == {"broken", "web"}
