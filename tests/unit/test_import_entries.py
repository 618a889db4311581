"""The pure parts of `decl import` for the VM providers: manifest names, the entries of ESXi
and Xen VMs and what they refuse, and the notes printed for ignored fields."""

from __future__ import annotations

import pytest

from decl.core.resource import Observed
from decl.engine.importing import Candidate
from decl.providers.base import ImportNotSupported
from decl.providers.esxi.importing import manifest_entry as esxi_entry
from decl.providers.vmimport import is_manifest_name, manifest_name
from decl.providers.xen.importing import disk_problem
from decl.providers.xen.importing import manifest_entry as xen_entry
from decl.render.importing import ignore_notes

GIB = 1024**3
MIB = 1024**2


@pytest.mark.parametrize(("given", "name"), [
    ("web", "web"), ("Web Server 1", "Web-Server-1"), ("Build Box (2)", "Build-Box-2"),
    ("  é ", "vm"), ("-x-", "x"), ("a" * 80, "a" * 63)])
def test_manifest_names_of_display_names(given, name):
    assert manifest_name(given) == name
    assert is_manifest_name(name)


def observed(spec, handle, name="web", state="stopped", provider="esxi"):
    return Observed(address=f"vm.{name}", kind="vm", name=name, provider=provider,
                    host="h", state=state, spec=spec, marks=None, handle=handle)


def esxi_spec(**extra):
    return {"display_name": "web", "cpus": 2, "memory": 2 * GIB, "firmware": "bios",
            "guest_os": "otherlinux-64", "datastore": "datastore1", "port_group": "VM Network",
            "disk_count": 1, "disk_size": {"scsi0:0": 4 * GIB}, **extra}


def test_esxi_entry_leaves_out_defaults():
    entry = esxi_entry(observed(esxi_spec(), {"readable": True}, state="running"))
    assert entry == {"cpus": 2, "memory": "2GiB", "disks": [{"size": "4GiB"}]}


def test_esxi_entry_names_what_differs():
    spec = esxi_spec(display_name="Web 1", port_group=None, datastore="ssd",
                     guest_os="debian12-64", firmware="uefi")
    entry = esxi_entry(observed(spec, {"readable": True}, name="Web-1"))
    assert entry == {"state": "stopped", "cpus": 2, "memory": "2GiB", "firmware": "uefi",
                     "disks": [{"size": "4GiB"}], "network": {"mode": "none"},
                     "options": {"display_name": "Web 1", "guest_os": "debian12-64",
                                 "datastore": "ssd"}}


@pytest.mark.parametrize(("spec", "handle", "words"), [
    (esxi_spec(), {"readable": False, "vmx": "/v/web.vmx"}, "cannot be read"),
    (esxi_spec(disk_size={"scsi0:0": None}), {}, "the size of disk scsi0:0 cannot be read"),
    (esxi_spec(disk_size={"scsi0:1": GIB}), {}, "its disks sit on scsi0:1"),
    (esxi_spec(memory="lots"), {}, "is not a number"),
    (esxi_spec(display_name="web|1"), {}, "a manifest cannot name its settings"),
])
def test_esxi_entry_refusals_say_why(spec, handle, words):
    with pytest.raises(ImportNotSupported, match=words.replace("(", r"\(")):
        esxi_entry(observed(spec, handle, name="web-1"))


@pytest.mark.parametrize(("entry", "problem"), [
    ("format=raw, vdev=xvda, access=rw, target=/d/a.img", None),
    ("/d/a.img,qcow2,xvda,w", None),
    ("format=raw, vdev=xvda, access=ro, target=/d/a.img", "is not read-write"),
    ("format=raw, vdev=xvdb, access=rw, target=/d/a.img", "is not xvda"),
    ("format=vhd, vdev=xvda, target=/d/a.img", "has format vhd"),
    ("format=raw, vdev=xvda, devtype=cdrom, target=/d/a.iso", "sets devtype"),
    ("phy:/dev/vg/a,xvda,w", "names no absolute path"),
])
def test_xen_disk_entries_decl_can_keep(entry, problem):
    found = disk_problem(0, entry)
    assert (found is None) if problem is None else (problem in str(found))


def xen_spec(**extra):
    return {"type": "hvm", "cpus": 2, "maxvcpus": 2, "memory": GIB, "maxmem": GIB,
            "firmware": "bios", "bridge": "xenbr0", "boot": {}, "disk_count": 1,
            "disk_format": "raw", "disk_size": {"xvda": GIB}, **extra}


def xen_handle(**extra):
    return {"cfg": "/etc/xen/web.cfg", "domain": "web",
            "disk_entries": ["format=raw, vdev=xvda, access=rw, target=/d/web.img"], **extra}


def test_xen_entry_of_a_pv_guest_in_another_folder():
    spec = xen_spec(type="pv", firmware=None, maxmem=2 * GIB, bridge=None,
                    boot={"bootloader": "pygrub"}, disk_format="qcow2")
    entry = xen_entry(observed(spec, xen_handle(cfg="/srv/xen/web.cfg"), provider="xen"))
    assert entry == {"state": "stopped", "cpus": 2, "memory": "1GiB",
                     "disks": [{"size": "1GiB"}], "network": {"mode": "none"},
                     "options": {"type": "pv", "config_dir": "/srv/xen",
                                 "disk_format": "qcow2", "maxmem": "2GiB",
                                 "bootloader": "pygrub"}}


@pytest.mark.parametrize(("spec", "handle", "words"), [
    (xen_spec(), xen_handle(cfg=None, dirs=["/etc/xen"]), "runs without a config file"),
    (xen_spec(), xen_handle(error="line 2: syntax"), "cannot be read: line 2"),
    (xen_spec(disk_size={"xvda": 0}), xen_handle(), "the size of disk xvda cannot be read"),
    (xen_spec(disk_format="mixed"), xen_handle(), "mix raw and qcow2"),
    (xen_spec(bridge="br 0"), xen_handle(), "a manifest cannot name its settings"),
])
def test_xen_entry_refusals_say_why(spec, handle, words):
    with pytest.raises(ImportNotSupported, match=words):
        xen_entry(observed(spec, handle, provider="xen"))


def test_ignored_fields_are_named_in_a_note():
    plain = Candidate(observed({}, {}, name="a"), {"cpus": 1})
    ignoring = Candidate(observed({}, {}, name="b"),
                         {"lifecycle": {"ignore_changes": ["disk_size", "network"]}})
    refused = Candidate(observed({}, {}, name="c"), None, "no")
    assert ignore_notes([plain, ignoring, refused]) == [
        "vm.b: its entry cannot describe disk_size, network as the host has them: "
        "ignore_changes keeps decl from acting on them"]


def vmware_spec(**extra):
    return {"cpus": 1, "memory": GIB, "arch": "x86_64", "firmware": "bios", "disk_count": 0,
            "disk_size": {}, "disk_source": {}, "cdrom": None,
            "network": {"mode": "nat", "bridge": None}, "cloud_init": None,
            "options": {"guest_os": "otherlinux-64", "nic_type": "e1000e"}, **extra}


def test_vmware_entry_keeps_a_windows_folder_as_written():
    from decl.providers.vmware.vmxspec import manifest_entry

    vmx = "C:\\Users\\me\\Documents\\Virtual Machines\\web\\web.vmx"
    entry = manifest_entry(observed(vmware_spec(), {"vmx": vmx, "cdrom_slot": "ide1:0"},
                                    provider="vmware"))
    assert entry == {"state": "stopped", "cpus": 1, "memory": "1GiB",
                     "options": {"vm_dir": "C:\\Users\\me\\Documents\\Virtual Machines"}}


@pytest.mark.parametrize(("vmx", "spec", "words"), [
    ("/v/other/web.vmx", vmware_spec(), "folder is named otherwise"),
    ("/v/web/web.vmx", vmware_spec(memory=GIB + MIB), "not a multiple of 4 MiB"),
    ("/v/web/web.vmx", vmware_spec(disk_size={"vda": None}), "the size of disk vda"),
    ("/v/web/web.vmx", vmware_spec(network={"mode": "hostonly", "bridge": None}),
     "ethernet0 is hostonly"),
])
def test_vmware_entry_refusals_say_why(vmx, spec, words):
    from decl.providers.vmware.vmxspec import manifest_entry

    with pytest.raises(ImportNotSupported, match=words):
        manifest_entry(observed(spec, {"vmx": vmx}, provider="vmware"))


def test_virtualbox_entry_refuses_a_name_it_cannot_find_again():
    from decl.providers.virtualbox.machine import manifest_entry

    with pytest.raises(ImportNotSupported, match="VBoxManage modifyvm NAME --name NEW"):
        manifest_entry(observed(vmware_spec(), {}, name="My VM", provider="virtualbox"))
