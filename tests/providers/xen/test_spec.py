"""What the xen provider reads back from a config file and `xl list` (pure)."""

from __future__ import annotations

from decl.providers.xen.cfg import XlConfig
from decl.providers.xen.provider import spec_from_cfg, write_spec
from decl.providers.xen.xl import Domain

MIB = 1024 * 1024
CFG = ('name = "web"\ntype = "hvm"\nmemory = 1024\nmaxmem = 2048\nvcpus = 2\nmaxvcpus = 4\n'
       'disk = [ "format=raw, vdev=xvda, access=rw, target=/img/web-xvda.img" ]\n'
       'vif = [ "mac=00:16:3e:00:00:01,bridge=xenbr1" ]\n')


def test_stopped_domain_reads_the_file():
    spec = spec_from_cfg(XlConfig.parse(CFG), {"/img/web-xvda.img": 4096}, None)
    assert spec == {"type": "hvm", "cpus": 2, "maxvcpus": 4, "memory": 1024 * MIB,
                    "maxmem": 2048 * MIB, "firmware": "bios", "bridge": "xenbr1", "boot": {},
                    "disk_count": 1, "disk_format": "raw", "disk_size": {"xvda": 4096}}


def test_running_domain_reports_live_vcpus_and_memory_beyond_the_slack():
    config = XlConfig.parse(CFG)
    close = Domain("web", 3, 1019, 3, "-b----", 1.0)  # 5 MiB under the target: no drift
    spec = spec_from_cfg(config, {}, close)
    assert (spec["cpus"], spec["memory"]) == (3, 1024 * MIB)
    far = Domain("web", 3, 1536, 2, "-b----", 1.0)  # changed with xl mem-set by hand
    assert spec_from_cfg(config, {}, far)["memory"] == 1536 * MIB


def test_write_spec_keeps_the_mac_when_the_bridge_changes():
    config = XlConfig.parse(CFG)
    wanted = {"type": "hvm", "cpus": 2, "maxvcpus": 4, "memory": 1024 * MIB,
              "maxmem": 2048 * MIB, "firmware": "uefi", "bridge": "xenbr0", "boot": {},
              "disk_count": 1, "disk_format": "raw", "disk_size": {"xvda": 4096}}
    write_spec(config, "web", wanted, ["/img/web-xvda.img"])
    assert config.value("vif") == ["mac=00:16:3e:00:00:01,bridge=xenbr0"]
    assert config.value("firmware") == "uefi"
    wanted["bridge"] = None
    write_spec(config, "web", wanted, ["/img/web-xvda.img"])
    assert config.value("vif") == []
