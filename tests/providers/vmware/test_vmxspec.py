"""The .vmx as the manifest sees it, and the keys decl writes (pure)."""

from __future__ import annotations

from decl.core.resource import Marks
from decl.providers.vmware import vmxspec
from decl.providers.vmware.vmx import VmxDocument

MIB = 1024 * 1024
SPEC = {
    "cpus": 2, "memory": 2048 * MIB, "arch": None, "firmware": "uefi", "disk_count": 1,
    "disk_size": {"vda": 1024 * MIB}, "disk_source": {"vda": "empty"}, "cdrom": None,
    "network": {"mode": "bridge", "bridge": "vmnet2"},
    "cloud_init": {"hostname": "web", "user": "lab", "ssh_authorized_keys": []},
    "options": {"guest_os": "ubuntu-64", "nic_type": "vmxnet3"},
}


def made() -> VmxDocument:
    doc = vmxspec.new_document("web", 19)
    vmxspec.add_disk(doc, 0, "vda", "web-vda.vmdk", "empty")
    vmxspec.apply_spec(doc, "web", SPEC, "vmxnet3", "/isos/d.iso")
    vmxspec.set_marks(doc, Marks("lab", "vm.web", "h" * 64))
    return doc


def test_what_decl_writes_reads_back_as_the_spec():
    doc = VmxDocument(made().render())
    spec = vmxspec.observed_spec(doc, "web", {"web-vda.vmdk": 1024 * MIB})
    assert spec == {**SPEC, "arch": "x86_64", "cdrom": "/isos/d.iso"}
    given = {**SPEC, "cdrom": "~/d.iso"}
    vmxspec.apply_spec(doc, "web", given, None, "/home/me/d.iso")
    assert vmxspec.observed_spec(doc, "web", {})["cdrom"] == "~/d.iso"
    doc.set("sata0:0.fileName", "/other.iso")  # changed in the GUI: drift
    assert vmxspec.observed_spec(doc, "web", {})["cdrom"] == "/other.iso"
    assert vmxspec.marks_of(doc) == Marks("lab", "vm.web", "h" * 64)
    assert vmxspec.made_disks(doc) == {"vda": "web-vda.vmdk"}


def test_network_modes_round_trip():
    for network in ({"mode": "nat", "bridge": None}, {"mode": "none", "bridge": None},
                    {"mode": "bridge", "bridge": "auto"}):
        doc = made()
        vmxspec.apply_spec(doc, "web", {**SPEC, "network": network}, None, None)
        assert vmxspec.network_of(doc) == network


def test_cloud_init_is_read_from_guestinfo():
    doc = made()
    assert vmxspec.cloud_init_of(doc) == SPEC["cloud_init"]
    doc.update([("guestinfo.userdata", "#cloud-config\nhostname: other\n"),
                ("guestinfo.userdata.encoding", None)])
    assert vmxspec.cloud_init_of(doc) == {"hostname": "other", "user": None,
                                          "ssh_authorized_keys": []}
    doc.update([("guestinfo.userdata", "!!!"), ("guestinfo.userdata.encoding", "base64")])
    assert vmxspec.cloud_init_of(doc) is None
    doc.delete("guestinfo.userdata")
    assert vmxspec.cloud_init_of(doc) is None


def test_a_handmade_vmx_without_marks():
    doc = VmxDocument('memSize = "512"\nsata0:1.present = "TRUE"\n'
                      'sata0:1.fileName = "b.vmdk"\nscsi0:0.fileName = "a.vmdk"\n'
                      'ide1:0.deviceType = "cdrom-image"\nide1:0.fileName = "x.iso"\n'
                      'nvme0:0.present = "FALSE"\nnvme0:0.fileName = "gone.vmdk"\n')
    assert vmxspec.marks_of(doc) is None
    assert vmxspec.disks_of(doc) == [("scsi0:0", "a.vmdk"), ("sata0:1", "b.vmdk")]
    spec = vmxspec.observed_spec(doc, "h", {"a.vmdk": MIB})
    assert spec["memory"] == 512 * MIB and spec["cpus"] == 1
    assert spec["disk_source"] == {"vda": "file:a.vmdk", "vdb": "file:b.vmdk"}
    assert spec["disk_size"] == {"vda": MIB, "vdb": None}
    assert spec["cdrom"] == "x.iso"
    assert spec["network"] == {"mode": "none", "bridge": None}


def test_disks_past_unit_seven_skip_the_controller_unit():
    doc = VmxDocument()
    vmxspec.add_disk(doc, 7, "vdh", "d7.vmdk", "empty")
    assert doc.get("scsi0:8.fileName") == "d7.vmdk"


def test_default_vm_dir_per_os():
    assert vmxspec.default_vm_dir("Windows", "C:\\Users\\me") == \
        "C:\\Users\\me\\Documents\\Virtual Machines"
    assert vmxspec.default_vm_dir("Darwin", "/Users/me") == \
        "/Users/me/Virtual Machines.localized"
    assert vmxspec.default_vm_dir("Linux", "/home/me/") == "/home/me/vmware"
