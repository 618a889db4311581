"""Xen parsers on verbatim xl outputs and config files (sources in docs/facts/xen.md)."""

from __future__ import annotations

import pytest

from decl.core.resource import Marks
from decl.providers.xen import xl
from decl.providers.xen.cfg import BEGIN, CfgError, XlConfig, disk_spec, parse_disk_spec, vif_bridge

# xl.1 man page example, with the tab-separated header of tools/xl/xl_info.c list_domains.
XL_LIST = (
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    "Domain-0                                     0   750     4     r-----   11794.3\n"
    "win                                          1  1019     1     r-----       0.3\n"
    "linux                                        2  2048     2     -b----    5624.2\n"
    "going                                        3   512     1     ---s-d       1.0\n"
)

# A capture of `xl vcpu-set` beyond maxvcpus (a hosting provider's notes).
VCPU_ERROR = (
    "libxl: error: libxl_domain.c:1869:libxl_set_vcpuonline: Domain 7:Requested 8 VCPUs, "
    "however maxcpus is 1!: Function not implemented\n\n"
    "libxl_set_vcpuonline failed domid=7 max_vcpus=8, rc: -3\n")


def test_xl_list():
    domains = xl.parse_list(XL_LIST)
    assert [(d.name, d.domid, d.memory_mib, d.vcpus) for d in domains] == [
        ("win", 1, 1019, 1), ("linux", 2, 2048, 2), ("going", 3, 512, 1)]
    assert [d.state for d in domains] == ["running", "running", "stopping"]
    assert xl.parse_list("Name                                        ID   Mem VCPUs\tState"
                         "\tTime(s)\n") == []


def test_xl_errors():
    assert xl.missing_domain("web is an invalid domain identifier (rc=-6)\n")
    assert not xl.missing_domain(VCPU_ERROR)
    assert xl.error_lines("Parsing config from /etc/xen/a.cfg\n" + VCPU_ERROR).startswith(
        "libxl: error:")


CFG = """\
# my own comment
name = "web"
type = "hvm"; memory = 1024
extra = "console=hvc0 # not a comment"
disk = [ 'format=raw, vdev=xvda, access=rw, target=/var/lib/xen/images/web.img',
         "/dev/vg/data,,xvdb" ]   # trailing comment
vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr1' ]
on_crash = "preserve"
"""


def test_cfg_reads_values_and_keeps_unmanaged_statements():
    config = XlConfig.parse(CFG)
    assert config.marks is None
    assert config.value("name") == "web" and config.value("memory") == 1024
    assert config.value("extra") == "console=hvc0 # not a comment"
    assert config.value("disk")[1] == "/dev/vg/data,,xvdb"
    assert vif_bridge(config.value("vif")[0]) == "xenbr1"
    config.set("memory", 2048)
    config.set("vcpus", 2)
    config.marks = Marks("lab", "vm.web", "f00")
    config.created = {"made": ["/var/lib/xen/images/web.img"]}
    text = config.render()
    assert text.startswith(BEGIN + "\n# decl.project = lab\n")
    assert "# my own comment\n" in text and 'on_crash = "preserve"' in text
    assert 'extra = "console=hvc0 # not a comment"' in text
    assert 'type = "hvm"\nmemory = 2048\n' in text  # `;`-joined statements split, in place
    again = XlConfig.parse(text)
    assert again.marks == Marks("lab", "vm.web", "f00")
    assert again.created == {"made": ["/var/lib/xen/images/web.img"]}
    assert again.value("memory") == 2048 and again.value("vcpus") == 2
    assert again.value("on_crash") == "preserve"
    assert again.keys().count("memory") == 1


def test_cfg_errors_and_values_decl_refuses_to_write():
    with pytest.raises(CfgError):
        XlConfig.parse('disk = [ "a",\n')
    with pytest.raises(CfgError):
        XlConfig.parse("memory = lots\n")
    with pytest.raises(CfgError):
        XlConfig().set("name", 'a"b')


def test_disk_specs():
    spec = disk_spec("/srv/my disks/a,b.img", "xvda", "raw")
    assert parse_disk_spec(spec) == {"format": "raw", "vdev": "xvda", "access": "rw",
                                     "target": "/srv/my disks/a,b.img"}
    assert parse_disk_spec("/dev/vg/guest-volume,raw,hda,rw") == {
        "target": "/dev/vg/guest-volume", "format": "raw", "vdev": "hda", "access": "rw"}
    assert parse_disk_spec("/dev/vg/guest-volume,,hda")["vdev"] == "hda"
