"""UTM VMs end to end: the decl CLI against the fake utmctl and the fake osascript, which
interprets the AppleScript decl sends as UTM's scripting dictionary would."""

from __future__ import annotations

import json

from decl.providers.utm import applescript as a
from tests.fakes.mac.harness import (  # noqa: F401 - fake_mac_fixture is a fixture
    fake_mac_fixture,
    plan_json,
    run_decl,
    write_manifest,
)


def manifest(tmp_path, vms, project="lab"):
    for vm in vms.values():
        vm.setdefault("provider", "utm")
    return write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": project,
                                                   "vms": vms})


def apply(fake, decl_cmd, path, *extra):
    done = run_decl(fake, decl_cmd, "apply", "-y", *extra, "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def actions(fake, decl_cmd, path):
    return [(c["address"], c["action"]) for c in plan_json(fake, decl_cmd, path)["changes"]
            if c["action"] != "noop"]


def noop(fake, decl_cmd, path):
    done = run_decl(fake, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def tool_calls(fake):
    out = []
    for call in fake.load()["calls"]:
        if call["tool"] == "utmctl":
            out.append("utmctl " + " ".join(call["argv"]))
        else:
            script = call["argv"][-1]
            verb = ("update" if "update configuration" in script else
                    "make" if "make new" in script else
                    "discover" if "every virtual machine" in script else "other")
            out.append("osascript " + verb)
    return out


def by_name(fake, name):
    return fake.utm_vms()[name]


def test_lifecycle(fake_mac, decl_cmd, tmp_path):
    wanted = {
        "web": {"cpus": 2, "memory": "2GiB", "disks": [{"size": "20GiB"}, {"size": "1GiB"}],
                "options": {"shutdown_timeout": 1}},
        "x86": {"arch": "x86_64", "memory": "1GiB", "state": "stopped",
                "network": {"mode": "bridge", "bridge": "en0"}, "disks": [{"size": "8GiB"}]},
    }
    path = manifest(tmp_path, wanted)
    apply(fake_mac, decl_cmd, path)
    web, x86 = by_name(fake_mac, "web"), by_name(fake_mac, "x86")
    cfg = web["config"]
    assert (web["status"], web["backend"], cfg["cpuCores"], cfg["memory"]) == (
        "started", "qemu", 2, 2048)
    assert [d["sizeMib"] for d in cfg["drives"]] == [20480, 1024]  # the defaults replaced
    assert cfg["notes"].startswith("decl:project=lab address=vm.web spec-hash=")
    xcfg = x86["config"]
    assert (x86["status"], xcfg["architecture"], xcfg["networkInterfaces"][0]["mode"],
            xcfg["networkInterfaces"][0]["hostInterface"]) == ("stopped", "x86_64", "bridged",
                                                              "en0")

    # no-op: two processes for discovery
    fake_mac.clear_calls()
    noop(fake_mac, decl_cmd, path)
    assert [c for c in tool_calls(fake_mac) if c != "osascript other"] == [
        "utmctl list", "osascript discover"]

    # memory of a running VM: planned as a restart; the guest ignores the shutdown request,
    # so after options.shutdown_timeout it is powered off
    fake_mac.edit(lambda d: next(v for v in d["utm"]["vms"] if v["config"]["name"] == "web")
                  .__setitem__("ignores_shutdown", True))
    wanted["web"]["memory"] = "4GiB"
    path = manifest(tmp_path, wanted)
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "update_restart")]
    fake_mac.clear_calls()
    apply(fake_mac, decl_cmd, path)
    web = by_name(fake_mac, "web")
    assert (web["config"]["memory"], web["status"]) == (4096, "started")
    sent = tool_calls(fake_mac)
    vm_id = web["id"]
    request = sent.index(f"utmctl stop {vm_id} --request")
    force = sent.index(f"utmctl stop {vm_id} --force")
    update = sent.index("osascript update")
    start = sent.index(f"utmctl start {vm_id}")
    assert request < force < update < start
    noop(fake_mac, decl_cmd, path)

    # a disk cannot grow through UTM's dictionary: refused at plan time, with the reason
    wanted["web"]["disks"][0]["size"] = "30GiB"
    refused = run_decl(fake_mac, decl_cmd, "plan", "-f", str(manifest(tmp_path, wanted)))
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "cannot grow" in out and "cannot resize" in out, out
    wanted["web"]["disks"][0]["size"] = "20GiB"

    # stop and start
    wanted["web"]["state"] = "stopped"
    apply(fake_mac, decl_cmd, manifest(tmp_path, wanted))
    assert by_name(fake_mac, "web")["status"] == "stopped"
    wanted["x86"]["state"] = "running"
    path = manifest(tmp_path, wanted)
    apply(fake_mac, decl_cmd, path)
    assert by_name(fake_mac, "x86")["status"] == "started"

    # destroy: both go
    done = run_decl(fake_mac, decl_cmd, "destroy", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake_mac.utm_vms() == {}


def make_unmarked(fake_mac, name="web"):
    config = a.record([("name", a.string(name)), ("architecture", a.string("aarch64")),
                       ("notes", a.string("my own VM"))])
    done = fake_mac.run("osascript", "-s", "s", "-e", a.make_vm("qemu", config))
    assert done.returncode == 0, done.stderr


def test_unmarked_vm_is_a_conflict_left_byte_for_byte(fake_mac, decl_cmd, tmp_path):
    make_unmarked(fake_mac)
    before = json.dumps(by_name(fake_mac, "web"), sort_keys=True)
    fake_mac.clear_calls()
    path = manifest(tmp_path, {"web": {"cpus": 4, "disks": [{"size": "64GiB"}]}})
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1
    assert "conflict" in done.stdout and "adopt: true" in done.stdout, done.stdout
    run_decl(fake_mac, decl_cmd, "destroy", "-y", "-f", str(path))
    assert json.dumps(by_name(fake_mac, "web"), sort_keys=True) == before
    assert set(tool_calls(fake_mac)) <= {"utmctl list", "osascript discover", "osascript other"}


def test_adopt_keeps_the_users_notes(fake_mac, decl_cmd, tmp_path):
    make_unmarked(fake_mac)
    path = manifest(tmp_path, {"web": {"cpus": 3, "memory": "1GiB", "adopt": True,
                                       "firmware": "uefi", "disks": [{"size": "64GiB"}]}})
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "adopt")]
    apply(fake_mac, decl_cmd, path)
    web = by_name(fake_mac, "web")
    assert web["config"]["cpuCores"] == 3 and web["status"] == "started"
    assert web["config"]["notes"].startswith("my own VM\ndecl:project=lab address=vm.web ")
    noop(fake_mac, decl_cmd, path)


def test_orphans_are_pruned_only_with_prune(fake_mac, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"a": {"disks": [{"size": "1GiB"}]},
                               "b": {"disks": [{"size": "1GiB"}]}})
    apply(fake_mac, decl_cmd, path)
    make_unmarked(fake_mac, "stranger")
    path = manifest(tmp_path, {"a": {"disks": [{"size": "1GiB"}]}})
    assert "vm.b" in json.dumps(plan_json(fake_mac, decl_cmd, path))
    apply(fake_mac, decl_cmd, path)
    assert set(fake_mac.utm_vms()) == {"a", "b", "stranger"}
    apply(fake_mac, decl_cmd, path, "--prune")
    assert set(fake_mac.utm_vms()) == {"a", "stranger"}


def test_failure_mid_apply_leaves_a_plan_that_finishes(fake_mac, decl_cmd, tmp_path):
    fake_mac.fail("utmctl", "start")  # UTM made the VM; starting it fails
    path = manifest(tmp_path, {"web": {"disks": [{"size": "2GiB"}]}})
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert by_name(fake_mac, "web")["status"] == "stopped"
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "start")]
    apply(fake_mac, decl_cmd, path)
    assert by_name(fake_mac, "web")["status"] == "started"
    noop(fake_mac, decl_cmd, path)


def test_event_errors_on_stderr_are_failures(fake_mac, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"web": {"disks": [{"size": "2GiB"}]}})
    apply(fake_mac, decl_cmd, path)
    # utmctl prints the Apple-event failure and exits 0 with an empty list: decl must not
    # take that for "no VMs" (and plan a second web)
    fake_mac.fail("utmctl", "list", code=0, message=(
        "Error from event: The operation couldn’t be completed. (OSStatus error -1743.)\n"
        "NOTE: utmctl does not work from SSH sessions or before logging in."))
    done = run_decl(fake_mac, decl_cmd, "plan", "--json", "-f", str(path))
    out = done.stdout + done.stderr
    assert "OSStatus error -1743" in out and "logged-in GUI session" in out, out
    assert '"action": "create"' not in out
    # nobody logged in: UTM is reported unusable, with the reason
    fake_mac.edit(lambda d: d["host"].__setitem__("gui_session", False))
    done = run_decl(fake_mac, decl_cmd, "plan", "-f", str(path))
    out = done.stdout + done.stderr
    assert "not usable" in out and "logged-in GUI session" in out, out
    assert "will be created" not in out
    assert len(fake_mac.utm_vms()) == 1


def test_backends_and_arches(fake_mac, decl_cmd, tmp_path, monkeypatch):
    host = run_decl(fake_mac, decl_cmd, "plan", "--json", "-f", str(manifest(tmp_path, {})))
    assert host.returncode == 0
    import platform
    host_arch = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(),
                                                             platform.machine())
    other = "riscv64" if host_arch != "riscv64" else "x86_64"
    path = manifest(tmp_path, {"vz": {"options": {"backend": "apple"},
                                      "disks": [{"size": "4GiB"}]},
                               "emu": {"arch": other, "disks": [{"size": "4GiB"}]}})
    apply(fake_mac, decl_cmd, path)
    assert by_name(fake_mac, "vz")["backend"] == "apple"
    assert by_name(fake_mac, "emu")["backend"] == "qemu"
    assert by_name(fake_mac, "emu")["config"]["hypervisor"] is False  # emulated
    noop(fake_mac, decl_cmd, path)
    bad = manifest(tmp_path, {"vz2": {"arch": other, "options": {"backend": "apple"},
                                      "disks": [{"size": "4GiB"}]}})
    refused = run_decl(fake_mac, decl_cmd, "plan", "-f", str(bad))
    assert refused.returncode == 1 and "needs backend qemu" in refused.stdout + refused.stderr


def test_image_and_cdrom(fake_mac, decl_cmd, tmp_path):
    image = tmp_path / "debian.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\0" * 4096)
    first, second = tmp_path / "one.iso", tmp_path / "two words.iso"
    first.write_bytes(b"iso")
    second.write_bytes(b"iso")
    wanted = {"web": {"disks": [{"image": str(image)}], "cdrom": str(first)}}
    path = manifest(tmp_path, wanted)
    apply(fake_mac, decl_cmd, path)
    drives = by_name(fake_mac, "web")["config"]["drives"]
    assert [(d["removable"], d["source"]) for d in drives] == [(False, str(image)),
                                                               (True, str(first))]
    noop(fake_mac, decl_cmd, path)

    # a new cdrom: a restart; the disk keeps its id, the drive list is sent whole
    wanted["web"]["cdrom"] = str(second)
    path = manifest(tmp_path, wanted)
    assert actions(fake_mac, decl_cmd, path) == [("vm.web", "update_restart")]
    apply(fake_mac, decl_cmd, path)
    after = by_name(fake_mac, "web")["config"]["drives"]
    assert after[0]["id"] == drives[0]["id"]
    assert [(d["removable"], d["source"]) for d in after] == [(False, str(image)),
                                                              (True, str(second))]
    noop(fake_mac, decl_cmd, path)

    # a size on an imported image, or an image URL, is refused with the reason
    wanted["web"]["disks"] = [{"image": str(image), "size": "10GiB"}]
    refused = run_decl(fake_mac, decl_cmd, "plan", "-f", str(manifest(tmp_path, wanted)))
    assert refused.returncode == 1 and "cannot resize an imported image" in (
        refused.stdout + refused.stderr)


def test_cloud_init_seed(fake_mac, decl_cmd, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    iso = tmp_path / "install.iso"
    iso.write_bytes(b"iso")
    wanted = {"web": {"disks": [{"size": "4GiB"}], "cdrom": str(iso),
                      "cloud_init": {"hostname": "web", "user": "lab"}}}
    path = manifest(tmp_path, wanted)
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    seed = home / "Library/Application Support/decl/utm-seeds/lab-web-seed.iso"
    drives = by_name(fake_mac, "web")["config"]["drives"]
    assert [(d["removable"], d["source"]) for d in drives][1:] == [(True, str(iso)),
                                                                   (True, str(seed))]
    first = seed.read_bytes()
    assert b"local-hostname: web" in first
    again = run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path), env=env)
    assert again.returncode == 0, again.stdout + again.stderr

    wanted["web"]["cloud_init"]["hostname"] = "web2"
    path = manifest(tmp_path, wanted)
    done = run_decl(fake_mac, decl_cmd, "apply", "-y", "-f", str(path), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    after = by_name(fake_mac, "web")["config"]["drives"]
    assert after[0]["id"] == drives[0]["id"] and len(after) == 3
    assert seed.read_bytes() != first
    again = run_decl(fake_mac, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path), env=env)
    assert again.returncode == 0, again.stdout + again.stderr

    done = run_decl(fake_mac, decl_cmd, "destroy", "-y", "-f", str(path), env=env)
    assert done.returncode == 0 and not seed.exists(), done.stdout + done.stderr


def test_a_paused_vm_is_stopped_hard(fake_mac, decl_cmd, tmp_path):
    wanted = {"web": {"disks": [{"size": "2GiB"}]}}
    apply(fake_mac, decl_cmd, manifest(tmp_path, wanted))
    fake_mac.edit(lambda d: d["utm"]["vms"][0].__setitem__("status", "paused"))
    wanted["web"]["state"] = "stopped"
    path = manifest(tmp_path, wanted)
    fake_mac.clear_calls()
    apply(fake_mac, decl_cmd, path)
    assert by_name(fake_mac, "web")["status"] == "stopped"
    stops = [c for c in tool_calls(fake_mac) if c.startswith("utmctl stop")]
    assert len(stops) == 1 and stops[0].endswith("--kill"), stops
    noop(fake_mac, decl_cmd, path)
