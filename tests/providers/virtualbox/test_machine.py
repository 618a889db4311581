"""A VirtualBox VM in the manifest's terms, from VBoxManage's outputs (pure)."""

from __future__ import annotations

import json

from decl.providers.virtualbox import machine, output

MIB = 1024 * 1024
INFO = output.parse_machinereadable("""name="web"
platformArchitecture="x86"
CfgFile="/vms/web/web.vbox"
memory=2048
firmware="EFI"
cpus=2
VMState="running"
storagecontrollername0="SATA"
storagecontrollertype0="IntelAhci"
"SATA-0-0"="/vms/web/web-vda.vdi"
"SATA-ImageUUID-0-0"="11111111-1111-1111-1111-111111111111"
"SATA-1-0"="/isos/d.iso"
"SATA-ImageUUID-1-0"="22222222-2222-2222-2222-222222222222"
"SATA-2-0"="/vms/web/web-seed.iso"
"SATA-ImageUUID-2-0"="33333333-3333-3333-3333-333333333333"
"SATA-3-0"="none"
bridgeadapter1="en0: Wi-Fi"
macaddress1="080027AAAAAA"
nic1="bridged"
nictype1="virtio"
""")
RECORD = {"disks": {"vda": {"path": "/vms/web/web-vda.vdi", "source": "empty", "made": True}},
          "seed": "/vms/web/web-seed.iso",
          "cloud_init": {"hostname": "web", "user": None, "ssh_authorized_keys": []},
          "cdrom": {"given": "~/d.iso", "path": "/isos/d.iso", "port": 1}}
EXTRA = {"decl/project": "lab", "decl/address": "vm.web", "decl/spec-hash": "h",
         "decl/record": json.dumps(RECORD)}


def test_observed_spec_from_showvminfo_extradata_and_hdds():
    capacities = {"11111111-1111-1111-1111-111111111111": 1024 * MIB}
    assert machine.seed_path(INFO, EXTRA) == "/vms/web/web-seed.iso"
    spec = machine.observed_spec(INFO, EXTRA, capacities, seed_cloud=RECORD["cloud_init"])
    assert spec == {
        "cpus": 2, "memory": 2048 * MIB, "arch": "x86_64", "firmware": "uefi",
        "disk_count": 1, "disk_size": {"vda": 1024 * MIB}, "disk_source": {"vda": "empty"},
        "cdrom": "~/d.iso", "network": {"mode": "bridge", "bridge": "en0: Wi-Fi"},
        "cloud_init": RECORD["cloud_init"], "options": {"nic_type": "virtio"}}
    assert machine.marks_of(EXTRA).address == "vm.web"
    assert machine.disk_paths(INFO, set(capacities)) == {"vda": "/vms/web/web-vda.vdi"}


def test_without_decl_record_disks_are_files_and_no_seed_is_reported():
    spec = machine.observed_spec(INFO, {}, {"11111111-1111-1111-1111-111111111111": MIB})
    assert spec["disk_source"] == {"vda": "file:/vms/web/web-vda.vdi"}
    assert spec["cloud_init"] is None and machine.seed_path(INFO, {}) is None
    assert spec["cdrom"] == "/isos/d.iso"
    assert machine.marks_of({}) is None
    assert machine.record_of({"decl/record": "not json"}) == {}


def test_settings_arguments():
    spec = {"cpus": 2, "memory": 1024 * MIB, "firmware": "bios",
            "network": {"mode": "bridge", "bridge": "eth0"}}
    assert machine.settings(spec, "virtio") == [
        "--cpus", "2", "--memory", "1024", "--firmware", "bios", "--nic1", "bridged",
        "--bridgeadapter1", "eth0", "--nictype1", "virtio"]
    none = {**spec, "network": {"mode": "none", "bridge": None}}
    assert machine.settings(none, "virtio")[-2:] == ["--nic1", "none"]
    assert machine.size_mib(MIB + 1) == 2
