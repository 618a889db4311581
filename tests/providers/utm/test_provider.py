"""The utm provider's pure parts: the observed spec, records in the notes, plan-time checks."""

from decl.providers.utm import provider
from decl.providers.utm.output import Constant

GIB = 1024**3
MIB = 1024**2


def config(**extra):
    base = {"name": "web", "notes": "", "architecture": "x86_64", "memory": 2048,
            "cpu cores": 2, "uefi": False,
            "drives": [{"id": "A", "removable": False, "interface": Constant("VirtIO"),
                        "host size": 3},
                       {"id": "B", "removable": True, "interface": Constant("USB"),
                        "host size": 0}],
            "network interfaces": [{"index": 0, "mode": Constant("bridged"),
                                    "host interface": "en0"}]}
    base.update(extra)
    return base


def test_observed_spec_reads_utms_record_and_decls_records():
    recorded = provider.records_of({"disks": "20480", "sources": "empty",
                                    "cdrom": provider.digest("/i.iso")})
    spec = provider.observed_spec(config(), "qemu", "aarch64", recorded, None)
    assert spec["cpus"] == 2 and spec["memory"] == 2 * GIB
    assert (spec["arch"], spec["firmware"]) == ("x86_64", "bios")
    assert spec["disk_count"] == 1 and spec["disk_size"] == {"vda": 20 * GIB}
    assert spec["disk_source"] == {"vda": "empty"}
    assert spec["network"] == {"mode": "bridge", "bridge": "en0"}
    assert spec["options"] == {"backend": "qemu"}
    assert spec["cdrom"].startswith("(recorded ")  # no wanted path to match the digest


def test_host_size_is_never_taken_for_a_disk_size():
    spec = provider.observed_spec(config(), "qemu", "aarch64", provider.records_of({}), None)
    assert spec["disk_size"] == {"vda": None} and spec["cdrom"] is None


def test_apple_backend_is_the_hosts_arch_and_uefi():
    cfg = config(architecture=None, uefi=None, **{"network interfaces": []})
    spec = provider.observed_spec(cfg, "apple", "aarch64", provider.records_of({}), None)
    assert (spec["arch"], spec["firmware"], spec["network"]["mode"]) == (
        "aarch64", "uefi", "none")


def test_arch_names_are_decls():
    spec = provider.observed_spec(config(architecture="i386"), "qemu", "aarch64",
                                  provider.records_of({}), None)
    assert spec["arch"] == "i686"


def test_disk_size_changes_are_refused_with_the_reason():
    grow = provider.check_utm_field("disk_size.vda", 20 * GIB, 30 * GIB)
    assert "cannot grow" in grow and "cannot resize an existing drive" in grow
    assert "cannot shrink" in provider.check_utm_field("disk_size.vda", 20 * GIB, 10 * GIB)
    assert provider.check_utm_field("disk_size.vda", None, 10 * GIB) is None
    assert provider.check_utm_field("memory", GIB, 2 * GIB) is None


def test_record_extra_round_trips():
    spec = {"disk_count": 2, "disk_size": {"vda": 20 * GIB, "vdb": None},
            "disk_source": {"vda": "empty", "vdb": "/images/base image.qcow2"},
            "cdrom": "/x y.iso"}
    extra = provider.record_extra(spec)
    digest = provider.digest("/images/base image.qcow2")
    assert extra["disks"] == "20480,0" and extra["sources"] == f"empty,{digest}"
    recorded = provider.records_of(extra)
    assert recorded["disks"] == [20 * GIB, 0] and recorded["cdrom"] == provider.digest("/x y.iso")


def test_recorded_digests_show_the_wanted_value_when_they_match():
    from decl.core.resource import Desired

    recorded = provider.records_of({"disks": "0", "sources": provider.digest("/a.qcow2"),
                                    "cdrom": provider.digest("/i.iso")})
    desired = Desired(address="vm.web", kind="vm", name="web", provider="utm", host="local",
                      state="running", spec={"disk_source": {"vda": "/a.qcow2"},
                                             "cdrom": "/i.iso"})
    spec = provider.observed_spec(config(), "qemu", "aarch64", recorded, desired)
    assert spec["disk_source"] == {"vda": "/a.qcow2"} and spec["cdrom"] == "/i.iso"
    other = Desired(address="vm.web", kind="vm", name="web", provider="utm", host="local",
                    state="running", spec={"disk_source": {"vda": "/b.qcow2"},
                                           "cdrom": "/j.iso"})
    spec = provider.observed_spec(config(), "qemu", "aarch64", recorded, other)
    assert spec["disk_source"]["vda"].startswith("(recorded ")
    assert spec["cdrom"].startswith("(recorded ")


def test_cloud_init_is_known_by_its_recorded_digest():
    from decl.core.resource import Desired
    from decl.providers import textmarks

    cloud = {"hostname": "web", "user": None, "ssh_authorized_keys": []}
    extra = {"disks": "20480", "sources": "empty", "seed": textmarks.digest(cloud)}
    desired = Desired(address="vm.web", kind="vm", name="web", provider="utm", host="local",
                      state="running", spec={"cloud_init": cloud})
    spec = provider.observed_spec(config(), "qemu", "aarch64", provider.records_of(extra),
                                  desired)
    assert spec["cloud_init"] == cloud
    changed = Desired(address="vm.web", kind="vm", name="web", provider="utm", host="local",
                      state="running", spec={"cloud_init": {**cloud, "hostname": "x"}})
    spec = provider.observed_spec(config(), "qemu", "aarch64", provider.records_of(extra),
                                  changed)
    assert spec["cloud_init"].startswith("(recorded ")
    no_drive = config(drives=[{"id": "A", "removable": False}])
    spec = provider.observed_spec(no_drive, "qemu", "aarch64", provider.records_of(extra),
                                  desired)
    assert spec["cloud_init"] is None  # the seed drive was removed in UTM: drift
