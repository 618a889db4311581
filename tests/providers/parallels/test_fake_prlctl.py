"""The fake prlctl keeps Parallels' documented behaviour (docs/facts/parallels.md)."""

from decl.providers.parallels import output
from tests.fakes.mac.harness import fake_mac_fixture  # noqa: F401 - a fixture


def test_create_set_list(fake_mac):
    assert fake_mac.run("prlctl", "create", "web", "--ostype", "linux").returncode == 0
    done = fake_mac.run("prlctl", "set", "web", "--cpus", "4", "--memsize", "2048",
                        "--description", "hello")
    assert done.returncode == 0 and "successfully configured" in done.stdout
    (vm,) = output.parse_list_info(fake_mac.run("prlctl", "list", "-a", "-i", "-j").stdout)
    assert (vm.name, vm.cpus, vm.memory, vm.description) == ("web", 4, 2048 * 1024**2, "hello")
    assert fake_mac.run("prlctl", "list", "-j").stdout.strip() == "[]"  # only running ones


def test_errors(fake_mac):
    missing = fake_mac.run("prlctl", "start", "nope")
    assert (missing.returncode, missing.stdout) == (255, "")
    assert output.is_not_found(missing.stderr)
    unknown = fake_mac.run("prlctl", "frobnicate")
    assert (unknown.returncode, unknown.stderr) == (1, "Unknown action: frobnicate\n")
    fake_mac.run("prlctl", "create", "web")
    stop = fake_mac.run("prlctl", "stop", "web")
    assert stop.returncode == 0 and stop.stderr  # stopped already: exit 0, message on stderr


def test_running_vm_refuses_hardware_changes_and_disks_never_shrink(fake_mac):
    fake_mac.run("prlctl", "create", "web")
    assert fake_mac.run("prlctl", "set", "web", "--device-set", "hdd0", "--size",
                        "1024").returncode == 255
    fake_mac.run("prlctl", "start", "web")
    refused = fake_mac.run("prlctl", "set", "web", "--memsize", "4096")
    assert refused.returncode == 255 and "running" in refused.stderr
    assert fake_mac.run("prlctl", "set", "web", "--description", "x").returncode == 0
    assert fake_mac.parallels_vms()["web"]["memsize"] != 4096
