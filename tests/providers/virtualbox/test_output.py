"""VBoxManage output parsers, on outputs as the tool prints them (docs/facts/virtualbox.md)."""

from __future__ import annotations

from decl.providers.virtualbox import output
from decl.providers.virtualbox.locate import (
    default_machine_folder,
    install_locations,
    program_name,
)

LIST_VMS = ('"Ubuntu" {2e16b1fc-675d-4a7a-a9a1-e89a8bde7874}\n'
            '"go-virtualbox" {def44546-e3da-4902-8d15-b91c99c80cbc}\n')

# A 5.x-era capture, trimmed (ULONG values unquoted, slot keys quoted).
SHOWVMINFO = r'''name="Ubuntu"
groups="/"
ostype="Ubuntu (64-bit)"
UUID="37f5d336-bf07-48dd-947c-37e6a56420a7"
CfgFile="/Users/fix/VirtualBox VMs/go-virtualbox/go-virtualbox.vbox"
memory=1024
pagefusion="off"
vram=8
firmware="BIOS"
cpus=1
VMState="saved"
VMStateChangeTime="2018-04-23T09:29:53.476000000"
storagecontrollername1="SATA Controller"
storagecontrollertype1="IntelAhci"
"SATA Controller-0-0"="/Users/fix/VirtualBox VMs/go-virtualbox/ubuntu-16.04-amd64-disk001.vmdk"
"SATA Controller-ImageUUID-0-0"="32583b48-693e-45d4-882f-e9196d4f43c6"
"SATA Controller-1-0"="none"
nic1="nat"
macaddress1="080027EE1DF7"
description="a \"quoted\" word and a back\\slash"
cpuid=00000001,00000000,000306a9,00020800,80000201,178bfbff'''

LIST_HDDS = """UUID:           133eb63f-6099-4e47-a077-884e3f186fdc
Parent UUID:    base
State:          created
Type:           normal (base)
Location:       C:\\Users\\Luke\\VirtualBox VMs\\Ubuntu 18.04 LTS\\Ubuntu 18.04 LTS.vdi
Storage format: VDI
Capacity:       40960 MBytes
Encryption:     disabled

UUID:           b6c1101a-73fe-4a8c-a893-3518b4608134
Parent UUID:    base
State:          locked write
Type:           normal (base)
Location:       E:\\Ubuntu 18.04.6\\Ubuntu 18.04.6.vdi
Storage format: VDI
Capacity:       102400 MBytes
Encryption:     disabled

"""

NOT_FOUND = """VBoxManage: error: Could not find a registered machine named 'al2023'
VBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports
VBoxManage: error: Context: "FindMachine(Bstr(VMName).raw(), machine.asOutParam())" at line 228 of file VBoxManageMisc.cpp
"""  # noqa: E501

NOT_MUTABLE_WINDOWS = (
    "VBoxManage.exe: error: The machine is not mutable (state is Saved)\r\n"
    "VBoxManage.exe: error: Details: code VBOX_E_INVALID_VM_STATE (0x80bb0002), component "
    "MachineWrap, interface IMachine, callee IUnknown\r\n"
    'VBoxManage.exe: error: Context: "SetCPUProperty(CPUPropertyType_HWVirt, ValueUnion.f)" '
    "at line 941 of file VBoxManageModifyVM.cpp\r\n")


def test_list_vms_pairs_in_order_and_windows_line_ends():
    expected = [("Ubuntu", "2e16b1fc-675d-4a7a-a9a1-e89a8bde7874"),
                ("go-virtualbox", "def44546-e3da-4902-8d15-b91c99c80cbc")]
    assert output.parse_list_vms(LIST_VMS) == expected
    assert output.parse_list_vms(LIST_VMS.replace("\n", "\r\n")) == expected
    assert output.parse_list_vms("") == []


def test_list_vms_keeps_quotes_and_braces_inside_names():
    text = '"a "quoted" {name}" {2e16b1fc-675d-4a7a-a9a1-e89a8bde7874}\n'
    assert output.parse_list_vms(text) == [('a "quoted" {name}',
                                            "2e16b1fc-675d-4a7a-a9a1-e89a8bde7874")]


def test_machinereadable_numbers_strings_quoted_keys_and_escapes():
    info = output.parse_machinereadable(SHOWVMINFO)
    assert info["memory"] == 1024 and info["cpus"] == 1
    assert info["ostype"] == "Ubuntu (64-bit)"
    assert info["VMState"] == "saved"
    assert info["SATA Controller-0-0"].endswith("ubuntu-16.04-amd64-disk001.vmdk")
    assert info["SATA Controller-1-0"] == "none"
    assert info["description"] == 'a "quoted" word and a back\\slash'
    assert info["cpuid"] == "00000001,00000000,000306a9,00020800,80000201,178bfbff"


def test_disk_slots_of_a_controller():
    info = output.parse_machinereadable(SHOWVMINFO)
    slots = output.disk_slots(info, "SATA Controller")
    assert slots == {0: ("/Users/fix/VirtualBox VMs/go-virtualbox/"
                         "ubuntu-16.04-amd64-disk001.vmdk",
                         "32583b48-693e-45d4-882f-e9196d4f43c6")}


def test_extradata_enumerate_and_single_values():
    text = ("Key: GUI/LastCloseAction, Value: PowerOff\n"
            "Key: decl/address, Value: vm.web\n"
            "Key: decl/project, Value: lab, with a comma\n")
    assert output.parse_extradata(text) == {"GUI/LastCloseAction": "PowerOff",
                                            "decl/address": "vm.web",
                                            "decl/project": "lab, with a comma"}
    assert output.parse_extradata("") == {}
    assert output.parse_extradata_value("Value: vm.web\n") == "vm.web"
    assert output.parse_extradata_value("No value set!\n") is None


def test_list_hdds_blocks_with_capacity_in_bytes():
    media = output.parse_list_hdds(LIST_HDDS)
    assert [m.uuid for m in media] == ["133eb63f-6099-4e47-a077-884e3f186fdc",
                                       "b6c1101a-73fe-4a8c-a893-3518b4608134"]
    assert media[0].capacity == 40960 * 1024 * 1024
    assert media[1].state == "locked write"
    assert media[1].location == "E:\\Ubuntu 18.04.6\\Ubuntu 18.04.6.vdi"
    assert output.parse_list_hdds(LIST_HDDS.replace("\n", "\r\n")) == media


def test_created_uuids():
    created = ("Virtual machine 'X' is created and registered.\n"
               "UUID: 5f1c0a8e-1b2c-4d3e-8f90-123456789abc\n"
               "Settings file: '/home/u/VirtualBox VMs/X/X.vbox'\n")
    assert output.parse_created_uuid(created) == "5f1c0a8e-1b2c-4d3e-8f90-123456789abc"
    medium = "Medium created. UUID: 32583B48-693E-45D4-882F-E9196D4F43C6\n"
    assert output.parse_created_uuid(medium) == "32583b48-693e-45d4-882f-e9196d4f43c6"


def test_errors_message_and_code_on_unix_and_windows():
    error = output.parse_error(NOT_FOUND)
    assert error is not None
    assert error.message == "Could not find a registered machine named 'al2023'"
    assert error.code == "VBOX_E_OBJECT_NOT_FOUND"
    windows = output.parse_error(NOT_MUTABLE_WINDOWS)
    assert windows is not None and windows.code == "VBOX_E_INVALID_VM_STATE"
    assert windows.message == "The machine is not mutable (state is Saved)"
    assert output.parse_error("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%"
                              "...100%\n") is None


def test_run_state():
    assert output.run_state("running") == "running"
    assert output.run_state("paused") == "running"
    for word in ("poweroff", "aborted", "saved", "aborted-saved"):
        assert output.run_state(word) == "stopped"


def test_install_locations_per_os():
    windows = install_locations("Windows", {"VBOX_MSI_INSTALL_PATH": "D:\\VBox\\",
                                            "ProgramFiles": "C:\\Program Files"})
    assert windows == ["D:\\VBox\\VBoxManage.exe",
                       "C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"]
    assert install_locations("Windows", {}) == [
        "C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"]
    assert install_locations("Darwin", {})[0] == \
        "/Applications/VirtualBox.app/Contents/MacOS/VBoxManage"
    assert install_locations("Linux", {})[0] == "/usr/bin/VBoxManage"
    assert program_name("Windows") == "VBoxManage.exe"
    assert program_name("Linux") == program_name("Darwin") == "VBoxManage"


def test_default_machine_folder():
    assert default_machine_folder("Windows", "C:\\Users\\me") == "C:\\Users\\me\\VirtualBox VMs"
    assert default_machine_folder("Linux", "/home/me/") == "/home/me/VirtualBox VMs"


VBOX = b"""<?xml version="1.0"?>
<!--
** DO NOT EDIT THIS FILE.
-->
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{2e16b1fc-675d-4a7a-a9a1-e89a8bde7874}" name="web" OSType="Ubuntu_64"
           snapshotFolder="Snapshots" lastStateChange="2026-12-01T10:00:00Z">
    <MediaRegistry/>
    <ExtraData>
      <ExtraDataItem name="GUI/LastCloseAction" value="PowerOff"/>
      <ExtraDataItem name="decl/project" value="lab &amp; co"/>
    </ExtraData>
    <Hardware><CPU count="2"/></Hardware>
  </Machine>
</VirtualBox>
"""


def test_extradata_from_the_settings_file():
    assert output.parse_vbox_extradata(VBOX) == {"GUI/LastCloseAction": "PowerOff",
                                                 "decl/project": "lab & co"}
    no_extra = VBOX.replace(b"<ExtraData>", b"<Other>").replace(b"</ExtraData>", b"</Other>")
    assert output.parse_vbox_extradata(no_extra) == {}
    assert output.parse_vbox_extradata(b"encrypted \x00\x01 bytes") is None
    assert output.parse_vbox_extradata(b"<VirtualBox/>") is None
