"""Parallels Desktop VMs end to end: the decl CLI against the stateful fake prlctl."""

from __future__ import annotations

import json

from tests.fakes.mac.harness import (  # noqa: F401 - fake_mac_fixture is a fixture
    fake_mac_fixture,
    plan_json,
    run_decl,
    write_manifest,
)

GIB = 1024**3
MIB = 1024**2


def manifest(tmp_path, vms, project="lab"):
    for vm in vms.values():
        vm.setdefault("provider", "parallels")
    return write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": project,
                                                   "vms": vms})


def apply(fake, decl_cmd, path, *extra):
    done = run_decl(fake, decl_cmd, "apply", "-y", *extra, "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def actions(fake, decl_cmd, path):
    return [(c["address"], c["action"]) for c in plan_json(fake, decl_cmd, path)["changes"]
            if c["action"] != "noop"]


def prl_calls(fake):
    return [" ".join(argv) for argv in fake.calls("prlctl")]


def test_lifecycle(fake_mac, decl_cmd, tmp_path):
    wanted = {
        "web": {"cpus": 2, "memory": "2GiB", "firmware": "uefi",
                "disks": [{"size": "20GiB"}, {"size": "1GiB"}],
                "options": {"shutdown_timeout": 2}},
        "db": {"memory": "1GiB", "state": "stopped", "network": {"mode": "bridge",
                                                                   "bridge": "en0"},
               "disks": [{"size": "8GiB"}]},
    }
    path = manifest(tmp_path, wanted)
    apply(fake_mac, decl_cmd, path)
    vms = fake_mac.parallels_vms()
    web, db = vms["web"], vms["db"]
    assert (web["state"], web["cpus"], web["memsize"], web["efi"]) == ("running", 2, 2048, True)
    assert {k: v["size"] for k, v in web["devices"].items() if k.startswith("hdd")} == {
        "hdd0": 20480, "hdd1": 1024}
    assert (db["state"], db["efi"], db["devices"]["net0"]["type"],
            db["devices"]["net0"]["iface"]) == ("stopped", False, "bridged", "en0")
    assert web["description"].startswith("decl:project=lab address=vm.web spec-hash=")
    assert "spec-hash=pending" not in web["description"]

    # no-op, in one prlctl process for discovery
    fake_mac.clear_calls()
    again = run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert [c for c in prl_calls(fake_mac) if not c.startswith("--version")] == [
        "list -a -i -j"]

    # memory of a running VM: a restart (graceful stop, set, start); the guest ignores the
    # shutdown, so after options.shutdown_timeout the VM is killed
    fake_mac.edit(lambda d: next(v for v in d["parallels"]["vms"] if v["name"] == "web")
                  .__setitem__("ignores_shutdown", True))
    wanted["web"]["memory"] = "4GiB"
    path = manifest(tmp_path, wanted)
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "update_restart")]
    fake_mac.clear_calls()
    apply(fake_mac, decl_cmd, path)
    web = fake_mac.parallels_vms()["web"]
    assert (web["memsize"], web["state"]) == (4096, "running")
    sent = prl_calls(fake_mac)
    uuid = web["uuid"]
    stop = sent.index(f"stop {uuid}")
    kill = sent.index(f"stop {uuid} --kill")
    setmem = next(i for i, c in enumerate(sent) if "--memsize 4096" in c)
    start = sent.index(f"start {uuid}")
    assert stop < kill < setmem < start

    # grow a disk: a restart too; the disk keeps its identity
    wanted["web"]["disks"][0]["size"] = "30GiB"
    path = manifest(tmp_path, wanted)
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "update_restart")]
    apply(fake_mac, decl_cmd, path)
    assert fake_mac.parallels_vms()["web"]["devices"]["hdd0"]["size"] == 30 * 1024
    assert run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0

    # a shrink is refused at plan time
    wanted["web"]["disks"][0]["size"] = "10GiB"
    refused = run_decl(fake_mac, decl_cmd, "plan", "-f", str(manifest(tmp_path, wanted)))
    assert refused.returncode == 1 and "cannot shrink" in refused.stdout + refused.stderr
    wanted["web"]["disks"][0]["size"] = "30GiB"

    # stop and start
    wanted["web"]["state"] = "stopped"
    apply(fake_mac, decl_cmd, manifest(tmp_path, wanted))
    assert fake_mac.parallels_vms()["web"]["state"] == "stopped"
    wanted["db"]["state"] = "running"
    apply(fake_mac, decl_cmd, manifest(tmp_path, wanted))
    assert fake_mac.parallels_vms()["db"]["state"] == "running"

    # destroy removes both, bundles included
    homes = [vm["home"] for vm in fake_mac.parallels_vms().values()]
    done = run_decl(fake_mac, decl_cmd, "destroy", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake_mac.parallels_vms() == {}
    import os
    assert not any(os.path.exists(h) for h in homes)


def make_unmarked(fake_mac, name="web"):
    assert fake_mac.run("prlctl", "create", name, "--ostype", "linux").returncode == 0
    assert fake_mac.run("prlctl", "set", name, "--description", "my own VM").returncode == 0


def test_unmarked_vm_is_a_conflict_left_byte_for_byte(fake_mac, decl_cmd, tmp_path):
    make_unmarked(fake_mac)
    before = json.dumps(fake_mac.parallels_vms()["web"], sort_keys=True)
    fake_mac.clear_calls()
    path = manifest(tmp_path, {"web": {"cpus": 4, "memory": "2GiB",
                                       "disks": [{"size": "64GiB"}]}})
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1
    assert "conflict" in done.stdout and "adopt: true" in done.stdout, done.stdout
    run_decl(fake_mac, decl_cmd, "destroy", "-y", "-f", str(path))
    assert json.dumps(fake_mac.parallels_vms()["web"], sort_keys=True) == before
    assert all(c.split()[0] in ("list", "--version") for c in prl_calls(fake_mac))


def test_adopt_keeps_the_users_description(fake_mac, decl_cmd, tmp_path):
    make_unmarked(fake_mac)
    path = manifest(tmp_path, {"web": {"cpus": 3, "memory": "1GiB", "adopt": True,
                                       "disks": [{"size": "64GiB"}]}})
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "adopt")]
    apply(fake_mac, decl_cmd, path)
    web = fake_mac.parallels_vms()["web"]
    assert web["cpus"] == 3 and web["description"].startswith("my own VM\ndecl:project=lab ")
    assert run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0


def test_orphans_are_pruned_only_with_prune(fake_mac, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"a": {"disks": [{"size": "1GiB"}]},
                               "b": {"disks": [{"size": "1GiB"}]}})
    apply(fake_mac, decl_cmd, path)
    make_unmarked(fake_mac, "stranger")
    path = manifest(tmp_path, {"a": {"disks": [{"size": "1GiB"}]}})
    plan = plan_json(fake_mac, decl_cmd, path)
    assert "vm.b" in json.dumps(plan)
    apply(fake_mac, decl_cmd, path)
    assert set(fake_mac.parallels_vms()) == {"a", "b", "stranger"}
    apply(fake_mac, decl_cmd, path, "--prune")
    assert set(fake_mac.parallels_vms()) == {"a", "stranger"}


def test_failure_mid_apply_leaves_a_plan_that_finishes(fake_mac, decl_cmd, tmp_path):
    # web's second disk fails: the half-made VM is removed again; db is made; then a start
    # fails after a successful create: that VM stays, marked, and the next plan starts it
    fake_mac.fail("prlctl", "--device-add hdd", after=1)
    path = manifest(tmp_path, {"web": {"cpus": 2, "disks": [{"size": "2GiB"},
                                                            {"size": "1GiB"}]},
                               "db": {"disks": [{"size": "1GiB"}]}})
    fake_mac.edit(lambda d: d["faults"].append({"tool": "prlctl", "match": "start",
                                                "after": 0, "times": 1}))
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "--parallelism", "1", "-f", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    vms = fake_mac.parallels_vms()
    assert set(vms) == {"db"} and vms["db"]["state"] == "stopped"
    assert "spec-hash=pending" not in vms["db"]["description"]
    assert dict(actions(fake_mac, decl_cmd, path)) == {"vm.db": "start", "vm.web": "create"}
    apply(fake_mac, decl_cmd, path)
    web = fake_mac.parallels_vms()["web"]
    assert sorted(k for k in web["devices"] if k.startswith("hdd")) == ["hdd0", "hdd1"]
    assert web["state"] == "running" and fake_mac.parallels_vms()["db"]["state"] == "running"
    assert run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0


def test_arch_other_than_the_hosts_is_refused(fake_mac, decl_cmd, tmp_path):
    import platform

    host = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(), platform.machine())
    other = "x86_64" if host == "aarch64" else "aarch64"
    path = manifest(tmp_path, {"web": {"arch": other, "disks": [{"size": "1GiB"}]}})
    done = run_decl(fake_mac, decl_cmd, "plan", "-f", str(path))
    out = done.stdout + done.stderr
    assert "host's architecture" in out and "provider utm" in out, out
    assert "will be created" not in out
    # an arch Parallels never runs: refused by validate, at its line and column
    path = manifest(tmp_path, {"web": {"arch": "riscv64", "disks": [{"size": "1GiB"}]}})
    done = run_decl(fake_mac, decl_cmd, "validate", "-f", str(path))
    assert done.returncode == 1 and "decl.yaml:6:15" in done.stdout + done.stderr
    assert fake_mac.parallels_vms() == {}


def test_cdrom_and_network_changes(fake_mac, decl_cmd, tmp_path):
    iso = tmp_path / "install.iso"
    iso.write_bytes(b"iso")
    wanted = {"web": {"disks": [{"size": "4GiB"}], "cdrom": str(iso),
                      "network": {"mode": "none"}, "options": {"shutdown_timeout": 5}}}
    path = manifest(tmp_path, wanted)
    apply(fake_mac, decl_cmd, path)
    web = fake_mac.parallels_vms()["web"]
    assert web["devices"]["cdrom0"]["image"] == str(iso)
    assert web["devices"]["net0"]["enabled"] is False
    wanted["web"]["network"] = {"mode": "nat"}
    path = manifest(tmp_path, wanted)
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "update_restart")]
    apply(fake_mac, decl_cmd, path)
    net = fake_mac.parallels_vms()["web"]["devices"]["net0"]
    assert (net["enabled"], net["type"]) == (True, "shared")
    assert run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0


def test_cloud_init_seed(fake_mac, decl_cmd, tmp_path):
    wanted = {"web": {"disks": [{"size": "4GiB"}], "options": {"shutdown_timeout": 5},
                      "cloud_init": {"hostname": "web", "user": "lab",
                                     "ssh_authorized_keys": ["ssh-ed25519 AAAA lab"]}}}
    path = manifest(tmp_path, wanted)
    apply(fake_mac, decl_cmd, path)
    web = fake_mac.parallels_vms()["web"]
    seed = web["devices"]["cdrom1"]["image"]
    assert seed.startswith(web["home"]) and seed.endswith("cloud-init-seed.iso")
    first = open(seed, "rb").read()
    assert b"cidata" in first.lower() and b"local-hostname: web" in first
    assert run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0

    # a new hostname: the seed is made again (a restart), in the same CD drive
    wanted["web"]["cloud_init"]["hostname"] = "web2"
    path = manifest(tmp_path, wanted)
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "update_restart")]
    apply(fake_mac, decl_cmd, path)
    web = fake_mac.parallels_vms()["web"]
    assert sorted(d for d in web["devices"] if d.startswith("cdrom")) == ["cdrom0", "cdrom1"]
    assert open(seed, "rb").read() != first
    assert run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0


def test_a_cdrom_under_home_converges(fake_mac, decl_cmd, tmp_path):
    """`cdrom: ~/Downloads/x.iso` (as in examples/parallels.yaml): prlctl reports the
    expanded path; the plan after apply is empty, and a different image is still a change."""
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    (home / "Downloads" / "x.iso").write_bytes(b"iso")
    (home / "Downloads" / "y.iso").write_bytes(b"iso")
    env = {"HOME": str(home), "DECL_STATE_DIR": str(tmp_path / "state")}
    path = manifest(tmp_path, {"web": {"memory": "1GiB", "cdrom": "~/Downloads/x.iso"}})
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    web = fake_mac.parallels_vms()["web"]
    assert web["devices"]["cdrom0"]["image"] == str(home / "Downloads" / "x.iso")
    again = run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path),
                     env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    path = manifest(tmp_path, {"web": {"memory": "1GiB", "cdrom": "~/Downloads/y.iso"}})
    other = run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path),
                     env=env)
    assert other.returncode == 2 and "y.iso" in other.stdout, other.stdout + other.stderr
