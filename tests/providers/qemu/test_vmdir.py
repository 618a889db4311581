"""The QEMU VM directory: the one-pass discovery output, the command line, the observed spec."""

from __future__ import annotations

import os

from decl.providers.qemu.provider import observed_spec
from decl.providers.qemu.vmdir import (
    accel_args,
    opt_escape,
    parse_discovery,
    parse_qemu_argv,
    qemu_argv,
)

CAPTURE = os.path.join(os.path.dirname(__file__), "discovery-capture.txt")


def vms():
    return {vm.name: vm for vm in parse_discovery(open(CAPTURE).read())}


def test_discovery_reads_marks_pids_and_disks():
    found = vms()
    assert sorted(found) == ["off1", "run1", "stranger"]
    run = found["run1"]
    assert run.alive and run.pid == 23339
    assert run.mark["project"] == "cap" and run.mark["address"] == "vm.run1"
    assert {dev: info["virtual-size"] for dev, info in run.disks.items()} == \
        {"vda": 16777216, "vdb": 8388608}
    off = found["off1"]
    assert not off.alive and off.pid is None
    stranger = found["stranger"]
    assert stranger.mark is None and stranger.disks == {}


def test_observed_spec_prefers_live_values_from_qmp():
    run = vms()["run1"]
    spec = observed_spec(run, {"state": "running", "accelerator": "tcg",
                               "memory": 96 * 1024 * 1024, "cpus": 2})
    assert spec["memory"] == 96 * 1024 * 1024 and spec["cpus"] == 2
    assert spec["disk_count"] == 2
    assert spec["disk_size"] == {"vda": 16777216, "vdb": 8388608}
    assert spec["disk_source"] == {"vda": "empty", "vdb": "empty"}
    assert spec["options"]["accel"] == "tcg"
    stopped = observed_spec(vms()["off1"], None)
    assert stopped["memory"] == 64 * 1024 * 1024


def test_a_disk_file_gone_shows_in_the_spec():
    off = vms()["off1"]
    off.disks.clear()
    spec = observed_spec(off, None)
    assert spec["disk_count"] == 0 and spec["disk_size"] == {}


def config(**overrides):
    base = {"name": "web", "arch": "x86_64", "binary": "qemu-system-x86_64", "machine": "q35",
            "cpu_model": None, "accel": "auto", "memory": 128 * 1024 * 1024, "cpus": 2,
            "firmware": "bios", "uefi_code": None,
            "disks": [{"dev": "vda", "path": "/vms/p/web/disk-vda.qcow2"}],
            "cdrom": None, "seed": None, "network": {"mode": "nat", "bridge": None},
            "mac": "52:54:00:01:02:03"}
    base.update(overrides)
    return base


def test_argv_basics_and_accelerators():
    argv = qemu_argv(config(), "/vms/p/web", kvm_ok=True)
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-m") + 1] == "128M"
    assert argv[argv.index("-smp") + 1] == "2"
    assert argv[argv.index("-pidfile") + 1] == "/vms/p/web/qemu.pid"
    assert "-daemonize" in argv and "-nodefaults" in argv
    assert argv[argv.index("-nic") + 1] == "user,model=virtio-net-pci,mac=52:54:00:01:02:03"
    assert accel_args("auto", True) == ["-accel", "kvm", "-accel", "tcg"]
    assert accel_args("auto", False) == ["-accel", "tcg"]
    assert accel_args("kvm", False) == ["-accel", "kvm"]
    assert "-cpu" not in argv


def test_argv_for_an_emulated_arm_guest_with_cdrom_seed_and_bridge():
    argv = qemu_argv(config(arch="aarch64", binary="qemu-system-aarch64", machine="virt",
                            cdrom="/isos/a.iso", seed="/vms/p/web/seed.iso",
                            network={"mode": "bridge", "bridge": "br0"}),
                     "/vms/p/web", kvm_ok=False)
    assert argv[0] == "qemu-system-aarch64"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert argv.count("scsi-cd,drive=cd0,bus=scsi0.0") == 1
    assert any(a.startswith("file=/vms/p/web/seed.iso,") for a in argv)
    assert "bridge,br=br0,model=virtio-net-pci,mac=52:54:00:01:02:03" in argv


def test_commas_in_paths_are_escaped_for_qemu():
    assert opt_escape("/a,b/c") == "/a,,b/c"
    argv = qemu_argv(config(disks=[{"dev": "vda", "path": "/x,file=/etc/shadow"}]), "/v",
                     kvm_ok=False)
    assert "file=/x,,file=/etc/shadow,if=virtio,format=qcow2,id=vda" in argv


def test_command_line_read_back_is_what_it_runs():
    argv = qemu_argv(config(arch="aarch64", binary="qemu-system-aarch64", machine="virt",
                            firmware="uefi", uefi_code="/usr/share/AAVMF/AAVMF_CODE.fd",
                            cdrom="/isos/a,b.iso", seed="/vms/p/web/seed.iso",
                            network={"mode": "bridge", "bridge": "br0"},
                            memory=3 * 1024**3, cpus=4, accel="tcg"), "/vms/p/web", False)
    seen = parse_qemu_argv(argv)
    assert (seen["arch"], seen["machine"], seen["accels"], seen["memory"], seen["cpus"],
            seen["cpu_model"], seen["firmware"]) == \
        ("aarch64", "virt", ["tcg"], 3 * 1024**3, 4, "max", "uefi")
    assert seen["disks"] == {"vda": "/vms/p/web/disk-vda.qcow2"}
    assert seen["cdroms"] == ["/isos/a,b.iso", "/vms/p/web/seed.iso"]
    assert seen["network"] == {"mode": "bridge", "bridge": "br0"}
    nat = parse_qemu_argv(qemu_argv(config(), "/vms/p/web", True))
    assert nat["accels"] == ["kvm", "tcg"] and nat["network"]["mode"] == "nat"
    assert nat["firmware"] == "bios" and nat["cdroms"] == []


def test_a_running_vm_is_observed_from_its_process_command_line():
    run = vms()["run1"]
    run.cmdline = qemu_argv(config(name="run1", memory=192 * 1024 * 1024, cpus=3,
                                   disks=[{"dev": "vda", "path": "x"}],
                                   network={"mode": "nat", "bridge": None}), run.path, False)
    spec = observed_spec(run, None)
    # not what decl.json says (64MiB, 1 cpu, no network): what the process runs
    assert (spec["memory"], spec["cpus"], spec["network"]["mode"]) == (192 * 1024**2, 3, "nat")
    assert spec["disk_count"] == 1 and spec["options"]["accel"] == "tcg"


def test_discovery_reads_the_running_command_line():
    text = ("@@vm /v/p/a\n@@pid 7 1\n@@cmdline qemu-system-x86_64\x1f-m\x1f256M\x1f-smp\x1f2"
            "\x1f\n")
    (vm,) = parse_discovery(text)
    assert vm.cmdline == ["qemu-system-x86_64", "-m", "256M", "-smp", "2"]
    assert parse_qemu_argv(vm.cmdline)["memory"] == 256 * 1024 * 1024


def test_the_seed_iso_is_read_back(tmp_path):
    from decl.connections.local import LocalConnection
    from decl.providers import cloudinit

    wanted = {"hostname": "web", "user": "lab", "ssh_authorized_keys": ["ssh-ed25519 AAAA k"]}
    seed = tmp_path / "seed.iso"
    conn = LocalConnection()
    if cloudinit.iso_tool(conn) is None:
        from tests.backends import missing_backend

        missing_backend("qemu", "no genisoimage, mkisofs or xorriso")
    cloudinit.make_seed_iso(conn, str(seed), wanted, "web")
    assert cloudinit.read_seed(seed.read_bytes()) == wanted
    assert cloudinit.cloud_init_of("#cloud-config\nhostname: db\nssh_authorized_keys: [k]\n") \
        == {"hostname": "db", "user": None, "ssh_authorized_keys": ["k"]}
