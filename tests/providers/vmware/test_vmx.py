"""The .vmx reader/writer keeps what decl does not manage; vmrun and VMDK parsers."""

from __future__ import annotations

from decl.providers.vmware import output
from decl.providers.vmware.locate import host_type, install_locations, program_name, same_vmx_path
from decl.providers.vmware.vmx import VmxDocument, decode, encode

# Packer's default template shape, with a Linux shebang, a comment and mixed-case keys.
VMX = """#!/usr/bin/vmware
.encoding = "UTF-8"
displayName = "web"
numvcpus = "2"
memSize = "1024"
config.version = "8"
# a comment someone wrote
virtualHW.version = "19"
guestOS = "ubuntu-64"
annotation = "first line|0Asecond |22quoted|22"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web-disk0.vmdk"
"""


def test_get_is_case_insensitive_and_decodes():
    doc = VmxDocument(VMX)
    assert doc.get("memsize") == "1024"
    assert doc.get("DISPLAYNAME") == "web"
    assert doc.get("annotation") == 'first line\nsecond "quoted"'
    assert doc.get("missing") is None


def test_untouched_document_renders_byte_for_byte():
    assert VmxDocument(VMX).render() == VMX
    crlf = VMX.replace("\n", "\r\n")
    assert VmxDocument(crlf).render() == crlf


def test_set_rewrites_in_place_keeping_order_and_spelling_and_appends_new_keys():
    doc = VmxDocument(VMX)
    doc.set("memsize", "2048")
    doc.set("decl.project", "lab")
    text = doc.render()
    lines = text.splitlines()
    assert lines[4] == 'memSize = "2048"'
    assert lines[-1] == 'decl.project = "lab"'
    assert lines[:4] == VMX.splitlines()[:4]
    assert lines[5:-1] == VMX.splitlines()[5:]


def test_delete_and_prefix():
    doc = VmxDocument(VMX + 'guestinfo.userdata = "abc"\nguestinfo.userdata.encoding = "b"\n')
    assert doc.keys_with_prefix("guestinfo.") == {"guestinfo.userdata": "abc",
                                                   "guestinfo.userdata.encoding": "b"}
    doc.delete_prefix("GUESTINFO.")
    assert doc.render() == VMX
    doc.delete("numvcpus")
    assert "numvcpus" not in doc.render()


def test_duplicate_keys_last_wins_and_set_collapses_them():
    doc = VmxDocument('a = "1"\nb = "x"\nA = "2"\n')
    assert doc.get("a") == "2"
    doc.set("a", "3")
    assert doc.render() == 'a = "3"\nb = "x"\n'


def test_encode_decode_round_trip():
    value = 'a|b"c#d\nline'
    assert encode(value) == '"a|7Cb|22c|23d|0Aline"'
    assert decode(encode(value)) == value
    assert decode("unquoted") == "unquoted"


def test_vmrun_list_and_errors():
    text = ("Total running VMs: 2\n/Users/me/Virtual Machines.localized/a.vmwarevm/a.vmx\n"
            "C:\\VMs\\b\\b.vmx\n")
    assert output.parse_list(text) == ["/Users/me/Virtual Machines.localized/a.vmwarevm/a.vmx",
                                       "C:\\VMs\\b\\b.vmx"]
    assert output.parse_list("Total running VMs: 0\r\n") == []
    off = "Error: The virtual machine is not powered on: C:\\VMs\\b\\b.vmx\n"
    message = output.error_of(off, 255)
    assert message == "The virtual machine is not powered on: C:\\VMs\\b\\b.vmx"
    assert output.not_powered_on(message)
    assert output.error_of("Error: Unable to get the IP address\n", 0) == \
        "Unable to get the IP address"
    wrong_type = ("Unable to connect to host.\nError: The operation is not supported for the "
                  "specified parameters\n")
    assert output.error_of(wrong_type, 255) == \
        "The operation is not supported for the specified parameters"
    assert output.error_of("", 0) is None
    assert output.error_of("", 1) == "exit code 1"


DESCRIPTOR = """# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="twoGbMaxExtentSparse"

# Extent description
RW 4192256 SPARSE "web-disk0-s001.vmdk"
RW 8192 SPARSE "web-disk0-s002.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
"""


def test_vmdk_capacity_from_extents_text_and_embedded():
    assert output.vmdk_capacity(DESCRIPTOR.encode()) == (4192256 + 8192) * 512
    sparse = b"KDMV" + b"\0" * 508 + DESCRIPTOR.encode() + b"\0" * 64
    assert output.vmdk_capacity(sparse) == (4192256 + 8192) * 512
    assert output.vmdk_capacity(b"KDMV\0\0binary") is None
    assert output.vmdk_extent_files(DESCRIPTOR.encode()) == ["web-disk0-s001.vmdk",
                                                            "web-disk0-s002.vmdk"]


def test_size_argument_whole_mib_rounded_up():
    assert output.size_argument(20 * 1024 ** 3) == "20480MB"
    assert output.size_argument(1024 ** 2 + 1) == "2MB"


def test_host_type_and_locations_per_os():
    assert host_type("Darwin") == "fusion"
    assert host_type("Windows") == host_type("Linux") == "ws"
    assert install_locations("vmrun", "Darwin", {}) == [
        "/Applications/VMware Fusion.app/Contents/Library/vmrun"]
    assert install_locations("vmware-vdiskmanager", "Windows", {}) == [
        "C:\\Program Files (x86)\\VMware\\VMware Workstation\\vmware-vdiskmanager.exe",
        "C:\\Program Files\\VMware\\VMware Workstation\\vmware-vdiskmanager.exe"]
    assert install_locations("vmrun", "Linux", {})[0] == "/usr/bin/vmrun"
    assert program_name("vmrun", "Windows") == "vmrun.exe"
    assert program_name("vmrun", "Linux") == "vmrun"


def test_same_vmx_path_per_os():
    assert same_vmx_path("C:/VMs/A/a.vmx", "c:\\vms\\a\\A.VMX", "Windows")
    assert same_vmx_path("/Users/Me/a.vmx", "/users/me/A.vmx", "Darwin")
    assert not same_vmx_path("/home/me/a.vmx", "/home/me/A.vmx", "Linux")
    assert same_vmx_path("/home/me/a.vmx", "/home/me/a.vmx", "Linux")
