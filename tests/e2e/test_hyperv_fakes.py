"""Hyper-V VMs end to end: the decl CLI against the stateful fake PowerShell."""

from __future__ import annotations

import subprocess

import pytest

from tests.fakes.windows.harness import (  # noqa: F401 - fake_windows_fixture is a fixture
    fake_windows_fixture,
    plan_json,
    run_decl,
    write_manifest,
)

BASE = "C:\\images\\debian.vhdx"
GIB = 1024**3


def manifest(tmp_path, vms):
    for vm in vms.values():
        vm.setdefault("provider", "hyperv")
    return write_manifest(tmp_path / "decl.yaml", {"version": 1, "project": "lab", "vms": vms})


def vms(fake):
    return {vm["Name"]: vm for vm in fake.load()["hyperv"]["vms"]}


def scripts(fake, tool="powershell.exe"):
    return [argv[-1] for argv in fake.calls(tool)]


@pytest.fixture
def host(fake_windows):
    fake_windows.edit(lambda d: d["hyperv"]["vhds"].__setitem__(
        BASE.lower(), {"Path": BASE, "Size": 10 * GIB, "ParentPath": None}))
    return fake_windows


def test_lifecycle(host, decl_cmd, tmp_path):
    wanted = {
        "web": {"cpus": 2, "memory": "2GiB", "firmware": "uefi", "disks": [{"size": "20GiB"}]},
        "db": {"memory": "1GiB", "state": "stopped", "network": {"mode": "none"},
               "disks": [{"image": BASE, "size": "30GiB"}, {"size": "5GiB"}]},
    }
    path = manifest(tmp_path, wanted)
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    found = vms(host)
    web, db = found["web"], found["db"]
    assert (web["State"], web["ProcessorCount"], web["MemoryStartup"], web["Generation"],
            web["SwitchName"]) == (2, 2, 2 * GIB, 2, "Default Switch")
    assert (db["State"], db["Generation"], db["SwitchName"], len(db["Disks"])) == (3, 1, None, 2)
    vhds = host.load()["hyperv"]["vhds"]
    assert vhds[db["Disks"][0].lower()]["ParentPath"] == BASE  # differencing by default
    assert vhds[db["Disks"][0].lower()]["Size"] == 30 * GIB
    assert "decl:project=lab address=vm.web" in web["Notes"]
    assert all('"' not in s for s in scripts(host))

    # no-op
    again = run_decl(host, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path))
    assert again.returncode == 0, again.stdout + again.stderr

    # memory of a running VM: update with a restart
    wanted["web"]["memory"] = "4GiB"
    path = manifest(tmp_path, wanted)
    plan = plan_json(host, decl_cmd, path)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [
        ("vm.web", "update_restart")]
    host.clear_calls()
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert vms(host)["web"]["MemoryStartup"] == 4 * GIB and vms(host)["web"]["State"] == 2
    sent = scripts(host)
    stop = next(i for i, s in enumerate(sent) if "Stop-VM -Force" in s)
    setvm = next(i for i, s in enumerate(sent) if "-MemoryStartupBytes 4294967296" in s)
    start = next(i for i, s in enumerate(sent) if "Start-VM" in s)
    assert stop < setvm < start

    # stop and start
    wanted["web"]["state"] = "stopped"
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(manifest(tmp_path, wanted)))
    assert done.returncode == 0 and vms(host)["web"]["State"] == 3, done.stdout + done.stderr
    wanted["db"]["state"] = "running"
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(manifest(tmp_path, wanted)))
    assert done.returncode == 0 and vms(host)["db"]["State"] == 2, done.stdout + done.stderr

    # destroy: VMs and the disks decl made go; the base image stays
    done = run_decl(host, decl_cmd, "destroy", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert vms(host) == {}
    assert list(host.load()["hyperv"]["vhds"]) == [BASE.lower()]


def test_unmarked_vm_is_a_conflict_and_left_alone(host, decl_cmd, tmp_path):
    subprocess.run(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
                    "New-VM -Name 'web' -MemoryStartupBytes 536870912 -NoVHD | Out-Null"],
                   env=host.env(), check=True, capture_output=True)
    before = vms(host)["web"]
    host.clear_calls()
    path = manifest(tmp_path, {"web": {"cpus": 4, "memory": "2GiB"}})
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1
    assert "is in conflict" in done.stdout and "adopt: true" in done.stdout, done.stdout
    assert vms(host)["web"] == before
    assert not any(verb in s for s in scripts(host)
                   for verb in ("Set-VM", "Stop-VM", "Remove-VM", "Start-VM", "New-VM"))
    run_decl(host, decl_cmd, "destroy", "-y", "-f", str(path))
    assert vms(host)["web"] == before


def test_failure_mid_apply_then_plan_shows_what_is_left(host, decl_cmd, tmp_path):
    host.fail("powershell", "-ProcessorCount")
    path = manifest(tmp_path, {"web": {"cpus": 2, "disks": [{"size": "1GiB"}]},
                               "db": {"disks": [{"image": BASE}]}})
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Apply: 1 done, 1 failed" in out
    failed = "vm.db" if "vm.db: configuring the VM failed" in out else "vm.web"
    assert f"{failed}: configuring the VM failed: Set-VM : The operation failed." in out, out
    # the half-made VM is marked, so the next plan shows only what is left
    plan = plan_json(host, decl_cmd, path)
    changes = [(c["address"], c["action"]) for c in plan["changes"]]
    assert len(changes) == 1 and changes[0][0] == failed
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_decl(host, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0


def test_shutdown_that_hangs_is_turned_off(host, decl_cmd, tmp_path):
    wanted = {"web": {"memory": "512MiB", "options": {"stop_timeout": 1}}}
    path = manifest(tmp_path, wanted)
    assert run_decl(host, decl_cmd, "apply", "-y", "-f", str(path)).returncode == 0
    host.edit(lambda d: d["hyperv"]["vms"][0].update(Shutdown="hang"))
    wanted["web"]["state"] = "stopped"
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(manifest(tmp_path, wanted)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert vms(host)["web"]["State"] == 3
    assert any("Stop-VM -TurnOff" in s for s in scripts(host))


def test_missing_switch_is_a_plan_error(host, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"web": {"network": {"mode": "bridge", "bridge": "LabNet"}}})
    done = run_decl(host, decl_cmd, "plan", "-f", str(path))
    assert done.returncode == 1
    assert "virtual switch 'LabNet' does not exist" in done.stdout + done.stderr


def test_pwsh_and_quotes_in_values(host, decl_cmd, tmp_path):
    disk_dir = "C:\\VMs\\o'brien \u2019s"
    path = manifest(tmp_path, {"web": {"memory": "512MiB", "disks": [{"size": "1GiB"}],
                                       "options": {"powershell": "pwsh", "disk_dir": disk_dir}}})
    done = run_decl(host, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert vms(host)["web"]["Disks"] == [disk_dir + "\\web.vhdx"]
    assert scripts(host, "pwsh")
    assert run_decl(host, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0


def test_bad_options_are_reported(host, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"web": {"memory": "1000MB", "options": {"bogus": 1}}})
    done = run_decl(host, decl_cmd, "plan", "-f", str(path))
    assert done.returncode == 1
    # options are checked by the provider's model with the manifest position, one way for
    # every VM provider; both problems are counted
    assert f"{path}:" in done.stderr
    assert "unknown option 'bogus'" in done.stderr and "(and 1 more problem)" in done.stderr
    assert "(in vms -> web -> options -> bogus)" in done.stderr
