"""WSL distros end to end: the decl CLI against the stateful fake wsl.exe."""

from __future__ import annotations

import json
import os

from tests.fakes.windows.harness import (  # noqa: F401 - fake_windows_fixture is a fixture
    fake_windows_fixture,
    plan_json,
    run_decl,
    write_manifest,
)

TARBALL = "C:\\images\\rootfs.tar"


def manifest(tmp_path, wsl, **extra):
    return write_manifest(tmp_path / "decl.yaml",
                          {"version": 1, "project": "lab", "wsl": wsl, **extra})


def distros(fake):
    return fake.load()["wsl"]["distros"]


def read_in(fake, name, path):
    root = distros(fake)[name]["root"]
    with open(os.path.join(root, path.lstrip("/"))) as handle:
        return handle.read()


def mutating(calls, name):
    """wsl.exe calls that change the distro `name`."""
    verbs = {"--unregister", "--set-version", "--set-default", "-s", "--import", "--export",
             "--install"}
    return [c for c in calls if c and c[0] in verbs and name in c]


def test_lifecycle(fake_windows, decl_cmd, tmp_path):
    fake_windows.add_file(TARBALL)
    fake_windows.add_file("C:\\backups", kind="dir")
    wanted = {
        "dev": {"source": {"tarball": TARBALL}, "location": "C:\\WSL\\dev", "version": 2,
                "default": True, "user": "alice", "state": "running",
                "lifecycle": {"backup_dir": "C:\\backups"}},
        "ub": {"source": {"distribution": "Ubuntu-24.04"}, "version": 1},
    }
    path = manifest(tmp_path, wanted)

    # create
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply: 2 done, 0 failed" in done.stdout
    state = fake_windows.load()["wsl"]
    assert state["default"] == "dev"
    assert state["distros"]["dev"]["state"] == "Running"
    assert state["distros"]["dev"]["location"] == "C:\\WSL\\dev"
    assert (state["distros"]["ub"]["state"], state["distros"]["ub"]["version"]) == ("Stopped", 1)
    marks = json.loads(read_in(fake_windows, "dev", "/etc/decl.json"))
    assert marks["io.decl.project"] == "lab" and marks["io.decl.address"] == "wsl.dev"
    assert "[user]\ndefault=alice" in read_in(fake_windows, "dev", "/etc/wsl.conf")
    assert ["--install", "--distribution", "Ubuntu-24.04", "--name", "ub", "--version", "1",
            "--no-launch"] in fake_windows.calls("wsl.exe")

    # no-op plan; discovery leaves the stopped distro stopped
    again = run_decl(fake_windows, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert distros(fake_windows)["ub"]["state"] == "Stopped"

    # update: WSL version and the default distro
    wanted["ub"].update(version=2, default=True)
    wanted["dev"]["default"] = False
    path = manifest(tmp_path, wanted)
    plan = plan_json(fake_windows, decl_cmd, path)
    change = {c["address"]: c for c in plan["changes"]}["wsl.ub"]
    assert change["action"] == "update"
    assert {f["path"]: (f["before"], f["after"]) for f in change["fields"]} == {
        "version": (1, 2), "default": (False, True)}
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake_windows.load()["wsl"]["default"] == "ub"
    assert distros(fake_windows)["ub"]["version"] == 2
    assert run_decl(fake_windows, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0

    # stop, then start
    wanted["dev"]["state"] = "stopped"
    path = manifest(tmp_path, wanted)
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0 and "will be stopped" in done.stdout, done.stdout + done.stderr
    assert distros(fake_windows)["dev"]["state"] == "Stopped"
    wanted["dev"]["state"] = "running"
    path = manifest(tmp_path, wanted)
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0 and "will be started" in done.stdout, done.stdout + done.stderr
    assert distros(fake_windows)["dev"]["state"] == "Running"

    # destroy: dev is exported to its backup folder first
    done = run_decl(fake_windows, decl_cmd, "destroy", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert distros(fake_windows) == {}
    exports = [c for c in fake_windows.calls("wsl.exe") if c[0] == "--export"]
    assert len(exports) == 1 and exports[0][1] == "dev"
    assert exports[0][2].startswith("C:\\backups\\dev-") and exports[0][2].endswith(".tar")
    assert exports[0][2].lower() in fake_windows.load()["files"]


def test_unmarked_distro_is_a_conflict_and_left_alone(fake_windows, decl_cmd, tmp_path):
    fake_windows.add_file(TARBALL)
    import subprocess

    subprocess.run(["wsl.exe", "--import", "dev", "C:\\mine", TARBALL, "--version", "1"],
                   env=fake_windows.env(), check=True, capture_output=True)
    fake_windows.clear_calls()
    path = manifest(tmp_path, {"dev": {"source": {"tarball": TARBALL},
                                       "location": "C:\\WSL\\dev", "version": 2}})
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1
    assert "is in conflict" in done.stdout and "adopt: true" in done.stdout, done.stdout
    assert mutating(fake_windows.calls("wsl.exe"), "dev") == []
    assert distros(fake_windows)["dev"]["version"] == 1
    assert not os.path.exists(os.path.join(distros(fake_windows)["dev"]["root"], "etc/decl.json"))
    # destroy leaves it alone too
    done = run_decl(fake_windows, decl_cmd, "destroy", "-y", "-f", str(path))
    assert "dev" in distros(fake_windows)


def test_failure_mid_apply_then_plan_shows_what_is_left(fake_windows, decl_cmd, tmp_path):
    fake_windows.add_file(TARBALL)
    fake_windows.fail("wsl.exe", "--set-default")
    path = manifest(tmp_path, {
        "dev": {"source": {"tarball": TARBALL}, "location": "C:\\WSL\\dev", "default": True},
        "other": {"source": {"distribution": "Debian"}},
    })
    # make another distro the default first, so that dev needs --set-default
    import subprocess

    subprocess.run(["wsl.exe", "--install", "Ubuntu", "--no-launch"], env=fake_windows.env(),
                   check=True, capture_output=True)
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "Apply: 1 done, 1 failed" in out
    assert "wsl.dev" in out and "Catastrophic failure (Wsl/Service/E_UNEXPECTED)" in out
    assert "'dev'" in out  # the message names the distro
    plan = plan_json(fake_windows, decl_cmd, path)
    assert [(c["address"], c["action"], [f["path"] for f in c["fields"]])
            for c in plan["changes"]] == [("wsl.dev", "update", ["default"])]
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake_windows.load()["wsl"]["default"] == "dev"


def test_wsl_error_names_the_distro(fake_windows, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"dev": {"source": {"tarball": "C:\\missing.tar"},
                                       "location": "C:\\WSL\\dev"}})
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "wsl.dev: creating distro 'dev': wsl.exe --import failed (exit code 255): The " \
        "system cannot find the file specified. (Wsl/ERROR_FILE_NOT_FOUND)" in out, out


def test_utf8_and_bom_output_modes(fake_windows, decl_cmd, tmp_path):
    fake_windows.add_file(TARBALL)
    path = manifest(tmp_path, {"dev": {"source": {"tarball": TARBALL},
                                       "location": "C:\\WSL\\dev"}})
    assert run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path)).returncode == 0
    fake_windows.edit(lambda d: d["wsl"].update(bom=True))
    done = run_decl(fake_windows, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path))
    assert done.returncode == 0, done.stdout
    done = run_decl(fake_windows, decl_cmd, "plan", "--detailed-exitcode", "-f", str(path),
                    env={"WSL_UTF8": "1"})
    assert done.returncode == 0, done.stdout


def test_windows_paths_validated(fake_windows, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"dev": {"source": {"tarball": "rootfs.tar"},
                                       "location": "C:\\WSL\\dev"}})
    done = run_decl(fake_windows, decl_cmd, "validate", "-f", str(path))
    assert done.returncode == 1 and "not an absolute Windows path" in done.stdout + done.stderr
    path = manifest(tmp_path, {"dev": {"source": {"tarball": "\\\\nas\\share\\r.tar"},
                                       "location": "\\\\nas\\share\\dev"}})
    assert run_decl(fake_windows, decl_cmd, "validate", "-f", str(path)).returncode == 0


def test_missing_tool_is_reported(fake_windows, decl_cmd, tmp_path):
    path = manifest(tmp_path, {"dev": {"source": {"distribution": "Debian"}}})
    env = {"PATH": os.path.dirname(os.path.realpath(os.sys.executable)) + ":/usr/bin:/bin"}
    done = run_decl(fake_windows, decl_cmd, "plan", "-f", str(path), env=env)
    assert "wsl.exe was not found on host local" in done.stdout + done.stderr


def test_location_is_read_from_the_wsl_registry(fake_windows, decl_cmd, tmp_path):
    fake_windows.add_file(TARBALL)
    wanted = {"dev": {"source": {"tarball": TARBALL}, "location": "C:\\WSL\\dev"}}
    path = manifest(tmp_path, wanted)
    done = run_decl(fake_windows, decl_cmd, "apply", "-y", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_decl(fake_windows, decl_cmd, "plan", "--detailed-exitcode",
                    "-f", str(path)).returncode == 0
    # moved outside decl (`wsl --manage dev --move D:\WSL\dev`): the registry's BasePath says
    # so, and the marks file inside the distro, which still says C:\WSL\dev, does not count
    fake_windows.edit(lambda d: d["wsl"]["distros"]["dev"].update(location="D:\\WSL\\dev"))
    done = run_decl(fake_windows, decl_cmd, "plan", "--json", "-f", str(path))
    change = json.loads(done.stdout)["changes"][0]
    assert change["action"] == "replace" and change["origin"] == "drift"
    assert "changed outside decl" in change["cause"]
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [
        ("location", "D:\\WSL\\dev", "C:\\WSL\\dev")]
