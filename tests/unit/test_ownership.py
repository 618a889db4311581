"""One owner per path and name, for every provider that declares what it owns
(Provider.owned_paths / owned_name): VM folders, disk, config and seed files, VM names the
backend folds or renames. A collision is one validate error naming both positions; a shared
parent folder, or the same path on another machine, is fine."""

from __future__ import annotations

import re

import pytest

from decl.engine.desired import build_desired
from decl.engine.validate import check_manifest
from decl.errors import DeclError
from decl.manifest.load import load
from decl.providers.registry import Registry

HEAD = "version: 1\nproject: p\n"
HOSTS = "hosts:\n  h1: {address: 10.0.0.1}\n  h2: {address: 10.0.0.2}\n"
WINDOWS = "hosts:\n  win: {address: 10.0.0.5, shell: powershell}\n"


def validate(tmp_path, text: str) -> str | None:
    """The one error `decl validate` would print for this manifest, or None."""
    path = tmp_path / "m.yaml"
    path.write_text(HEAD + text)
    registry = Registry()
    try:
        loaded = load(str(path), require_secrets=False)
        check_manifest(loaded, registry)
        build_desired(loaded, registry)
    except DeclError as exc:
        return str(exc).replace(str(path), "m.yaml")
    return None


def fails(tmp_path, text: str, at: str, other_at: str, *words: str) -> str:
    """The error is at `at` (LINE:COL) and names the other resource's position."""
    error = validate(tmp_path, text)
    assert error is not None, "the manifest validated"
    first = error.splitlines()[0]
    assert first.startswith(f"m.yaml:{at}: "), error
    assert re.search(rf"is at m\.yaml:{other_at}\b", first), error
    for word in words:
        assert word in first, error
    return first


def test_vmware_vm_dirs_equal_and_nested(tmp_path):
    same = ("vms:\n  a:\n    provider: vmware\n    options: {vm_dir: /srv/vms}\n"
            "  b:\n    provider: vmware\n    options: {vm_dir: /srv/vms/a}\n")
    fails(tmp_path, same, "9:23", "6:23", "vm.b directory '/srv/vms/a/b' (options.vm_dir)",
          "inside the path of vm.a (directory '/srv/vms/a')")
    around = ("vms:\n  a:\n    provider: vmware\n    options: {vm_dir: /srv/vms/b/x}\n"
              "  b:\n    provider: vmware\n    options: {vm_dir: /srv/vms/}\n")
    fails(tmp_path, around, "9:23", "6:23", "around the path of vm.a")
    # vm_dir holds one folder per VM: two VMs in one vm_dir are fine
    assert validate(tmp_path, "vms:\n  a: {provider: vmware, options: {vm_dir: /srv/v}}\n"
                    "  b: {provider: vmware, options: {vm_dir: /srv/v}}\n") is None


def test_virtualbox_folders_on_windows_compare_case_blind(tmp_path):
    text = WINDOWS + ("vms:\n  a:\n    provider: virtualbox\n    host: win\n"
                      "    options: {vm_dir: 'D:\\VBox'}\n"
                      "  b:\n    provider: vmware\n    host: win\n"
                      "    options: {vm_dir: 'd:/vbox/A'}\n")
    fails(tmp_path, text, "13:23", "9:23", "inside the path of vm.a")
    # the same letters on a POSIX host are two folders
    assert validate(tmp_path, "vms:\n  a: {provider: virtualbox, options: {vm_dir: /v}}\n"
                    "  b: {provider: vmware, options: {vm_dir: /V/a}}\n") is None


def test_parallels_bundle_inside_a_utm_seed_file(tmp_path):
    text = ("vms:\n  a:\n    provider: utm\n    cloud_init: {user: me}\n"
            "    options: {seed_dir: /Users/me/seeds}\n"
            "  b:\n    provider: parallels\n    options: {vm_dir: /Users/me/seeds/p-a-seed.iso}\n")
    fails(tmp_path, text, "10:23", "7:25", "VM bundle", "seed file '/Users/me/seeds/p-a-seed.iso'")
    # a UTM VM without cloud_init makes no seed; two seeds in one seed_dir are apart
    assert validate(tmp_path, "vms:\n  a: {provider: utm, cloud_init: {user: me}}\n"
                    "  b: {provider: utm, cloud_init: {user: me}}\n"
                    "  c: {provider: parallels, options: {vm_dir: /Users/me/x}}\n") is None


def test_parallels_bundles_collide_by_name_on_one_host(tmp_path):
    text = HOSTS + ("  h1b: {address: 10.0.0.1}\n"
                    "vms:\n  a:\n    provider: parallels\n    host: h1\n"
                    "    options: {vm_dir: /vms}\n"
                    "  a2:\n    provider: parallels\n    host: h1b\n"
                    "    options: {vm_dir: /vms/a.pvm}\n")
    fails(tmp_path, text, "15:23", "11:23", "inside the path of vm.a (VM bundle '/vms/a.pvm')")


def test_xen_config_and_disk_files(tmp_path):
    disk = ("vms:\n  a:\n    provider: xen\n    disks: [{size: 1GiB}, {size: 1GiB}]\n"
            "    options: {disk_dir: /srv/img}\n"
            "venvs:\n  tools:\n    path: /srv/img/a-xvdb.img\n")
    fails(tmp_path, disk, "10:11", "7:25",
          "the same path as vm.a (disk file '/srv/img/a-xvdb.img')")
    around = ("vms:\n  a:\n    provider: xen\n    disks: [{size: 1GiB}]\n"
              "venvs:\n  tools:\n    path: /var/lib/xen\n")
    fails(tmp_path, around, "9:11", "6:12", "around the path of vm.a (disk file "
          "'/var/lib/xen/images/a-xvda.img')")
    config = ("vms:\n  a:\n    provider: xen\n    options: {config_dir: /etc/xen/lab}\n"
              "venvs:\n  tools:\n    path: /etc/xen/lab/a.cfg/venv\n")
    fails(tmp_path, config, "9:11", "6:27", "inside the path of vm.a (config file "
          "'/etc/xen/lab/a.cfg')")
    # qcow2 disks and the default config_dir: positions at the VM itself, and its disks
    qcow = ("vms:\n  a:\n    provider: xen\n    disks: [{size: 1GiB}]\n"
            "    options: {disk_format: qcow2}\n"
            "venvs:\n  x:\n    path: /etc/xen/a.cfg\n")
    fails(tmp_path, qcow, "10:11", "5:5", "config file '/etc/xen/a.cfg'")
    fails(tmp_path, qcow.replace("/etc/xen/a.cfg", "/var/lib/xen/images/a-xvda.qcow2"),
          "10:11", "6:12", "disk file '/var/lib/xen/images/a-xvda.qcow2'")
    # one disk_dir and one config_dir for many domains is what they are for
    assert validate(tmp_path, "vms:\n  a: {provider: xen, disks: [{size: 1GiB}]}\n"
                    "  b: {provider: xen, disks: [{size: 1GiB}]}\n") is None


def test_libvirt_pool_files(tmp_path):
    text = ("vms:\n  a:\n    provider: libvirt\n    disks: [{size: 1GiB}]\n"
            "    cloud_init: {user: me}\n"
            "  b:\n    provider: qemu\n    options: {vm_dir: /var/lib/libvirt/images/a-seed.iso}\n")
    fails(tmp_path, text, "10:23", "7:17", "inside the path of vm.a (seed file "
          "'/var/lib/libvirt/images/a-seed.iso')")
    disk = ("vms:\n  a:\n    provider: libvirt\n    disks: [{size: 1GiB}]\n"
            "    options: {pool_dir: /pool}\n"
            "venvs:\n  v:\n    path: /pool/a-vda.qcow2\n")
    fails(tmp_path, disk, "10:11", "7:25", "the same path as vm.a (disk file '/pool/a-vda.qcow2')")
    # the pool and its image cache are shared by every domain
    assert validate(tmp_path, "vms:\n  a: {provider: libvirt, disks: [{size: 1GiB}]}\n"
                    "  b: {provider: libvirt, disks: [{size: 1GiB}]}\n") is None


def test_hyperv_disk_files_and_names_ignore_case(tmp_path):
    names = ("vms:\n  Web:\n    provider: hyperv\n  db:\n    provider: hyperv\n"
             "  web:\n    provider: hyperv\n")
    fails(tmp_path, names, "9:5", "5:5", "vm.web on host local is the same vm as vm.Web")
    disks = ("vms:\n  db:\n    provider: hyperv\n    disks: [{size: 1GiB}, {size: 1GiB}]\n"
             "    options: {disk_dir: 'C:\\VMs'}\n"
             "wsl:\n  dev:\n    source: {distribution: Ubuntu}\n"
             "    location: 'c:\\vms\\DB-disk1.vhdx'\n")
    fails(tmp_path, disks, "11:15", "7:25", "the same path as vm.db (disk file "
          "'C:\\\\VMs\\\\db-disk1.vhdx')")
    # Hyper-V and WSL are two backends: one name on each is fine
    assert validate(tmp_path, "vms:\n  dev: {provider: hyperv}\n"
                    "wsl:\n  Dev: {source: {distribution: Ubuntu}}\n") is None


def test_esxi_display_names_are_the_vm(tmp_path):
    renamed = ("vms:\n  web:\n    provider: esxi\n  old:\n    provider: esxi\n"
               "    state: absent\n    options:\n      display_name: web\n")
    fails(tmp_path, renamed, "10:21", "5:5", "vm.old on host local is the same vm as vm.web",
          "'web'")
    both = ("vms:\n  a:\n    provider: esxi\n    options: {display_name: Web Server}\n"
            "  b:\n    provider: esxi\n    options: {display_name: Web Server}\n")
    fails(tmp_path, both, "9:29", "6:29", "'Web Server'")


NESTED_ON_ONE_MACHINE = {
    # provider: (options of vm.a, options of vm.b), b's path inside a's or one name
    "vmware": ("{vm_dir: /srv/vms}", "{vm_dir: /srv/vms/a}"),
    "virtualbox": ("{vm_dir: /srv/vms}", "{vm_dir: /srv/vms/a/}"),
    "parallels": ("{vm_dir: /srv/vms}", "{vm_dir: /srv/vms/a.pvm}"),
    "xen": ("{}", "{config_dir: /var/lib/xen/images/a-xvda.img}"),
    "esxi": ("{display_name: one}", "{display_name: one}"),
    "utm": ("{seed_dir: /seeds}", "{seed_dir: /seeds/p-a-seed.iso}"),
    "libvirt": ("{pool_dir: /pool}", "{pool_dir: /pool/a-vda.qcow2}"),
}


@pytest.mark.parametrize("provider", sorted(NESTED_ON_ONE_MACHINE))
def test_different_hosts_may_use_one_path_and_name(tmp_path, provider):
    a, b = NESTED_ON_ONE_MACHINE[provider]
    text = HOSTS + (f"vms:\n  a: {{provider: {provider}, host: h1, options: {a},"
                    " disks: [{size: 1GiB}], cloud_init: {user: me}}\n"
                    f"  b: {{provider: {provider}, host: h2, options: {b},"
                    " disks: [{size: 1GiB}], cloud_init: {user: me}}\n")
    if provider in ("xen", "esxi", "libvirt"):
        text = text.replace(", cloud_init: {user: me}", "")
    assert validate(tmp_path, text) is None
    # h2 at h1's address is the same machine: the two collide there
    same_machine = text.replace("h2: {address: 10.0.0.2}", "h2: {address: 10.0.0.1}")
    error = validate(tmp_path, same_machine)
    assert error is not None and "is at m.yaml:7:" in error, error


def _pairwise_clash(claims, parts, item):
    """The definition: another owner's path equal to `parts`, enclosing it or inside it."""
    for other_parts, other in claims:
        if other is item:
            continue
        shorter = min(len(parts), len(other_parts))
        if parts[:shorter] == other_parts[:shorter]:
            return True
    return False


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PATHS = st.lists(st.tuples(st.lists(st.sampled_from("abc"), min_size=1, max_size=4),
                            st.integers(0, 3)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_PATHS)
def test_path_trie_finds_exactly_the_pairs_that_clash(claims):
    """The engine's path index (linear time) agrees with comparing every pair."""
    from decl.engine.desired import _PathTrie

    owners = [object() for _ in range(4)]
    trie = _PathTrie()
    seen = []
    for raw_parts, owner_index in claims:
        parts, item = tuple(raw_parts), owners[owner_index]
        expected = _pairwise_clash(seen, parts, item)
        found = trie.clash(parts, item)  # type: ignore[arg-type]
        assert (found is not None) == expected, (seen, parts)
        if found is not None:
            how, other, _owned = found
            assert other is not item
            return  # the engine stops at the first clash, as decl validate does
        trie.add(parts, item, None)  # type: ignore[arg-type]
        seen.append((parts, item))
