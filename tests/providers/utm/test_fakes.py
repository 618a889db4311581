"""The fake utmctl and osascript keep UTM's documented behaviour (docs/facts/utm.md)."""

from decl.providers.utm import applescript as a
from decl.providers.utm import output
from tests.fakes.mac.harness import fake_mac_fixture  # noqa: F401 - a fixture


def make(fake_mac, name="web", **extra):
    items = [("name", a.string(name)), ("architecture", a.string("aarch64"))]
    items += list(extra.items())
    done = fake_mac.run("osascript", "-s", "s", "-e", a.make_vm("qemu", a.record(items)))
    assert done.returncode == 0, done.stderr
    return output.parse_value(done.stdout)


def config(fake_mac, vm_id):
    done = fake_mac.run("osascript", "-s", "s", "-e", a.tell_utm(
        f"return configuration of {a.vm_by_id(vm_id)}"))
    assert done.returncode == 0, done.stderr
    return output.parse_value(done.stdout)


def test_new_vm_defaults_and_list(fake_mac):
    vm_id = make(fake_mac)
    cfg = config(fake_mac, vm_id)
    assert [d["removable"] for d in cfg["drives"]] == [True, False]
    assert [n["mode"] for n in cfg["network interfaces"]] == [output.Constant("shared")]
    listed = fake_mac.run("utmctl", "list")
    assert output.parse_list(listed.stdout) == [output.UtmRow(vm_id, "stopped", "web")]


def test_update_refused_unless_stopped(fake_mac):
    vm_id = make(fake_mac)
    assert fake_mac.run("utmctl", "start", vm_id).returncode == 0
    done = fake_mac.run("osascript", "-e", a.update_vm(vm_id, a.record([("memory",
                                                                          a.integer(4096))])))
    assert done.returncode == 1
    assert output.parse_osa_error(done.stderr).message == (
        "The virtual machine must be stopped before this operation can be performed.")


def test_drive_lists_are_replaced_whole_and_sizes_do_not_change(fake_mac):
    vm_id = make(fake_mac)
    disk = config(fake_mac, vm_id)["drives"][1]["id"]
    keep = a.record([("id", a.string(disk)), ("guest size", a.integer(999999))])
    new = a.record([("guest size", a.integer(2048))])
    done = fake_mac.run("osascript", "-e", a.update_vm(vm_id, a.record(
        [("drives", a.alist([keep, new]))])))
    assert done.returncode == 0, done.stderr
    drives = fake_mac.utm_vms()["web"]["config"]["drives"]
    assert [(d["id"] == disk, d["sizeMib"]) for d in drives] == [(True, 65536), (False, 2048)]


def test_enum_given_as_string_is_ignored_and_empty_notes_too(fake_mac):
    vm_id = make(fake_mac, notes=a.string("keep"))
    script = a.tell_utm(f'update configuration of {a.vm_by_id(vm_id)} with '
                        '{notes:"", network interfaces:{{index:0, mode:"bridged"}}}')
    assert fake_mac.run("osascript", "-e", script).returncode == 0
    cfg = fake_mac.utm_vms()["web"]["config"]
    assert cfg["notes"] == "keep" and cfg["networkInterfaces"][0]["mode"] == "shared"


def test_syntax_error_runs_nothing(fake_mac):
    script = a.make_vm("qemu", a.record([("name", a.string("x")),
                                         ("architecture", a.string("x86_64"))]))
    done = fake_mac.run("osascript", "-e", script + "\nthis is not applescript")
    assert done.returncode == 1 and "syntax error" in done.stderr
    assert fake_mac.utm_vms() == {}


def test_utmctl_event_errors_exit_zero(fake_mac):
    vm_id = make(fake_mac)
    done = fake_mac.run("utmctl", "stop", vm_id)
    assert done.returncode == 0 and done.stdout == ""
    assert output.event_failure(done.stderr).endswith("The virtual machine is not running.")
    missing = fake_mac.run("utmctl", "status", "nope")
    assert (missing.returncode, missing.stderr) == (1, "Error: Virtual machine not found.\n")
    assert fake_mac.run("utmctl", "stop", vm_id, "--kill", "--force").returncode == 64


def test_no_gui_session(fake_mac):
    make(fake_mac)
    fake_mac.edit(lambda d: d["host"].__setitem__("gui_session", False))
    listed = fake_mac.run("utmctl", "list")
    assert listed.returncode == 0 and output.parse_list(listed.stdout) == []
    assert "SSH" in output.event_failure(listed.stderr)
    script = fake_mac.run("osascript", "-e", a.discover())
    assert script.returncode == 1 and "-1743" in script.stderr
