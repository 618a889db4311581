"""Domain XML, built and read with xml.etree.ElementTree (never by pasting strings).

`render_domain` writes the fields decl manages into a domain: a fresh one for a create, or
the domain's own inactive XML for an update or an adoption, so that everything libvirt
filled in (controllers, PCI addresses, the MAC address) stays as it was.
`parse_domain` reads a domain back (a pure function, tested on captured `dumpxml` output).
The ownership marks live in `<metadata>` under decl's own XML namespace.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from decl.core.resource import Marks

NS = "https://decl.dev/xmlns/libvirt/1"
ET.register_namespace("decl", NS)


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


@dataclass
class DiskDevice:
    """A disk or cdrom of a domain."""

    dev: str
    path: str | None
    device: str = "disk"  # disk | cdrom
    bus: str = "virtio"
    format: str = "qcow2"


@dataclass
class DomainParams:
    """What decl sets in a domain."""

    name: str
    domain_type: str
    arch: str
    machine: str | None
    cpu_model: str | None
    memory: int  # bytes
    cpus: int
    firmware: str  # bios | uefi
    network_mode: str  # nat | bridge | none
    network_source: str | None  # libvirt network name, or bridge name
    disks: list[DiskDevice] = field(default_factory=list)
    cdroms: list[DiskDevice] = field(default_factory=list)
    marks: Marks | None = None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedDomain:
    """What decl reads from a domain's XML."""

    name: str
    uuid: str | None
    domain_type: str
    arch: str | None
    machine: str | None
    cpu_model: str | None
    memory: int | None  # bytes
    cpus: int | None
    firmware: str
    disks: list[DiskDevice]
    cdroms: list[DiskDevice]
    network_mode: str
    network_source: str | None
    mac: str | None
    marks: Marks | None
    record: dict[str, Any]


_UNIT = {"b": 1, "bytes": 1, "kb": 1000, "k": 1024, "kib": 1024, "mb": 1000**2, "m": 1024**2,
         "mib": 1024**2, "gb": 1000**3, "g": 1024**3, "gib": 1024**3, "tb": 1000**4,
         "t": 1024**4, "tib": 1024**4}


def _memory_bytes(element: ET.Element | None) -> int | None:
    if element is None or not (element.text or "").strip():
        return None
    unit = element.get("unit", "KiB").lower()
    return int(element.text.strip()) * _UNIT.get(unit, 1024)  # type: ignore[union-attr]


def parse_domain(xml_text: str) -> ParsedDomain:
    """Read the fields decl compares from a domain's XML."""
    root = ET.fromstring(xml_text)
    os_type = root.find("os/type")
    os_el = root.find("os")
    loader = root.find("os/loader")
    firmware = "bios"
    if (os_el is not None and os_el.get("firmware") == "efi") or (
        loader is not None and loader.get("type", "pflash") == "pflash"
        and (loader.text or "").strip()
    ):
        firmware = "uefi"
    vcpu = root.find("vcpu")
    disks: list[DiskDevice] = []
    cdroms: list[DiskDevice] = []
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        source = disk.find("source")
        driver = disk.find("driver")
        path = None
        if source is not None:
            path = source.get("file") or source.get("dev") or source.get("name")
        item = DiskDevice(
            dev=target.get("dev", "") if target is not None else "",
            path=path,
            device=disk.get("device", "disk"),
            bus=target.get("bus", "") if target is not None else "",
            format=driver.get("type", "raw") if driver is not None else "raw",
        )
        if item.device == "cdrom":
            cdroms.append(item)
        elif item.device == "disk":
            disks.append(item)
    mode, source_name, mac = "none", None, None
    interface = root.find("devices/interface")
    if interface is not None:
        kind = interface.get("type")
        source = interface.find("source")
        mac_el = interface.find("mac")
        mac = mac_el.get("address") if mac_el is not None else None
        if kind == "network":
            mode, source_name = "nat", source.get("network") if source is not None else None
        elif kind == "bridge":
            mode, source_name = "bridge", source.get("bridge") if source is not None else None
        else:
            mode, source_name = str(kind), None
    marks, record = _read_metadata(root)
    return ParsedDomain(
        name=(root.findtext("name") or "").strip(),
        uuid=(root.findtext("uuid") or "").strip() or None,
        domain_type=root.get("type", "kvm"),
        arch=os_type.get("arch") if os_type is not None else None,
        machine=os_type.get("machine") if os_type is not None else None,
        cpu_model=_cpu_model(root.find("cpu")),
        memory=_memory_bytes(root.find("memory")),
        cpus=int((vcpu.text or "").strip()) if vcpu is not None and (vcpu.text or "").strip()
        else None,
        firmware=firmware,
        disks=disks,
        cdroms=cdroms,
        network_mode=mode,
        network_source=source_name,
        mac=mac,
        marks=marks,
        record=record,
    )


def _cpu_model(cpu: ET.Element | None) -> str | None:
    if cpu is None:
        return None
    mode = cpu.get("mode", "custom")
    if mode in ("host-passthrough", "host-model", "maximum"):
        return mode
    model = cpu.find("model")
    return (model.text or "").strip() or None if model is not None else None


def _read_metadata(root: ET.Element) -> tuple[Marks | None, dict[str, Any]]:
    resource = root.find(f"metadata/{_q('resource')}")
    if resource is None:
        return None, {}
    project = (resource.findtext(_q("project")) or "").strip()
    if not project:
        return None, {}
    marks = Marks(project=project,
                  address=(resource.findtext(_q("address")) or "").strip(),
                  spec_hash=(resource.findtext(_q("spec-hash")) or "").strip())
    try:
        record = json.loads(resource.findtext(_q("record")) or "{}")
    except ValueError:
        record = {}
    return marks, record if isinstance(record, dict) else {}


def _child(parent: ET.Element, tag: str, before: tuple[str, ...] = ()) -> ET.Element:
    """The first child `tag`, created (before the first of `before`, else at the end)."""
    found = parent.find(tag)
    if found is not None:
        return found
    element = ET.Element(tag)
    for index, child in enumerate(list(parent)):
        if child.tag in before:
            parent.insert(index, element)
            return element
    parent.append(element)
    return element


def render_domain(params: DomainParams, base_xml: str | None = None) -> str:
    """The domain XML with decl's fields set; on `base_xml` (an update) or from nothing."""
    root = ET.fromstring(base_xml) if base_xml else ET.Element("domain")
    root.set("type", params.domain_type)
    root.attrib.pop("id", None)
    _child(root, "name").text = params.name
    _set_metadata(root, params)
    memory_kib = str(params.memory // 1024)
    memory = _child(root, "memory", before=("currentMemory", "vcpu", "os"))
    memory.attrib.clear()
    memory.set("unit", "KiB")
    memory.text = memory_kib
    current = _child(root, "currentMemory", before=("vcpu", "os"))
    current.attrib.clear()
    current.set("unit", "KiB")
    current.text = memory_kib
    vcpu = _child(root, "vcpu", before=("os",))
    vcpu.attrib.pop("current", None)
    vcpu.set("placement", vcpu.get("placement", "static"))
    vcpu.text = str(params.cpus)
    _set_os(root, params)
    _set_features(root, params.arch, params.firmware)
    _set_cpu(root, params.cpu_model)
    devices = _child(root, "devices")
    if base_xml is None:
        for disk in params.disks:
            devices.append(_disk_element(disk))
    _set_cdroms(devices, params.cdroms)
    _set_interface(devices, params)
    if base_xml is None:
        serial = ET.SubElement(devices, "serial", type="pty")
        ET.SubElement(serial, "target", port="0")
        ET.SubElement(devices, "console", type="pty")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def _set_metadata(root: ET.Element, params: DomainParams) -> None:
    metadata = _child(root, "metadata", before=("memory", "maxMemory", "currentMemory", "vcpu",
                                                "os"))
    for old in metadata.findall(_q("resource")):
        metadata.remove(old)
    if params.marks is None:
        return
    resource = ET.SubElement(metadata, _q("resource"))
    ET.SubElement(resource, _q("project")).text = params.marks.project
    ET.SubElement(resource, _q("address")).text = params.marks.address
    ET.SubElement(resource, _q("spec-hash")).text = params.marks.spec_hash
    ET.SubElement(resource, _q("record")).text = json.dumps(params.record, sort_keys=True)


def _set_os(root: ET.Element, params: DomainParams) -> None:
    os_el = _child(root, "os", before=("features", "cpu", "clock", "on_poweroff", "devices"))
    os_type = _child(os_el, "type")
    os_type.set("arch", params.arch)
    if params.machine:
        os_type.set("machine", params.machine)
    os_type.text = "hvm"
    if params.firmware == "uefi":
        os_el.set("firmware", "efi")
    else:
        os_el.attrib.pop("firmware", None)
        for tag in ("loader", "nvram"):
            for element in os_el.findall(tag):
                os_el.remove(element)
    if os_el.find("boot") is None:
        ET.SubElement(os_el, "boot", dev="hd")


def _set_features(root: ET.Element, arch: str, firmware: str) -> None:
    """ACPI (graceful shutdown; x86 UEFI needs it) and, on x86, the APIC. On aarch64,
    ACPI comes with UEFI only (libvirt refuses it otherwise)."""
    wanted: dict[str, tuple[str, ...]] = {"x86_64": ("acpi", "apic"), "i686": ("acpi", "apic")}
    if firmware == "uefi":
        wanted["aarch64"] = ("acpi",)
    if arch not in wanted:
        return
    features = root.find("features")
    if features is None:
        features = ET.Element("features")
        children = list(root)
        position = next((i for i, c in enumerate(children)
                         if c.tag in ("cpu", "clock", "on_poweroff", "on_reboot", "on_crash",
                                      "pm", "devices")), len(children))
        root.insert(position, features)
    for name in wanted[arch]:
        if features.find(name) is None:
            ET.SubElement(features, name)


def _set_cpu(root: ET.Element, cpu_model: str | None) -> None:
    if cpu_model is None:
        return
    old = root.find("cpu")
    if old is not None:
        root.remove(old)
    cpu = ET.Element("cpu")
    if cpu_model in ("host-passthrough", "host-model", "maximum"):
        cpu.set("mode", cpu_model)
    else:
        cpu.set("mode", "custom")
        cpu.set("match", "exact")
        ET.SubElement(cpu, "model", fallback="allow").text = cpu_model
    children = list(root)
    position = next((i for i, c in enumerate(children)
                     if c.tag in ("clock", "on_poweroff", "on_reboot", "on_crash", "pm",
                                  "devices")), len(children))
    root.insert(position, cpu)


def _disk_element(disk: DiskDevice) -> ET.Element:
    element = ET.Element("disk", type="file", device=disk.device)
    ET.SubElement(element, "driver", name="qemu", type=disk.format)
    if disk.path:
        ET.SubElement(element, "source", file=disk.path)
    ET.SubElement(element, "target", dev=disk.dev, bus=disk.bus)
    if disk.device == "cdrom":
        ET.SubElement(element, "readonly")
    return element


def _set_cdroms(devices: ET.Element, cdroms: list[DiskDevice]) -> None:
    for disk in devices.findall("disk"):
        if disk.get("device") == "cdrom":
            devices.remove(disk)
    position = len([d for d in devices if d.tag in ("emulator", "disk")])
    for offset, cdrom in enumerate(cdroms):
        devices.insert(position + offset, _disk_element(cdrom))


def _set_interface(devices: ET.Element, params: DomainParams) -> None:
    interfaces = devices.findall("interface")
    mac = None
    for index, interface in enumerate(interfaces):
        if index == 0:
            mac_el = interface.find("mac")
            mac = mac_el.get("address") if mac_el is not None else None
        devices.remove(interface)
    if params.network_mode == "none":
        return
    kind = "network" if params.network_mode == "nat" else "bridge"
    interface = ET.Element("interface", type=kind)
    if mac:
        ET.SubElement(interface, "mac", address=mac)
    ET.SubElement(interface, "source", {kind: params.network_source or ""})
    ET.SubElement(interface, "model", type="virtio")
    position = len([d for d in devices if d.tag in ("emulator", "disk", "controller", "lease",
                                                    "filesystem")])
    devices.insert(position, interface)
