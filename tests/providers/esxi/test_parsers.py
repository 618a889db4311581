# ruff: noqa: E501  (verbatim tool output keeps its width)
"""ESXi parsers on verbatim vim-cmd and vmkfstools outputs (sources in docs/facts/esxi.md)."""

from __future__ import annotations

from decl.providers.esxi import vimcmd

# A capture quoted by third parties (columns vary in width between hosts and versions).
GETALLVMS_CAPTURE = """\
Vmid   Name                File                 Guest OS      Version   Annotation
1      test1   [datastore1] test1/test1.vmx   winXPProGuest   vmx-08
"""

# Verbatim from a blog note on ESXi 6.5.0 build-6765664 (invalid VM first, the header's
# widths unrelated to the rows', vmids sorted as text).
GETALLVMS_65 = """\
Skipping invalid VM '6'
Vmid          Name                               File                             Guest OS       Version   Annotation
1      ubuntu-desktop       [HDD] ubuntu-desktop/ubuntu-desktop.vmx           ubuntu64Guest      vmx-13
11     ubuntu-server-1710   [HDD] ubuntu-server-1710/ubuntu-server-1710.vmx   ubuntu64Guest      vmx-13
2      ubuntu-server        [HDD] ubuntu-server/ubuntu-server.vmx             ubuntu64Guest      vmx-13
"""

GETALLVMS_QUIRKS = """\
Skipping invalid VM '16'
Vmid        Name                              File                                Guest OS       Version   Annotation
3      Web Server 1        [datastore1] Web Server 1/Web Server 1.vmx   otherLinux64Guest   vmx-13    first line
second line of the note
12     db                  [ssd 2] db/db.vmx                   debian12_64Guest    vmx-20
27     no-version          [datastore1] nv/nv.vmx              otherGuest
"""

NOT_FOUND = """\
(vim.fault.NotFound) {
   faultCause = (vmodl.MethodFault) null,
   faultMessage = <unset>,
   msg = "Unable to find a VM corresponding to "2"",
}
"""

OLD_FAULT = """\
(vmodl.fault.ManagedObjectNotFound) {
   dynamicType = <unset>,
   faultCause = (vmodl.MethodFault) null,
   obj = 'vim.VirtualMachine:672',
   msg = "The object has already been deleted or has not been completely created",
}
"""

POWER_ON_FAILED = """\
Powering on VM:
Power on failed: (vim.fault.InvalidPowerState) {
   faultCause = (vmodl.MethodFault) null,
   faultMessage = <unset>,
   requestedState = "poweredOn",
   existingState = "poweredOn",
   msg = "The attempted operation cannot be performed in the current state (Powered on).",
}
"""

# apache/vcl VIM_SSH.pm, comment of _get_datastore_info (an older host: dynamicType lines).
LISTSUMMARY = """\
(vim.Datastore.Summary) [
   (vim.Datastore.Summary) {
      dynamicType = <unset>,
      datastore = 'vim.Datastore:4bcf0efe-c426acc4-c7e1-001a644d1cc0',
      name = "local-datastore",
      url = "/vmfs/volumes/4bcf0efe-c426acc4-c7e1-001a644d1cc0",
      capacity = 31138512896,
      freeSpace = 26277314560,
      uncommitted = 0,
      accessible = true,
      multipleHostAccess = <unset>,
      type = "VMFS",
   },
   (vim.Datastore.Summary) {
      dynamicType = <unset>,
      datastore = 'vim.Datastore:10.25.0.245:/vmfs/volumes/nfs-datastore',
      name = "nfs-datastore",
      url = "/vmfs/volumes/95e378c2-863dd2b4",
      capacity = 975027175424,
      freeSpace = 108854874112,
      uncommitted = 0,
      accessible = false,
      multipleHostAccess = <unset>,
      type = "NFS",
   },
]
"""

GUEST_RUNNING = """\
(vim.vm.GuestInfo) {
   toolsStatus = "toolsOk",
   toolsVersionStatus = "guestToolsCurrent",
   toolsRunningStatus = "guestToolsRunning",
   toolsVersion = "12352",
}
"""

DESCRIPTOR = """\
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 41943040 VMFS "web-flat.vmdk"

# The Disk Data Base
#DDB

ddb.thinProvisioned = "1"
"""


def test_getallvms_capture():
    rows, invalid = vimcmd.parse_getallvms(GETALLVMS_CAPTURE)
    assert invalid == []
    assert rows == [vimcmd.VmRow("1", "test1", "datastore1", "test1/test1.vmx",
                                 "winXPProGuest", "vmx-08", "")]


def test_getallvms_esxi_65_capture():
    rows, invalid = vimcmd.parse_getallvms(GETALLVMS_65)
    assert invalid == ["6"]
    assert [(r.vmid, r.name, r.datastore, r.path, r.guest, r.version) for r in rows] == [
        ("1", "ubuntu-desktop", "HDD", "ubuntu-desktop/ubuntu-desktop.vmx", "ubuntu64Guest",
         "vmx-13"),
        ("11", "ubuntu-server-1710", "HDD", "ubuntu-server-1710/ubuntu-server-1710.vmx",
         "ubuntu64Guest", "vmx-13"),
        ("2", "ubuntu-server", "HDD", "ubuntu-server/ubuntu-server.vmx", "ubuntu64Guest",
         "vmx-13"),
    ]


def test_getallvms_names_with_spaces_annotations_and_invalid_vms():
    rows, invalid = vimcmd.parse_getallvms(GETALLVMS_QUIRKS)
    assert invalid == ["16"]
    assert [(r.vmid, r.name, r.datastore, r.path) for r in rows] == [
        ("3", "Web Server 1", "datastore1", "Web Server 1/Web Server 1.vmx"),
        ("12", "db", "ssd 2", "db/db.vmx"),
        ("27", "no-version", "datastore1", "nv/nv.vmx"),
    ]
    assert rows[0].annotation == "first line\nsecond line of the note"
    assert (rows[0].guest, rows[0].version) == ("otherLinux64Guest", "vmx-13")
    assert (rows[2].guest, rows[2].version, rows[2].annotation) == ("otherGuest", "", "")


def test_getallvms_without_vms():
    assert vimcmd.parse_getallvms("Vmid   Name   File   Guest OS   Version   Annotation\n") \
        == ([], [])


def test_faults_are_found_whatever_the_prefix():
    fault = vimcmd.find_fault(NOT_FOUND)
    assert fault is not None and fault.short == "NotFound"
    assert fault.msg == 'Unable to find a VM corresponding to "2"'
    old = vimcmd.find_fault(OLD_FAULT)
    assert old is not None and old.name == "vmodl.fault.ManagedObjectNotFound"
    assert "already been deleted" in old.msg
    prefixed = vimcmd.find_fault(POWER_ON_FAILED)
    assert prefixed is not None and prefixed.short == "InvalidPowerState"
    assert vimcmd.find_fault("Powering on VM:\n") is None
    assert vimcmd.find_fault("Retrieved runtime info\nPowered off\n") is None


def test_power_state():
    assert vimcmd.parse_power("Retrieved runtime info\nPowered off\n") == "stopped"
    assert vimcmd.parse_power("Retrieved runtime info\nPowered on\n") == "running"
    assert vimcmd.parse_power("Retrieved runtime info\nSuspended\n") == "suspended"
    assert vimcmd.parse_power(NOT_FOUND) is None
    assert vimcmd.parse_power("") is None


def test_datastores_and_tools():
    assert vimcmd.parse_datastores(LISTSUMMARY) == {
        "local-datastore": "/vmfs/volumes/4bcf0efe-c426acc4-c7e1-001a644d1cc0"}
    assert vimcmd.tools_running(GUEST_RUNNING)
    assert not vimcmd.tools_running(GUEST_RUNNING.replace("guestToolsRunning",
                                                          "guestToolsNotRunning"))


def test_registervm_prints_the_new_vmid():
    assert vimcmd.parse_new_vmid("42\n") == "42"
    assert vimcmd.parse_new_vmid(NOT_FOUND) is None
    assert vimcmd.parse_new_vmid("") is None


def test_descriptor_size_and_vmkfstools_sizes():
    assert vimcmd.descriptor_size(DESCRIPTOR) == 20 * 1024**3
    assert vimcmd.descriptor_size("RW 100 VMFS \"a\"\nRW 28 VMFS \"b\"\n") == 128 * 512
    assert vimcmd.descriptor_size("not a descriptor") is None
    assert vimcmd.vmkfstools_size(20 * 1024**3) == "20G"
    assert vimcmd.vmkfstools_size(1536 * 1024**2) == "1536M"
    assert vimcmd.vmkfstools_size(1000) == "1K"
