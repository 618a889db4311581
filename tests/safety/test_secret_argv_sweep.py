"""Secret sweep, command lines: every argv decl starts on this machine (subprocess.Popen, the
fake CLIs included) and every command line it sends over SSH (paramiko exec_command) is
searched for every spelling of every secret (tests/safety/test_secret_sweep.spellings, the
base64 cores included): zero hits. Secrets go to tools through the environment or a 0600 file
(decl.connections.secret_env), never on a command line another user can read."""

from __future__ import annotations

import json
import os
import subprocess

import paramiko
import pytest

from tests.fakes.desktop.harness import fake_desktop_fixture  # noqa: F401 - a fixture
from tests.fakes.mac.harness import fake_mac_fixture  # noqa: F401 - a fixture
from tests.safety import test_secret_sweep as sweep
from tests.safety.test_secret_sweep import SECRETS, _hits, _run
from tests.sshd import sshd_factory  # noqa: F401 - a fixture
from tests.wheelhouse import standard_wheelhouse

# The fake CLIs are Python scripts with a shebang, and sh wraps remote commands: POSIX only.
pytestmark = pytest.mark.posix

sweep_env = sweep.sweep_env  # the secrets in the environment, a state dir of the test's


@pytest.fixture
def command_lines(monkeypatch):
    """Every argv started locally and every command line sent over SSH, as texts."""
    seen: list[str] = []
    real_init = subprocess.Popen.__init__

    def init(self, args, *rest, **kwargs):
        items = [args] if isinstance(args, (str, bytes)) else list(args)
        seen.extend(os.fsdecode(item) for item in items)
        real_init(self, args, *rest, **kwargs)

    real_exec = paramiko.Channel.exec_command

    def exec_command(self, command):
        seen.append(command if isinstance(command, str) else command.decode())
        return real_exec(self, command)

    monkeypatch.setattr(subprocess.Popen, "__init__", init)
    monkeypatch.setattr(paramiko.Channel, "exec_command", exec_command)
    return seen


def _secret(name: str, *, urlencode: bool = False) -> str:
    return f"{{{{ secret('{name}'){' | urlencode' if urlencode else ''} }}}}"


@pytest.mark.parametrize("where", ["local",
                                   pytest.param("ssh", marks=pytest.mark.backend("sshd"))])
def test_venv_secrets_never_reach_a_command_line(sweep_env, command_lines, where, request):
    wheels = standard_wheelhouse(sweep_env / "wheels")
    venv = {
        "path": str(sweep_env / "tools"), "pip": False, "backend": "venv",
        "find_links": [str(wheels)], "no_index": True,
        "index_url": f"https://user:{_secret('SWEEP_URL', urlencode=True)}@127.0.0.1:9/s",
        "extra_index_urls": [f"https://u:{_secret('SWEEP_UNICODE', urlencode=True)}"
                             "@127.0.0.1:9/x"],
        "packages": ["delta", "zeta @ https://u:" + _secret("SWEEP_QUOTES", urlencode=True)
                     + "@127.0.0.1:9/zeta-1.0-py3-none-any.whl"],
    }
    document = {"version": 1, "project": "sweepargv", "venvs": {"tools": venv}}
    if where == "ssh":
        server = request.getfixturevalue("sshd_factory")()
        document["hosts"] = {"box": server.manifest_host()}
        venv["host"] = "box"
    (sweep_env / "m.yaml").write_text(json.dumps(document))
    code, output = _run(["apply", "-y", "-f", "m.yaml"])
    # zeta's URL cannot be reached (port 9): the install fails, after pip saw every secret
    assert code == 1 and "installing" in output, output
    assert (sweep_env / "tools" / "pyvenv.cfg").exists()
    installs = [line for line in command_lines if " install" in line or line == "install"]
    assert installs, command_lines  # the recorder saw the installer start
    assert _hits("\n".join(command_lines)) == []
    assert _hits(output) == []
    leftovers = [name for name in os.listdir("/tmp") if name.startswith(".decl-")]
    assert not [n for n in leftovers if (sweep_env.name in n)], leftovers


def test_vm_cloud_init_secrets_never_reach_a_command_line(sweep_env, command_lines,
                                                          fake_desktop):
    """VMware (vmrun, the .vmx's guestinfo) and VirtualBox (VBoxManage, a seed ISO made
    with genisoimage) with a secret in every cloud_init field and in the VM options."""
    names = list(SECRETS)
    cloud = {"hostname": f"web-{_secret(names[0], urlencode=True)}",
             "user": f"lab{_secret(names[4], urlencode=True)}",
             "ssh_authorized_keys": [f"ssh-ed25519 AAAA {_secret(name)}" for name in names]}
    vms = {
        "web": {"provider": "vmware", "memory": "1GiB", "disks": [{"size": "1GiB"}],
                "cloud_init": cloud,
                "options": {"vm_dir": str(sweep_env / "vmware"), "shutdown_timeout": 3}},
        "box": {"provider": "virtualbox", "memory": "1GiB", "disks": [{"size": "1GiB"}],
                "cloud_init": cloud, "options": {"vm_dir": str(sweep_env / "vbox")}},
    }
    (sweep_env / "m.yaml").write_text(json.dumps({"version": 1, "project": "sweepvm",
                                                  "vms": vms}))
    code, output = _run(["apply", "-y", "-f", "m.yaml"])
    assert code == 0, output
    assert fake_desktop.calls("vmrun") and fake_desktop.calls("VBoxManage")
    assert any("genisoimage" in line or "mkisofs" in line or "xorriso" in line
               for line in command_lines), command_lines
    leaked = [line for line in command_lines if _hits(line)]
    assert leaked == []
    assert _hits(json.dumps(fake_desktop.load()["calls"])) == []
    assert _hits(output) == []
    code, output = _run(["destroy", "-y", "-f", "m.yaml"])
    assert code == 0 and _hits(output) == [], output


def test_mac_vm_cloud_init_secrets_never_reach_a_command_line(sweep_env, command_lines,
                                                              fake_mac):
    """Parallels (prlctl) and UTM (utmctl, osascript: AppleScript text on the command line)
    with a secret in every cloud_init field."""
    names = list(SECRETS)
    cloud = {"hostname": f"web-{_secret(names[1], urlencode=True)}",
             "user": f"lab{_secret(names[4], urlencode=True)}",
             "ssh_authorized_keys": [f"ssh-ed25519 AAAA {_secret(name)}" for name in names]}
    vms = {"pd": {"provider": "parallels", "memory": "1GiB", "disks": [{"size": "1GiB"}],
                  "cloud_init": cloud},
           "ut": {"provider": "utm", "memory": "1GiB", "disks": [{"size": "1GiB"}],
                  "cloud_init": cloud}}
    (sweep_env / "m.yaml").write_text(json.dumps({"version": 1, "project": "sweepmac",
                                                  "vms": vms}))
    code, output = _run(["apply", "-y", "-f", "m.yaml"])
    assert code == 0, output
    assert fake_mac.calls("prlctl") and (fake_mac.calls("osascript") or fake_mac.calls("utmctl"))
    leaked = [line for line in command_lines if _hits(line)]
    assert leaked == []
    assert _hits(json.dumps(fake_mac.load()["calls"])) == []
    assert _hits(output) == []
    code, output = _run(["destroy", "-y", "-f", "m.yaml"])
    assert code == 0 and _hits(output) == [], output


FAKE_EXAMPLES = ("hyperv.yaml", "wsl.yaml", "vms-virtualbox.yaml", "vms-vmware.yaml",
                 "parallels.yaml", "utm.yaml")


def _fresh_fakes(directory, monkeypatch):
    """New fake Windows, desktop and Mac hosts for one run, found through the environment."""
    from tests.fakes.desktop import state as desktop_state
    from tests.fakes.desktop.harness import FAKES_BIN, FakeDesktop
    from tests.fakes.mac import state as mac_state
    from tests.fakes.mac.harness import FakeMac
    from tests.fakes.windows import state as windows_state
    from tests.fakes.windows.harness import FakeWindows

    directory.mkdir(parents=True)
    desktop = FakeDesktop(directory / "desktop")
    mac = FakeMac(directory / "mac.json")
    monkeypatch.setenv(windows_state.ENV, str(directory / "windows.json"))
    monkeypatch.setenv(desktop_state.ENV, str(desktop.path))
    monkeypatch.setenv(mac_state.ENV, str(mac.path))
    monkeypatch.setenv("DECL_STATE_DIR", str(directory / "state"))
    monkeypatch.setenv("HOME", str(directory))  # ~/vmware, ~/VMs... of the examples land here
    for iso in ("isos/debian-12-netinst.iso", "Downloads/debian-12-arm64-netinst.iso"):
        (directory / iso).parent.mkdir(parents=True, exist_ok=True)
        (directory / iso).write_bytes(b"an ISO the examples attach")
    FakeWindows(directory / "windows.json").add_file("C:\\images\\alpine-rootfs.tar")
    if FAKES_BIN not in os.environ["PATH"].split(os.pathsep):
        monkeypatch.setenv("PATH", FAKES_BIN + os.pathsep + os.environ["PATH"])
    return [directory / "windows.json", desktop.path / "state.json", mac.path]


def _sweep_fields(sweep_env, command_lines, example, data, sections, prepare):
    """Append a secret to each string of `data` in `sections` in turn (the `host` fields
    left alone), prepare fresh fakes (`prepare(run)` returns a function giving the calls the
    fakes logged) and apply: no command line, fake call or output holds a secret, and a run
    that fails is refused with a clear message. Returns (runs, applied, refused)."""
    names = list(SECRETS)
    runs = applied = refused = 0
    leaves = [p for p in sweep._leaves(data) if p[0] in sections and p[-1] != "host"]
    for number, leaf in enumerate(leaves):
        variant = json.loads(json.dumps(data))
        original = variant
        for part in leaf:
            original = original[part]
        sweep._set(variant, leaf, f"{original}{_secret(names[number % len(names)])}")
        fake_calls = prepare(f"{example}-{number}")
        (sweep_env / "m.yaml").write_text(json.dumps(variant))
        del command_lines[:]
        code, output = _run(["apply", "-y", "-f", "m.yaml"])
        runs += 1
        assert code in (0, 1) and "Traceback" not in output, (example, leaf, output)
        leaked = [line for line in command_lines if _hits(line)]
        assert leaked == [], (example, leaf)
        # the fakes' own logs of the calls they got (argv, PowerShell script text)
        assert _hits(json.dumps(fake_calls())) == [], (example, leaf)
        assert _hits(output) == [], (example, leaf, output)
        guarded = "would go on the command line" in output
        refused += guarded
        applied += code == 0
        # a run that fails is refused: by validation (a secret in a size, an enum, a name),
        # by the plan (no such switch or file), or by the command-line guard
        assert code == 0 or guarded or "error: m.yaml:1:" in output or \
            "error: the plan has errors" in output, (example, leaf, output)
    return runs, applied, refused


def test_every_templated_field_of_the_fake_backed_examples(sweep_env, command_lines,
                                                           monkeypatch):
    """Each string of each example whose tools have a fake (Hyper-V, WSL, VirtualBox, VMware,
    Parallels, UTM), on this machine, gets a secret appended; apply runs against fresh fakes.
    No command line holds a secret: a value that would have to go on one (a VM's name, a
    path) stops the change with an error saying so."""
    from decl.manifest.source import parse_file

    def prepare(run):
        states = _fresh_fakes(sweep_env / f"run-{run}", monkeypatch)
        return lambda: [json.loads(p.read_text()).get("calls") for p in states if p.exists()]

    totals = [0, 0, 0]
    for example in FAKE_EXAMPLES:
        data = parse_file(str(sweep.ROOT / "examples" / example)).data
        data.pop("hosts", None)
        for section in ("vms", "wsl"):
            for entry in (data.get(section) or {}).values():
                entry["host"] = "local"
        counts = _sweep_fields(sweep_env, command_lines, example, data, ("vms", "wsl"),
                               prepare)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    runs, applied, refused = totals
    assert runs >= 70 and applied >= 5 and refused >= 5, totals


@pytest.mark.backend("sshd")
def test_every_templated_field_of_the_windows_examples_over_ssh(sweep_env, command_lines,
                                                                monkeypatch, sshd_factory):  # noqa: F811
    """Hyper-V and WSL on a Windows host over SSH (`shell: powershell`): the tests' sshd runs
    the fake PowerShell and wsl.exe through the shim; the script text and wsl.exe's argv
    never hold a secret."""
    import shlex

    from decl.manifest.source import parse_file
    from tests.fakes.windows.harness import FAKES_BIN, FakeWindows

    state = sweep_env / "remote-windows.json"
    command = (f"env DECL_FAKE_WINDOWS_STATE={shlex.quote(str(state))} "
               f"PATH={shlex.quote(FAKES_BIN)}:/usr/bin:/bin "
               f"{shlex.quote(os.path.join(FAKES_BIN, 'pwsh-sshd-shim'))}")
    server = sshd_factory(force_command=command)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p != FAKES_BIN]
    monkeypatch.setenv("PATH", os.pathsep.join(path))  # no PowerShell on this side

    def prepare(run):
        for leftover in (state, state.with_name(state.name + ".d")):
            if leftover.is_dir():
                import shutil

                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
        FakeWindows(state).add_file("C:\\images\\alpine-rootfs.tar")
        monkeypatch.setenv("DECL_STATE_DIR", str(sweep_env / f"state-{run}"))
        return lambda: FakeWindows(state).load()["calls"]

    totals = [0, 0, 0]
    for example in ("hyperv.yaml", "wsl.yaml"):
        data = parse_file(str(sweep.ROOT / "examples" / example)).data
        data["hosts"] = {"winbox": server.manifest_host(shell="powershell")}
        counts = _sweep_fields(sweep_env, command_lines, example, data, ("vms", "wsl"),
                               prepare)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    runs, applied, refused = totals
    assert runs >= 10 and applied >= 1 and refused >= 1, totals


@pytest.mark.backend("sshd")
def test_every_templated_field_of_the_esxi_and_xen_examples_over_ssh(
        sweep_env, command_lines, monkeypatch, sshd_factory):  # noqa: F811
    """The same over SSH: every string of the ESXi and Xen examples gets a secret; apply runs
    through the tests' sshd against fresh fake hosts (vim-cmd, vmkfstools, xl); no SSH
    command line and no call the fakes got holds a secret."""
    import shutil

    from decl.manifest.source import parse_file
    from tests.fakes.datacenter.esxi import ENV as ESXI_ENV
    from tests.fakes.datacenter.harness import FAKES_BIN, FakeEsxi, FakeXen
    from tests.fakes.datacenter.xen import ENV as XEN_ENV

    esxi_dir, xen_dir = sweep_env / "esxi", sweep_env / "xen"
    server = sshd_factory(env={"PATH": f"{FAKES_BIN}:/usr/bin:/bin",
                               ESXI_ENV: str(esxi_dir), XEN_ENV: str(xen_dir)})

    def prepare(run):
        for directory in (esxi_dir, xen_dir, sweep_env / "etc-xen", sweep_env / "xen-images"):
            shutil.rmtree(directory, ignore_errors=True)
        esxi, xen = FakeEsxi(esxi_dir), FakeXen(xen_dir)
        esxi.datastore()
        xen.edit(lambda state: state["bridges"].append("xenbr1"))  # the example's bridge
        monkeypatch.setenv("DECL_STATE_DIR", str(sweep_env / f"state-{run}"))
        return lambda: [esxi.load().get("calls"), xen.load().get("calls")]

    totals = [0, 0, 0]
    for example in ("esxi.yaml", "xen.yaml"):
        data = parse_file(str(sweep.ROOT / "examples" / example)).data
        data["hosts"] = {"box": server.manifest_host()}
        data.pop("defaults", None)
        for entry in data["vms"].values():
            entry["host"] = "box"
            entry["provider"] = example.split(".")[0]
            if example == "xen.yaml":  # this machine's /etc/xen is not the fake's
                entry.setdefault("options", {}).update(
                    {"config_dir": str(sweep_env / "etc-xen"),
                     "disk_dir": str(sweep_env / "xen-images")})
        prepare("baseline")  # the example as it is: the harness works, commands go over SSH
        (sweep_env / "m.yaml").write_text(json.dumps(data))
        del command_lines[:]
        code, output = _run(["apply", "-y", "-f", "m.yaml"])
        assert code == 0 and command_lines, (example, output)
        counts = _sweep_fields(sweep_env, command_lines, example, data, ("vms",), prepare)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    # Most of these fields refuse a secret's characters at validation (names, port groups,
    # datastores, sizes, enums): a clear error, nothing run. 3 are stopped by the guard: a
    # secret in Xen's config_dir or disk_dir would go on the command line that makes files.
    runs, applied, refused = totals
    assert runs >= 25 and refused >= 1, totals


@pytest.mark.backend("qemu")
def test_qemu_cloud_init_and_options_secrets_never_reach_a_command_line(sweep_env,
                                                                        command_lines):
    """A real qemu-system (TCG) VM with a secret in every cloud_init field: qemu-img,
    genisoimage and qemu-system-x86_64 get files, never the values."""
    import shutil
    import signal
    import tempfile

    from tests.backends import missing_backend

    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            missing_backend("qemu", f"{tool} is not installed")
    root = tempfile.mkdtemp(prefix="dq-", dir="/tmp")  # QMP socket paths stay short
    names = list(SECRETS)
    vm = {"provider": "qemu", "memory": "64MiB", "disks": [{"size": "16MiB"}],
          "cloud_init": {"hostname": f"q-{_secret(names[2], urlencode=True)}",
                         "user": f"lab{_secret(names[3], urlencode=True)}",
                         "ssh_authorized_keys": [f"ssh-ed25519 AAAA {_secret(n)}"
                                                 for n in names]},
          "options": {"accel": "tcg", "vm_dir": root, "shutdown_timeout": 1}}
    (sweep_env / "m.yaml").write_text(json.dumps({"version": 1, "project": "sweepqemu",
                                                  "vms": {"sq": vm}}))
    try:
        code, output = _run(["apply", "-y", "-f", "m.yaml"])
        assert code == 0, output
        assert any("qemu-system" in line for line in command_lines), command_lines
        leaked = [line for line in command_lines if _hits(line)]
        assert leaked == []
        assert _hits(output) == []
        code, output = _run(["destroy", "-y", "-f", "m.yaml"])
        assert code == 0 and _hits(output) == [], output
    finally:
        for directory, _, files in os.walk(root):
            if "qemu.pid" in files:
                try:
                    with open(os.path.join(directory, "qemu.pid")) as handle:
                        os.kill(int(handle.read().strip()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        shutil.rmtree(root, ignore_errors=True)
