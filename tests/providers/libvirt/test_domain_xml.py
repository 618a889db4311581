"""Domain XML is built with ElementTree: values are escaped, updates keep libvirt's additions."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from decl.core.resource import Marks
from decl.providers.libvirt.domain_xml import DiskDevice, DomainParams, parse_domain, render_domain

CAPTURES = os.path.join(os.path.dirname(__file__), "captures")


def params(**overrides) -> DomainParams:
    base = dict(name="web", domain_type="qemu", arch="x86_64", machine="q35", cpu_model=None,
                memory=64 * 1024 * 1024, cpus=2, firmware="bios", network_mode="nat",
                network_source="default",
                disks=[DiskDevice(dev="vda", path="/pool/web-vda.qcow2")],
                marks=Marks("lab", "vm.web", "abc"), record={"seed": None})
    base.update(overrides)
    return DomainParams(**base)


def test_new_domain_round_trips():
    parsed = parse_domain(render_domain(params()))
    assert (parsed.name, parsed.domain_type, parsed.arch, parsed.machine) == \
        ("web", "qemu", "x86_64", "q35")
    assert parsed.memory == 64 * 1024 * 1024 and parsed.cpus == 2
    assert [(d.dev, d.path) for d in parsed.disks] == [("vda", "/pool/web-vda.qcow2")]
    assert (parsed.network_mode, parsed.network_source) == ("nat", "default")
    assert parsed.marks == Marks("lab", "vm.web", "abc")
    assert parsed.record == {"seed": None}
    assert parsed.firmware == "bios"


def test_hostile_values_stay_values():
    hostile = "x'/><devices><disk file='/etc/shadow'/></devices><a b='"
    xml = render_domain(params(name=hostile,
                               disks=[DiskDevice(dev="vda", path="/p/a&b<c>.qcow2")]))
    root = ET.fromstring(xml)
    assert root.findtext("name") == hostile
    assert len(root.findall("devices/disk")) == 1
    assert root.find("devices/disk/source").get("file") == "/p/a&b<c>.qcow2"


def test_update_keeps_what_libvirt_added_and_changes_what_decl_manages():
    base = open(os.path.join(CAPTURES, "dumpxml-uefi-bridge.xml")).read()
    before = ET.fromstring(base)
    xml = render_domain(params(name="cap-uefi", memory=128 * 1024 * 1024, cpus=1,
                               firmware="uefi", network_mode="bridge",
                               network_source="br0", disks=[]), base_xml=base)
    root = ET.fromstring(xml)
    parsed = parse_domain(xml)
    assert parsed.memory == 128 * 1024 * 1024
    assert root.findtext("currentMemory") == str(128 * 1024)
    assert root.findtext("uuid") == before.findtext("uuid")
    assert len(root.findall("devices/controller")) == len(before.findall("devices/controller"))
    assert root.find("devices/disk/address") is not None  # the disk is left as libvirt had it
    assert (parsed.network_mode, parsed.network_source) == ("bridge", "br0")
    assert parsed.marks == Marks("lab", "vm.web", "abc")
    assert parsed.cdroms == []  # the manifest has no cdrom: it is detached


def test_uefi_sets_firmware_and_acpi_and_bios_removes_loader():
    root = ET.fromstring(render_domain(params(firmware="uefi")))
    assert root.find("os").get("firmware") == "efi"
    assert root.find("features/acpi") is not None
    with_loader = render_domain(params(firmware="uefi"))
    bios = ET.fromstring(render_domain(params(firmware="bios"), base_xml=with_loader))
    assert bios.find("os").get("firmware") is None
    assert parse_domain(ET.tostring(bios, encoding="unicode")).firmware == "bios"


def test_cpu_model_modes():
    custom = ET.fromstring(render_domain(params(cpu_model="cortex-a57", arch="aarch64")))
    assert custom.find("cpu").get("mode") == "custom"
    assert custom.findtext("cpu/model") == "cortex-a57"
    passthrough = ET.fromstring(render_domain(params(cpu_model="host-passthrough")))
    assert passthrough.find("cpu").get("mode") == "host-passthrough"
    assert parse_domain(ET.tostring(passthrough, encoding="unicode")).cpu_model == \
        "host-passthrough"


def test_network_none_removes_interfaces_and_keeps_mac_otherwise():
    base = render_domain(params())
    root = ET.fromstring(base)
    iface = root.find("devices/interface")
    ET.SubElement(iface, "mac", address="52:54:00:aa:bb:cc")
    base = ET.tostring(root, encoding="unicode")
    none = ET.fromstring(render_domain(params(network_mode="none"), base_xml=base))
    assert none.findall("devices/interface") == []
    bridged = parse_domain(render_domain(params(network_mode="bridge", network_source="br0"),
                                         base_xml=base))
    assert bridged.mac == "52:54:00:aa:bb:cc"


def test_acpi_on_x86_and_only_with_uefi_on_aarch64():
    assert ET.fromstring(render_domain(params())).find("features/acpi") is not None
    arm = ET.fromstring(render_domain(params(arch="aarch64", machine="virt")))
    assert arm.find("features/acpi") is None
    arm_uefi = ET.fromstring(render_domain(params(arch="aarch64", firmware="uefi")))
    assert arm_uefi.find("features/acpi") is not None
