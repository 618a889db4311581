"""The .vmx reader/writer keeps every key decl does not manage, in order."""

from __future__ import annotations

from decl.core.resource import Marks
from decl.providers.esxi import config, marks
from decl.providers.esxi.vmx import Vmx, decode, encode

# Shape of a .vmx after ESXi powered the VM on once (keys it adds, comments, a bare value).
EXISTING = """\
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "13"
# a comment someone left
displayName = "Web Server 1"
memSize = "1024"
numvcpus = "1"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "Web Server 1.vmdk"
ethernet0.present = "TRUE"
ethernet0.networkName = "VM Network"
ethernet0.generatedAddress = "00:0c:29:12:34:56"
uuid.bios = "56 4d 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7"
annotation = "line one|0Aline two with |22quotes|22"
tools.syncTime = FALSE
"""


def test_unmanaged_keys_are_kept_in_order():
    vmx = Vmx.parse(EXISTING)
    spec = {"display_name": "Web Server 1", "guest_os": "otherlinux-64", "cpus": 2,
            "memory": 2048 * 1024**2, "firmware": "bios", "port_group": "Lab Net"}
    config.apply_spec(vmx, spec, ["Web Server 1.vmdk"])
    marks.write_marks(vmx, Marks("lab", "vm.web", "abc"))
    text = vmx.render()
    lines = text.splitlines()
    assert lines[:4] == EXISTING.splitlines()[:4]
    assert 'memSize = "2048"' in lines and 'numvcpus = "2"' in lines
    assert lines.index('memSize = "2048"') == EXISTING.splitlines().index('memSize = "1024"')
    assert 'ethernet0.networkName = "Lab Net"' in lines
    for kept in ('uuid.bios = "56 4d 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7"',
                 "tools.syncTime = FALSE", "# a comment someone left",
                 'ethernet0.generatedAddress = "00:0c:29:12:34:56"',
                 'annotation = "line one|0Aline two with |22quotes|22"'):
        assert kept in lines
    assert lines[-3:] == ['guestinfo.decl.project = "lab"', 'guestinfo.decl.address = "vm.web"',
                          'guestinfo.decl.spec-hash = "abc"']
    again = Vmx.parse(text)
    assert marks.read_marks(again) == Marks("lab", "vm.web", "abc")
    assert again.get("annotation") == 'line one\nline two with "quotes"'
    assert again.get("TOOLS.SYNCTIME") == "FALSE"  # keys compare without case


def test_read_spec_back():
    vmx = Vmx.parse(EXISTING)
    spec = config.read_spec(vmx, "datastore1", {"Web Server 1.vmdk": 8 * 1024**3})
    assert spec == {"display_name": "Web Server 1", "cpus": 1, "memory": 1024 * 1024**2,
                    "firmware": "bios", "guest_os": "", "datastore": "datastore1",
                    "port_group": "VM Network", "disk_count": 1,
                    "disk_size": {"scsi0:0": 8 * 1024**3}}
    assert marks.read_marks(vmx) is None


def test_new_vmx_round_trips_and_removing_the_nic():
    spec = {"display_name": 'odd "name" | x', "guest_os": "debian12-64", "cpus": 4,
            "memory": 4096 * 1024**2, "firmware": "uefi", "port_group": None}
    vmx = config.new_vmx(spec, ["a.vmdk", "a_1.vmdk"])
    back = config.read_spec(Vmx.parse(vmx.render()), "ds", {"a.vmdk": 1, "a_1.vmdk": 2})
    assert back["display_name"] == 'odd "name" | x' and back["firmware"] == "uefi"
    assert back["port_group"] is None and back["disk_size"] == {"scsi0:0": 1, "scsi0:1": 2}
    assert '"' not in vmx.render().split("displayName = ", 1)[1].splitlines()[0][1:-1]
    assert encode("a\nb") == "a|0Ab" and decode("a|0Ab|7C") == "a\nb|"


def test_disk_devices_skip_the_controller_unit():
    assert config.disk_devices(9)[-2:] == ["scsi0:8", "scsi0:9"]
    assert "scsi0:7" not in config.disk_devices(15)
    assert config.disk_file("web", 0) == "web.vmdk" and config.disk_file("web", 2) == \
        "web_2.vmdk"
