"""prlctl output parsers, on captures and fixtures from docs/facts/parallels.md."""

import pytest

from decl.providers.parallels import output

# The compact form Parallels Desktop 26 prints (uuid without braces).
LIST_26 = ('[{"uuid":"01732d18-5897-4550-b905-6fb947678c68","status":"invalid",'
           '"ip_configured":"-","name":"Windows 11"}]\n')

# Tab-indented, as the OpenVZ prlctl source writes JSON, with the keys its info printer uses.
INFO = """[
\t{
\t\t"ID": "bb586bcf-703d-47f9-b902-b60d54504c2a",
\t\t"Name": "mpd-130",
\t\t"Description": "mine\\ndecl:project=lab address=vm.mpd spec-hash=abc",
\t\t"State": "running",
\t\t"Home": "/Users/lab/Parallels/mpd-130.pvm/",
\t\t"EFI boot": "on",
\t\t"Hardware": {
\t\t\t"cpu": {
\t\t\t\t"cpus": 2
\t\t\t},
\t\t\t"memory": {
\t\t\t\t"size": "2048Mb"
\t\t\t},
\t\t\t"hdd1": {
\t\t\t\t"enabled": true,
\t\t\t\t"image": "/Users/lab/Parallels/mpd-130.pvm/harddisk1.hdd",
\t\t\t\t"size": "10240Mb"
\t\t\t},
\t\t\t"hdd0": {
\t\t\t\t"enabled": true,
\t\t\t\t"image": "/Users/lab/Parallels/mpd-130.pvm/harddisk.hdd",
\t\t\t\t"size": "65536Mb"
\t\t\t},
\t\t\t"cdrom0": {
\t\t\t\t"enabled": true,
\t\t\t\t"image": "/isos/debian.iso"
\t\t\t},
\t\t\t"net0": {
\t\t\t\t"enabled": true,
\t\t\t\t"type": "bridged",
\t\t\t\t"iface": "en0",
\t\t\t\t"mac": "001C42B4B074"
\t\t\t}
\t\t}
\t}
]
"""

# vagrant-parallels' unit fixture (memory as "512Mb", no size on the disk, shared network).
VAGRANT_FIXTURE = """[
  {
    "ID": "1234-here-is-uuid-5678",
    "Name": "VM_Name",
    "State": "stopped",
    "Home": "/path/to/VM_Name.pvm/",
    "GuestTools": {"state": "installed", "version": "8.0.18615.123456"},
    "Hardware": {
      "cpu": {"cpus": 1},
      "memory": {"size": "512Mb"},
      "hdd0": {"enabled": true, "image": "/path/to/disk1.hdd"},
      "net0": {"enabled": true, "type": "shared", "mac": "001C42B4B074", "card": "e1000",
               "dhcp": "yes"}
    }
  }
]"""

MIB = 1024 * 1024


def test_info_of_a_vm():
    (vm,) = output.parse_list_info(INFO)
    assert (vm.uuid, vm.name, vm.state, vm.cpus, vm.memory, vm.efi) == (
        "bb586bcf-703d-47f9-b902-b60d54504c2a", "mpd-130", "running", 2, 2048 * MIB, True)
    assert [(d.device, d.size) for d in vm.disks] == [("hdd0", 65536 * MIB),
                                                       ("hdd1", 10240 * MIB)]
    assert vm.cdrom == "/isos/debian.iso"
    assert vm.network == {"mode": "bridge", "bridge": "en0"}
    assert vm.description.endswith("spec-hash=abc")


def test_vagrant_fixture():
    (vm,) = output.parse_list_info(VAGRANT_FIXTURE)
    assert (vm.memory, vm.cpus, vm.efi, vm.network["mode"]) == (512 * MIB, 1, False, "nat")
    assert vm.disks[0].size is None
    assert vm.description == ""


def test_garbage_and_control_characters_around_json():
    noisy = "Warning: something\x07\n" + INFO.replace('"Name"', '"Name"\x01') + "\x00trailer"
    (vm,) = output.parse_list_info(noisy)
    assert vm.name == "mpd-130"


def test_short_list_json_is_a_list_but_not_info():
    vms = output.parse_list_info(LIST_26)
    assert vms[0].name == "" and vms[0].cpus is None  # no Name/Hardware keys: not -i output


@pytest.mark.parametrize("text", ["", "Failed to get VM config", "{broken"])
def test_not_json(text):
    with pytest.raises(ValueError):
        output.parse_list_info(text)


@pytest.mark.parametrize("value,expected", [("512Mb", 512 * MIB), ("2Gb", 2048 * MIB),
                                            (1024, 1024 * MIB), ("x", None), (None, None)])
def test_sizes(value, expected):
    assert output.size_bytes(value) == expected


def test_version_and_errors():
    assert output.parse_version("prlctl version 26.1.1 (57288)\n") == "26.1.1"
    assert output.parse_version("nope") is None
    err = "Failed to get VM config: The virtual machine could not be found.\n"
    assert output.is_not_found(err)
    assert output.error_text("", err) == err.strip()
    assert output.error_text("Usage: prlctl ...", "") == "Usage: prlctl ..."


def test_disabled_nic_is_no_network():
    text = INFO.replace('"type": "bridged"', '"type": "shared"').replace(
        '\t\t\t\t"enabled": true,\n\t\t\t\t"type"', '\t\t\t\t"enabled": false,\n\t\t\t\t"type"')
    (vm,) = output.parse_list_info(text)
    assert vm.network == {"mode": "none", "bridge": None}
