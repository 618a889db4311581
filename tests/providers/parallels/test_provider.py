"""The parallels provider's pure parts."""

from decl.providers.parallels import output, provider

GIB = 1024**3


def test_observed_spec_from_what_prlctl_reports():
    vm = output.PrlVm(uuid="u", name="web", description="", state="running", cpus=2,
                      memory=2 * GIB, efi=True, home="/h",
                      disks=(output.PrlDisk("hdd0", 64 * GIB, "/h/a.hdd", True),
                             output.PrlDisk("hdd1", GIB, "/h/b.hdd", False)),
                      cdrom="/i.iso", network={"mode": "nat", "bridge": None})
    spec = provider.observed_spec(vm, "aarch64")
    assert spec == {"cpus": 2, "memory": 2 * GIB, "arch": "aarch64", "firmware": "uefi",
                    "disk_count": 1, "disk_size": {"vda": 64 * GIB},
                    "disk_source": {"vda": "empty"}, "cdrom": "/i.iso",
                    "network": {"mode": "nat", "bridge": None}, "cloud_init": None,
                    "options": {}}


def test_disk_names_map_to_prlctls():
    assert [provider.hdd_of(d) for d in ("vda", "vdb", "vdc")] == ["hdd0", "hdd1", "hdd2"]


def test_states():
    assert provider.observed_state("running") == "running"
    assert provider.observed_state("stopped") == "stopped"
    assert provider.observed_state("suspended") == "suspended"


def test_observed_cdrom_is_shown_as_written_only_when_it_is_that_file():
    vm = output.PrlVm(uuid="u", name="web", description="", state="stopped", cpus=1,
                      memory=GIB, efi=False, home="/h", disks=(), cdrom="/Users/me/x.iso",
                      network={"mode": "nat", "bridge": None})
    same = provider.observed_spec(vm, "aarch64", cdrom_given=("~/x.iso", "/Users/me/x.iso"))
    other = provider.observed_spec(vm, "aarch64", cdrom_given=("~/y.iso", "/Users/me/y.iso"))
    assert (same["cdrom"], other["cdrom"]) == ("~/x.iso", "/Users/me/x.iso")
