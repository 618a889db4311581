"""Xen VMs end to end: the decl CLI against the stateful fake `xl`, on this machine (the
`local` host) and once over the tests' own sshd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.datacenter.harness import (
    FakeXen,
    actions,
    decl,
    plan,
    write_manifest,
    xen_over_sshd,
)
from tests.sshd import sshd_factory  # noqa: F401 - a fixture

GIB = 1024**3


@pytest.fixture
def xen(tmp_path):
    """A fake Xen host whose xl this process's decl runs (the local host)."""
    return FakeXen(tmp_path / "xen")


def options(tmp_path: Path, **extra) -> dict:
    return {"config_dir": str(tmp_path / "etc-xen"), "disk_dir": str(tmp_path / "images"),
            "shutdown_timeout": 1, **extra}


def manifest(tmp_path: Path, vms: dict, hosts: dict | None = None) -> str:
    for vm in vms.values():
        vm.setdefault("provider", "xen")
    document = {"version": 1, "project": "lab", "vms": vms}
    if hosts:
        document["hosts"] = hosts
    return write_manifest(tmp_path / "decl.yaml", document)


def ok(fake: FakeXen, *args: str):
    done = decl(*args, env=fake.env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def cfg(tmp_path: Path, name: str) -> str:
    return (tmp_path / "etc-xen" / f"{name}.cfg").read_text()


def test_lifecycle(xen, tmp_path):
    wanted = {
        "web": {"cpus": 2, "memory": "1GiB", "disks": [{"size": "1GiB"}],
                "options": options(tmp_path, maxvcpus=4, maxmem="2GiB")},
        "db": {"state": "stopped", "memory": "512MiB", "network": {"mode": "none"},
               "disks": [{"size": "1GiB"}, {"size": "2GiB"}],
               "options": options(tmp_path, disk_format="raw")},
    }
    path = manifest(tmp_path, wanted)
    ok(xen, "apply", "-y", "-f", path)
    domains = xen.domains()
    assert set(domains) == {"web"}  # xl keeps no stopped domains: db is its cfg and disks
    assert (domains["web"]["vcpus"], domains["web"]["memory"], domains["web"]["maxvcpus"],
            domains["web"]["maxmem"]) == (2, 1024, 4, 2048)
    text = cfg(tmp_path, "web")
    assert text.startswith("# BEGIN decl") and "# decl.address = vm.web" in text
    assert 'vif = [ "bridge=xenbr0" ]' in text
    assert "vif = [ ]" in cfg(tmp_path, "db")
    assert os.path.getsize(tmp_path / "images" / "db-xvdb.img") == 2 * GIB
    ok(xen, "plan", "--detailed-exitcode", "-f", path)

    # cpus and memory up to maxvcpus/maxmem: live, with xl vcpu-set and mem-set
    wanted["web"]["cpus"] = 4
    wanted["web"]["memory"] = "2GiB"
    path = manifest(tmp_path, wanted)
    assert actions(plan(path, xen.env())) == {"vm.web": "update"}
    xen.clear_calls()
    ok(xen, "apply", "-y", "-f", path)
    web = xen.domains()["web"]
    assert (web["vcpus"], web["memory"], web["domid"]) == (4, 2048, domains["web"]["domid"])
    assert ["xl", "vcpu-set", "web", "4"] in xen.calls()
    assert ["xl", "mem-set", "web", "2048m"] in xen.calls()
    assert "vcpus = 4" in cfg(tmp_path, "web") and "memory = 2048" in cfg(tmp_path, "web")
    ok(xen, "plan", "--detailed-exitcode", "-f", path)

    # beyond maxvcpus, and a bigger disk: a restart (shutdown, cfg, create)
    wanted["web"]["cpus"] = 6
    wanted["web"]["options"]["maxvcpus"] = 6
    wanted["web"]["disks"][0]["size"] = "3GiB"
    path = manifest(tmp_path, wanted)
    assert actions(plan(path, xen.env())) == {"vm.web": "update_restart"}
    xen.clear_calls()
    ok(xen, "apply", "-y", "-f", path)
    web2 = xen.domains()["web"]
    assert (web2["vcpus"], web2["maxvcpus"]) == (6, 6) and web2["domid"] != web["domid"]
    assert os.path.getsize(tmp_path / "images" / "web-xvda.img") == 3 * GIB
    sent = [c[1] for c in xen.calls("xl")]
    assert sent.index("shutdown") < sent.index("create")
    ok(xen, "plan", "--detailed-exitcode", "-f", path)

    # stop and start
    wanted["web"]["state"] = "stopped"
    path = manifest(tmp_path, wanted)
    assert actions(plan(path, xen.env())) == {"vm.web": "stop"}
    ok(xen, "apply", "-y", "-f", path)
    assert xen.domains() == {} and cfg(tmp_path, "web")
    wanted["db"]["state"] = "running"
    wanted["web"]["state"] = "running"
    path = manifest(tmp_path, wanted)
    assert actions(plan(path, xen.env())) == {"vm.web": "start", "vm.db": "start"}
    ok(xen, "apply", "-y", "-f", path)
    assert set(xen.domains()) == {"web", "db"}

    # destroy: domains, cfgs and the disks decl made
    ok(xen, "destroy", "-y", "-f", path)
    assert xen.domains() == {}
    assert os.listdir(tmp_path / "etc-xen") == [] and os.listdir(tmp_path / "images") == []


def test_a_guest_that_ignores_shutdown_is_destroyed_after_the_timeout(xen, tmp_path):
    xen.edit(lambda d: d["guests"].__setitem__("stuck", "hang"))
    wanted = {"stuck": {"disks": [{"size": "1GiB"}], "options": options(tmp_path)}}
    path = manifest(tmp_path, wanted)
    ok(xen, "apply", "-y", "-f", path)
    wanted["stuck"]["state"] = "stopped"
    xen.clear_calls()
    ok(xen, "apply", "-y", "-f", manifest(tmp_path, wanted))
    assert xen.domains() == {}
    assert [c[1] for c in xen.calls("xl") if c[1] in ("shutdown", "destroy")] == \
        ["shutdown", "destroy"]


def test_unmarked_cfg_and_domain_are_conflicts_then_adopt_and_prune(xen, tmp_path):
    etc = tmp_path / "etc-xen"
    etc.mkdir()
    disk = tmp_path / "old.img"
    disk.write_bytes(b"")
    os.truncate(disk, GIB)
    mine = ('# my settings\nname = "old"\ntype = "hvm"\nmemory = 1024\nvcpus = 1\n'
            f'disk = [ "format=raw, vdev=xvda, access=rw, target={disk}" ]\n'
            'vif = [ "bridge=xenbr0" ]\non_crash = "preserve"\n')
    (etc / "old.cfg").write_text(mine)
    assert xen.run("xl", "create", str(etc / "old.cfg")).returncode == 0
    # a domain running without any cfg decl can see
    (tmp_path / "elsewhere.cfg").write_text('name = "loose"\ntype = "hvm"\nmemory = 512\n')
    assert xen.run("xl", "create", str(tmp_path / "elsewhere.cfg")).returncode == 0
    wanted = {"old": {"disks": [{"size": "1GiB"}], "options": options(tmp_path)},
              "loose": {"memory": "512MiB", "options": options(tmp_path)},
              "keep": {"state": "stopped", "options": options(tmp_path)}}
    path = manifest(tmp_path, wanted)
    found = actions(plan(path, xen.env()))
    assert (found["vm.old"], found["vm.loose"]) == ("conflict", "conflict")
    done = decl("apply", "-y", "-f", path, env=xen.env())
    assert done.returncode != 0
    assert (etc / "old.cfg").read_text() == mine  # left as it was
    assert set(xen.domains()) == {"old", "loose"}

    del wanted["loose"]
    wanted["old"]["adopt"] = True
    path = manifest(tmp_path, wanted)
    assert actions(plan(path, xen.env()))["vm.old"] == "adopt"
    ok(xen, "apply", "-y", "-f", path)
    text = (etc / "old.cfg").read_text()
    assert text.startswith("# BEGIN decl") and "# decl.address = vm.old" in text
    assert "# my settings" in text and 'on_crash = "preserve"' in text
    ok(xen, "plan", "--detailed-exitcode", "-f", path)

    # orphan: listed, deleted with --prune only; the disk it did not make stays
    del wanted["old"]
    path = manifest(tmp_path, wanted)
    assert "vm.old" not in actions(plan(path, xen.env()))
    ok(xen, "apply", "-y", "--prune", "-f", path)
    assert not (etc / "old.cfg").exists() and "old" not in xen.domains()
    assert disk.exists() and "loose" in xen.domains()


def test_a_failed_xl_create_leaves_a_plan_that_finishes(xen, tmp_path):
    xen.fail("create")
    wanted = {"web": {"disks": [{"size": "1GiB"}], "options": options(tmp_path)}}
    path = manifest(tmp_path, wanted)
    done = decl("apply", "-y", "-f", path, env=xen.env())
    assert done.returncode != 0
    assert "xl create" in done.stdout + done.stderr
    assert xen.domains() == {} and cfg(tmp_path, "web")
    assert actions(plan(path, xen.env())) == {"vm.web": "start"}
    ok(xen, "apply", "-y", "-f", path)
    assert "web" in xen.domains()


def test_bad_options_are_reported_at_their_position(xen, tmp_path):
    wanted = {"pv": {"options": options(tmp_path, type="pv", maxvcpus=0)}}
    path = manifest(tmp_path, wanted)
    done = decl("validate", "-f", path, env=xen.env())
    assert done.returncode == 1
    assert "maxvcpus" in done.stdout + done.stderr and "decl.yaml:" in done.stdout + done.stderr
    wanted = {"pv": {"options": options(tmp_path, type="pv")}}
    done = decl("validate", "-f", manifest(tmp_path, wanted), env=xen.env())
    assert done.returncode == 1 and "needs options.kernel" in done.stdout + done.stderr


def test_xen_over_ssh(xen, tmp_path, sshd_factory):  # noqa: F811
    host = xen_over_sshd(xen, sshd_factory)
    wanted = {"web": {"host": "dom0", "cpus": 1, "disks": [{"size": "1GiB"}],
                      "options": options(tmp_path, maxvcpus=2)}}
    path = manifest(tmp_path, wanted, hosts={"dom0": host})
    env = {"DECL_FAKE_XEN_STATE": "/nonexistent"}  # no xl on this side
    done = decl("apply", "-y", "-f", path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert xen.domains()["web"]["vcpus"] == 1
    wanted["web"]["cpus"] = 2
    path = manifest(tmp_path, wanted, hosts={"dom0": host})
    done = decl("apply", "-y", "-f", path, env=env)
    assert done.returncode == 0 and "xl vcpu-set web 2" in done.stdout, done.stdout
    assert xen.domains()["web"]["vcpus"] == 2
    done = decl("plan", "--detailed-exitcode", "-f", path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    # a guest that ignores the shutdown: the remote `xl shutdown -w` is cut at the timeout
    xen.edit(lambda d: d["domains"]["web"].__setitem__("guest", "hang"))
    wanted["web"]["state"] = "stopped"
    path = manifest(tmp_path, wanted, hosts={"dom0": host})
    done = decl("apply", "-y", "-f", path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert xen.domains() == {} and ["xl", "destroy", "web"] in xen.calls()
    done = decl("destroy", "-y", "-f", path, env=env)
    assert done.returncode == 0 and xen.domains() == {}, done.stdout + done.stderr


def test_qcow2_disks_made_and_grown_with_qemu_img(xen, tmp_path):
    import json
    import shutil
    import subprocess

    from tests.backends import missing_backend

    if shutil.which("qemu-img") is None:
        missing_backend("qemu-img", "qemu-img is not installed (Debian: qemu-utils)")
    wanted = {"store": {"disks": [{"size": "2GiB"}],
                        "options": options(tmp_path, disk_format="qcow2")}}
    path = manifest(tmp_path, wanted)
    ok(xen, "apply", "-y", "-f", path)
    image = tmp_path / "images" / "store-xvda.qcow2"

    def virtual_size() -> int:
        done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(image)],
                              capture_output=True, text=True, check=True)
        return int(json.loads(done.stdout)["virtual-size"])

    assert virtual_size() == 2 * GIB
    assert "format=qcow2, vdev=xvda" in cfg(tmp_path, "store")
    ok(xen, "plan", "--detailed-exitcode", "-f", path)
    wanted["store"]["disks"][0]["size"] = "3GiB"
    path = manifest(tmp_path, wanted)
    assert actions(plan(path, xen.env())) == {"vm.store": "update_restart"}
    ok(xen, "apply", "-y", "-f", path)
    assert virtual_size() == 3 * GIB
    ok(xen, "plan", "--detailed-exitcode", "-f", path)
    wanted["store"]["disks"][0]["size"] = "1GiB"
    done = decl("plan", "-f", manifest(tmp_path, wanted), env=xen.env())
    assert done.returncode == 1 and "cannot shrink" in done.stdout + done.stderr


def test_an_absent_vm_whose_disks_another_resource_holds_is_refused(xen, tmp_path):
    """A venv made in the folder of an absent VM's disk images: deleting the VM would delete
    files inside the venv. validate and apply refuse it at both positions; nothing changes."""
    wanted = {"old": {"state": "stopped", "disks": [{"size": "1GiB"}],
                      "options": options(tmp_path)}}
    ok(xen, "apply", "-y", "-f", manifest(tmp_path, wanted))
    disk = tmp_path / "images" / "old-xvda.img"
    assert disk.exists() and (tmp_path / "etc-xen" / "old.cfg").exists()
    wanted["old"]["state"] = "absent"
    document = {"version": 1, "project": "lab", "vms": wanted,
                "venvs": {"tools": {"path": str(tmp_path / "images"), "pip": False}}}
    path = write_manifest(tmp_path / "decl.yaml", document)
    lines = Path(path).read_text().splitlines()
    venv_line = next(i for i, line in enumerate(lines, 1) if '"path":' in line)
    disks_line = next(i for i, line in enumerate(lines, 1) if '"disk_dir":' in line)
    for command in (("validate",), ("apply", "-y")):
        done = decl(*command, "-f", path, env=xen.env())
        assert done.returncode == 1, done.stdout + done.stderr
        first = done.stderr.splitlines()[0]
        assert first.startswith(f"error: {path}:{venv_line}:"), first
        assert f"around the path of vm.old (disk file '{disk}')" in first, first
        assert f"vm.old is at {path}:{disks_line}:" in first, first
    assert disk.exists() and (tmp_path / "etc-xen" / "old.cfg").exists()
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["old-xvda.img"]
