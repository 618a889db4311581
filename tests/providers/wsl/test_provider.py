"""The WSL provider on this machine's fake wsl.exe: discovery and check()."""

from __future__ import annotations

import subprocess

from decl.connections.local import LocalConnection
from decl.core.resource import Desired
from decl.manifest.model import Wsl
from decl.providers.base import DesiredContext
from decl.providers.wsl import WslProvider, inside
from tests.fakes.windows.harness import fake_windows_fixture  # noqa: F401 - a fixture

TARBALL = "C:\\img\\r.tar"


def wsl(fake, *args, stdin=None):
    return subprocess.run(["wsl.exe", *args], env=fake.env(), input=stdin, capture_output=True)


def desired(name, **fields):
    provider = WslProvider()
    model = Wsl(**fields)
    spec = provider.spec("wsl", name, model, DesiredContext(project="lab", base_dir="."))
    return Desired(address=f"wsl.{name}", kind="wsl", name=name, provider="wsl", host="local",
                   state=model.state, spec=spec, model=model)


def mark(fake, name, project, address):
    from decl.core.resource import Marks

    doc = inside.marks_document(Marks(project, address, "h"), {"source": {"tarball": TARBALL},
                                                               "location": "C:\\x"})
    done = wsl(fake, "-d", name, "-u", "root", "--exec", "sh", "-c", inside.WRITE_SCRIPT, "sh",
               inside.MARKS_PATH, stdin=doc)
    assert done.returncode == 0, done
    wsl(fake, "--terminate", name)


def test_check(fake_windows):
    available = WslProvider().check(LocalConnection())
    assert available.available and available.version == "2.3.26.0"


def test_discover_nothing_installed(fake_windows):
    assert WslProvider().discover(LocalConnection(), "lab", []).observed == []


def test_discover_marked_unmarked_orphans_and_foreign(fake_windows):
    fake_windows.add_file(TARBALL)
    for name in ("mine", "Plain", "orphan", "theirs"):
        assert wsl(fake_windows, "--import", name, "C:\\d\\" + name, TARBALL).returncode == 0
    mark(fake_windows, "mine", "lab", "wsl.mine")
    mark(fake_windows, "orphan", "lab", "wsl.gone")
    mark(fake_windows, "theirs", "other", "wsl.theirs")
    wanted = [desired("mine", source={"tarball": TARBALL}, location="C:\\x"),
              desired("plain", source={"distribution": "Debian"}, version=1)]
    found = WslProvider().discover(LocalConnection(), "lab", wanted)
    by_address = {o.address: o for o in found.observed}
    assert set(by_address) == {"wsl.mine", "wsl.plain", "wsl.gone"}
    assert by_address["wsl.mine"].owned_by("lab")
    assert by_address["wsl.mine"].spec["location"] == "C:\\x"
    assert by_address["wsl.plain"].marks is None  # matched case-insensitively, unmarked
    assert by_address["wsl.plain"].spec["version"] == 2
    assert by_address["wsl.gone"].handle["distro"] == "orphan"
    # reading the marks started the distros; discovery stopped them again
    states = {n: d["state"] for n, d in fake_windows.load()["wsl"]["distros"].items()}
    assert set(states.values()) == {"Stopped"}


def test_busy_distro_is_a_problem(fake_windows):
    fake_windows.add_file(TARBALL)
    wsl(fake_windows, "--import", "dev", "C:\\d", TARBALL)
    fake_windows.edit(lambda d: d["wsl"]["distros"]["dev"].update(state="Converting"))
    found = WslProvider().discover(LocalConnection(), "lab",
                                   [desired("dev", source={"distribution": "Debian"})])
    assert "is converting" in found.problems["wsl.dev"]
