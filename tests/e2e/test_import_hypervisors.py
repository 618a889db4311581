"""`decl import` of the VMs of ESXi, Xen, Parallels and UTM, each on its stateful fake: a VM
made behind decl's back is listed as a manifest entry with `adopt: true`, written with
--write, adopted by the next plan with no other change, and the plan after the apply is
empty; the VM's settings decl does not manage are left as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.datacenter.harness import FakeEsxi, esxi_over_sshd
from tests.fakes.desktop.harness import fake_desktop_fixture  # noqa: F401 - a fixture
from tests.fakes.mac.harness import fake_mac_fixture  # noqa: F401 - a fixture
from tests.sshd import free_port, sshd_factory  # noqa: F401 - fixtures

ROOT = str(Path(__file__).resolve().parents[2])

HEAD = """\
# The lab, written by hand.
version: 1
project: {project}   # the project
{hosts}
# the VMs so far
vms: {{}}
"""


def decl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": ROOT, "NO_COLOR": "1", **env})


def write_head(path: Path, project: str, hosts: dict | None = None) -> Path:
    lines = "".join(f"  {name}: {json.dumps(host)}\n" for name, host in (hosts or {}).items())
    path.write_text(HEAD.format(project=project, hosts=f"hosts:\n{lines}" if lines else ""))
    return path


def round_trip(env: dict[str, str], manifest: Path, provider: str, select: list[str],
               *extra: str, expect: set[str]) -> str:
    """import (printed, then --write), a plan of adopts with no fields, apply, empty plan;
    the manifest's text after --write."""
    shown = decl(env, "import", "-f", str(manifest), "--provider", provider, *extra, *select)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.count("adopt: true") == len(expect), shown.stdout
    before = manifest.read_text()
    written = decl(env, "import", "-f", str(manifest), "--provider", provider, "--write",
                   *extra, *select)
    assert written.returncode == 0, written.stdout + written.stderr
    text = manifest.read_text()
    for line in before.splitlines():
        if not line.endswith(": {}"):
            assert line in text.splitlines(), text
    done = decl(env, "plan", "--json", "-f", str(manifest))
    assert done.returncode in (0, 2), done.stdout + done.stderr
    changes = json.loads(done.stdout)["changes"]
    assert {c["address"] for c in changes} == expect, changes
    for change in changes:
        assert change["action"] == "adopt" and change["fields"] == [], change
    applied = decl(env, "apply", "-y", "-f", str(manifest))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = decl(env, "plan", "--detailed-exitcode", "-f", str(manifest))
    assert after.returncode == 0, after.stdout + after.stderr
    return text


# -- ESXi (fake vim-cmd, vmkfstools over the tests' sshd) --------------------------------------

@pytest.fixture
def esxi(tmp_path, sshd_factory):  # noqa: F811
    fake = FakeEsxi(tmp_path / "esxi")
    return fake, esxi_over_sshd(fake, sshd_factory)


def test_esxi_vm_made_by_hand_is_imported_and_adopted(esxi, tmp_path):
    fake, host = esxi
    env = {"DECL_FAKE_ESXI_STATE": "/nonexistent"}  # the tools are on the SSH side only
    fake.add_vm("Build Box (2)", disk_gib=2, keys={
        "numvcpus": "2", "memSize": "3072", "firmware": "efi", "guestOS": "debian12-64",
        "ethernet0.networkName": "Lab Net", "ethernet0.virtualDev": "e1000",
        "annotation": "made by hand", "scsi0:1.present": "TRUE",
        "scsi0:1.deviceType": "scsi-hardDisk", "scsi0:1.fileName": "extra.vmdk"})
    folder = os.path.join(fake.datastore(), "Build Box (2)")
    assert fake.run("vmkfstools", "-c", "512M", "-d", "thin",
                    os.path.join(folder, "extra.vmdk")).returncode == 0
    fake.add_vm("web", power="on")
    manifest = write_head(tmp_path / "decl.yaml", "impesxi", {"esx": host})

    fake.clear_calls()
    listed = decl(env, "import", "-f", str(manifest), "--host", "esx", "--provider", "esxi")
    assert listed.returncode == 0, listed.stderr
    sent = [c[1] for c in fake.calls("vim-cmd")]  # discovery's batch: one listing
    assert sent.count("vmsvc/getallvms") == 1 and sent.count("vmsvc/power.getstate") == 2
    assert "# decl import: 2 objects on host esx (provider esxi)" in listed.stdout
    assert "  web:\n    provider: esxi\n    host: esx\n    cpus: 1\n    memory: 1GiB\n" \
        "    disks:\n      - {size: 1GiB}\n    adopt: true\n" in listed.stdout, listed.stdout

    text = round_trip(env, manifest, "esxi", ["Build-Box-2"], "--host", "esx",
                      expect={"vm.Build-Box-2"})
    assert "  Build-Box-2:\n    provider: esxi\n    host: esx\n    state: stopped\n" \
        "    cpus: 2\n    memory: 3GiB\n    firmware: uefi\n" \
        "    disks:\n      - {size: 2GiB}\n      - {size: 512MiB}\n" in text, text
    assert "port_group: Lab Net" in text and "display_name: Build Box (2)" in text
    assert "guest_os: debian12-64" in text and "adopt: true" in text
    vm = fake.vms()["Build Box (2)"]
    keys = vm["keys"]
    assert keys["guestinfo.decl.project"] == "impesxi"
    assert keys["guestinfo.decl.address"] == "vm.Build-Box-2"
    assert (keys["numvcpus"], keys["memsize"], keys["firmware"], keys["guestos"]) == \
        ("2", "3072", "efi", "debian12-64")
    assert (keys["annotation"], keys["ethernet0.virtualdev"], keys["scsi0:1.filename"]) == \
        ("made by hand", "e1000", "extra.vmdk")
    assert vm["power"] == "off" and fake.vms()["web"]["power"] == "on"
    assert "guestinfo.decl.project" not in fake.vms()["web"]["keys"]


# -- Xen (the fake xl, on this machine) ------------------------------------------------------

def test_xen_config_written_by_hand_is_imported_and_adopted(tmp_path):
    from tests.fakes.datacenter.harness import FakeXen

    fake = FakeXen(tmp_path / "xen")
    fake.edit(lambda d: d["bridges"].append("br-lab"))
    configs, images = tmp_path / "etc-xen", tmp_path / "images"
    configs.mkdir()
    images.mkdir()
    for name, size in (("builder-a.img", 1024**3), ("builder-b.img", 512 * 1024**2)):
        with open(images / name, "wb") as handle:
            handle.truncate(size)
    builder = configs / "builder.cfg"
    builder.write_text(
        '# made by hand\nname = "builder"\ntype = "hvm"\nmemory = 1024\nmaxmem = 2048\n'
        'vcpus = 2\nmaxvcpus = 4\nfirmware = "uefi"\non_reboot = "restart"\nvnc = 1\n'
        f'disk = [ "format=raw, vdev=xvda, access=rw, target={images}/builder-a.img",\n'
        f'         "format=raw, vdev=xvdb, access=rw, target={images}/builder-b.img" ]\n'
        'vif = [ "mac=00:16:3e:12:34:56, bridge=br-lab" ]\n')
    (configs / "legacy.cfg").write_text(
        'name = "legacy"\nmemory = 512\ndisk = [ "phy:/dev/vg0/legacy,xvda,w" ]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "loose.cfg").write_text('name = "loose"\ntype = "hvm"\nmemory = 256\n')
    env = fake.env()
    for cfg in (builder, elsewhere / "loose.cfg"):
        done = subprocess.run(["xl", "create", str(cfg)], env={**os.environ, **env},
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    manifest = write_head(tmp_path / "decl.yaml", "impxen")

    listed = decl(env, "import", "-f", str(manifest), "--provider", "xen", "--path",
                  str(configs))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("# decl import: 1 object on host local (provider xen)")
    assert "# not importable: vm.legacy: " + str(configs / "legacy.cfg") + ": disk " \
        "'phy:/dev/vg0/legacy,xvda,w' names no absolute path: decl rewrites the disk list " \
        "of a VM it manages; write its entry by hand" in lines, lines
    assert "# not importable: vm.loose: domain loose runs without a config file in the " \
        f"folders read (/etc/xen, {configs}): xl cannot give back its disks or how it boots; " \
        "give its config file's folder with --path, or write one" in lines, lines

    text = round_trip(env, manifest, "xen", ["builder"], "--path", str(configs),
                      expect={"vm.builder"})
    assert "  builder:\n    provider: xen\n    cpus: 2\n    memory: 1GiB\n" \
        "    firmware: uefi\n    disks:\n      - {size: 1GiB}\n      - {size: 512MiB}\n" \
        "    network: {mode: bridge, bridge: br-lab}\n" in text, text
    assert f"config_dir: {configs}" in text and "maxvcpus: 4" in text
    assert "maxmem: 2GiB" in text
    after = builder.read_text()
    assert "impxen" in after and "vm.builder" in after  # the marks block
    for kept in ("# made by hand", 'on_reboot = "restart"', "vnc = 1",
                 "mac=00:16:3e:12:34:56"):
        assert kept in after, after
    domain = fake.domains()["builder"]
    assert (domain["vcpus"], domain["memory"], domain["maxmem"]) == (2, 1024, 2048)
    assert "impxen" not in (configs / "legacy.cfg").read_text()


# -- Parallels (the fake prlctl) -------------------------------------------------------------

def test_parallels_vms_made_by_hand_are_imported_and_adopted(fake_mac, tmp_path):
    iso = tmp_path / "installer.iso"
    iso.write_bytes(b"iso")
    for argv in (["create", "devbox", "--ostype", "linux"],
                 ["set", "devbox", "--cpus", "2", "--memsize", "3072", "--efi-boot", "on",
                  "--description", "my own VM", "--device-add", "hdd", "--size", "2048"],
                 ["set", "devbox", "--device-set", "cdrom0", "--image", str(iso),
                  "--connect"],
                 ["set", "devbox", "--device-set", "net0", "--type", "bridged", "--iface",
                  "en1"],
                 ["start", "devbox"],
                 ["create", "hosty", "--ostype", "linux", "--no-hdd"],
                 ["set", "hosty", "--device-set", "net0", "--type", "host-only"],
                 ["create", "Win Box", "--ostype", "win-11"]):
        done = fake_mac.run("prlctl", *argv)
        assert done.returncode == 0, done.stderr
    manifest = write_head(tmp_path / "decl.yaml", "impprl")
    env = fake_mac.env()

    fake_mac.clear_calls()
    listed = decl(env, "import", "-f", str(manifest), "--provider", "parallels")
    assert listed.returncode == 0, listed.stderr
    assert [c for c in fake_mac.calls("prlctl") if c[0] != "--version"] == \
        [["list", "-a", "-i", "-j"]]  # one listing for every VM
    assert "# not importable: vm.Win Box: Parallels VM 'Win Box': its name cannot be a " \
        "manifest name, and decl finds a Parallels VM by its name: rename it first (prlctl " \
        "set NAME --name NEW)" in listed.stdout.splitlines(), listed.stdout

    text = round_trip(env, manifest, "parallels", ["devbox", "hosty"],
                      expect={"vm.devbox", "vm.hosty"})
    assert "  devbox:\n    provider: parallels\n    cpus: 2\n    memory: 3GiB\n" \
        "    firmware: uefi\n    disks:\n      - {size: 64GiB}\n      - {size: 2GiB}\n" \
        f"    cdrom: {iso}\n    network: {{mode: bridge, bridge: en1}}\n" \
        "    adopt: true\n" in text, text
    assert "  hosty:\n    provider: parallels\n    state: stopped\n" in text
    assert "    lifecycle: {ignore_changes: [network]}\n" in text, text
    vms = fake_mac.parallels_vms()
    devbox, hosty = vms["devbox"], vms["hosty"]
    assert devbox["description"].startswith("my own VM\ndecl:project=impprl address=vm.devbox ")
    assert (devbox["state"], devbox["cpus"], devbox["memsize"], devbox["efi"]) == \
        ("running", 2, 3072, True)
    assert devbox["devices"]["net0"]["iface"] == "en1"
    assert hosty["devices"]["net0"]["type"] == "host" and hosty["state"] == "stopped"
    assert "decl:" not in vms["Win Box"].get("description", "")


# -- UTM (the fake utmctl and osascript) -----------------------------------------------------

def test_utm_vms_made_by_hand_are_imported_and_adopted(fake_mac, tmp_path):
    from decl.providers.utm import applescript as a

    nic = a.record([("index", a.integer(0)), ("mode", a.constant("bridged")),
                    ("host interface", a.string("en0"))])
    made = {
        "lab1": a.record([("name", a.string("lab1")), ("architecture", a.string("x86_64")),
                          ("notes", a.string("my own VM")), ("memory", a.integer(2048)),
                          ("cpu cores", a.integer(2)), ("uefi", a.boolean(False)),
                          ("network interfaces", a.alist([nic]))]),
        # as UTM makes it: cpu cores 0 (its default), a 64 GiB disk, a shared NIC
        "plain": a.record([("name", a.string("plain")), ("architecture", a.string("aarch64"))]),
    }
    for config in made.values():
        done = fake_mac.run("osascript", "-s", "s", "-e", a.make_vm("qemu", config))
        assert done.returncode == 0, done.stderr
    assert fake_mac.run("utmctl", "start", "lab1").returncode == 0
    before = {name: vm["config"] for name, vm in fake_mac.utm_vms().items()}
    manifest = write_head(tmp_path / "decl.yaml", "imputm")
    env = fake_mac.env()

    fake_mac.clear_calls()
    listed = decl(env, "import", "-f", str(manifest), "--provider", "utm")
    assert listed.returncode == 0, listed.stderr
    calls = [c["tool"] + " " + ("discover" if "every virtual machine" in c["argv"][-1] else
                                " ".join(c["argv"][-1:]))
             for c in fake_mac.load()["calls"] if c["tool"] in ("utmctl", "osascript")]
    assert calls.count("utmctl list") == 1 and calls.count("osascript discover") == 1
    assert len([c for c in calls if "version" not in c]) == 2, calls
    assert "# vm.plain: its entry cannot describe cpus, disk_count, disk_size, disk_source " \
        "as the host has them: ignore_changes keeps decl from acting on them" \
        in listed.stdout.splitlines(), listed.stdout
    text = round_trip(env, manifest, "utm", [], expect={"vm.lab1", "vm.plain"})
    assert "  lab1:\n    provider: utm\n    cpus: 2\n    memory: 2GiB\n    arch: x86_64\n" \
        "    network: {mode: bridge, bridge: en0}\n" \
        "    lifecycle:\n      ignore_changes: [disk_count, disk_size, disk_source]\n" \
        "    adopt: true\n" in text, text
    assert "  plain:\n    provider: utm\n    state: stopped\n    memory: 512MiB\n" \
        "    arch: aarch64\n    firmware: uefi\n    lifecycle:\n      ignore_changes: " \
        "[cpus, disk_count, disk_size, disk_source]\n    adopt: true\n" in text, text
    vms = fake_mac.utm_vms()
    assert vms["lab1"]["status"] == "started" and vms["plain"]["status"] == "stopped"
    for name, vm in vms.items():
        config = vm["config"]
        notes = config.pop("notes")
        assert notes.startswith(("my own VM\n" if name == "lab1" else "")
                                + f"decl:project=imputm address=vm.{name} "), notes
        was = dict(before[name])
        was.pop("notes")
        assert config == was  # disks, NICs, cpu cores 0, uefi: as they were


# -- VirtualBox (the fake VBoxManage) --------------------------------------------------------

def test_virtualbox_vm_made_by_hand_is_imported_and_adopted(fake_desktop, tmp_path):
    folder = tmp_path / "handmade"
    folder.mkdir()
    iso = tmp_path / "installer.iso"
    iso.write_bytes(b"iso")
    disk = str(folder / "box.vdi")
    for args in (["createvm", "--name", "box", "--basefolder", str(folder), "--register"],
                 ["modifyvm", "box", "--memory", "1536", "--cpus", "2", "--firmware", "efi",
                  "--nic1", "bridged", "--bridgeadapter1", "eth9", "--nictype1", "virtio"],
                 ["storagectl", "box", "--name", "SATA Controller", "--add", "sata"],
                 ["createmedium", "disk", "--filename", disk, "--size", "300"],
                 ["storageattach", "box", "--storagectl", "SATA Controller", "--port", "0",
                  "--device", "0", "--type", "hdd", "--medium", disk],
                 ["storageattach", "box", "--storagectl", "SATA Controller", "--port", "1",
                  "--device", "0", "--type", "dvddrive", "--medium", str(iso)],
                 ["setextradata", "box", "GUI/LastCloseAction", "PowerOff"],
                 ["startvm", "box", "--type", "headless"],
                 ["createvm", "--name", "inner", "--basefolder", str(folder), "--register"],
                 ["modifyvm", "inner", "--nic1", "intnet"],
                 ["createvm", "--name", "My VM", "--basefolder", str(folder), "--register"]):
        done = fake_desktop.run("VBoxManage", *args)
        assert done.returncode == 0, done.stderr
    manifest = write_head(tmp_path / "decl.yaml", "impvbox")
    env = fake_desktop.env()

    listed = decl(env, "import", "-f", str(manifest), "--provider", "virtualbox")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "# not importable: vm.inner: VirtualBox VM 'inner': NIC 1 is intnet, and decl sets " \
        "NIC 1 to nat, bridged or none whenever it changes the VM's CPUs, memory or " \
        "firmware: write its entry by hand" in lines, lines
    assert any(line.startswith("# not importable: vm.My VM: ") for line in lines), lines
    assert "# vm.box: its entry cannot describe disk_source as the host has them: " \
        "ignore_changes keeps decl from acting on them" in lines, lines

    text = round_trip(env, manifest, "virtualbox", ["box"], expect={"vm.box"})
    assert "  box:\n    provider: virtualbox\n    cpus: 2\n    memory: 1536MiB\n" \
        "    arch: x86_64\n    firmware: uefi\n    disks:\n      - {size: 300MiB}\n" \
        f"    cdrom: {iso}\n    network: {{mode: bridge, bridge: eth9}}\n" \
        "    lifecycle: {ignore_changes: [disk_source]}\n    adopt: true\n" in text, text
    box = {vm["name"]: vm for vm in fake_desktop.load()["virtualbox"]["vms"]}["box"]
    assert box["extradata"]["decl/project"] == "impvbox"
    assert box["extradata"]["GUI/LastCloseAction"] == "PowerOff"
    assert (box["state"], box["cpus"], box["memory"]) == ("running", 2, 1536)
    assert box["firmware"] == "EFI" and box["nics"]["1"]["bridge"] == "eth9"
    assert len(box["attachments"]) == 2  # the disk and the installer, as they were


# -- VMware (the fake vmrun and vmware-vdiskmanager) -----------------------------------------

def test_vmware_vms_made_by_hand_are_imported_and_adopted(fake_desktop, tmp_path):
    from tests.fakes.desktop.harness import FAKES_BIN

    vms = tmp_path / "My VMs"
    iso = tmp_path / "installer.iso"
    iso.write_bytes(b"iso")

    def handmade(name: str, extra: str) -> Path:
        folder = vms / name
        folder.mkdir(parents=True)
        done = subprocess.run([os.path.join(FAKES_BIN, "vmware-vdiskmanager"), "-c", "-s",
                               "200MB", "-a", "lsilogic", "-t", "0",
                               str(folder / f"{name}.vmdk")],
                              capture_output=True, text=True, env=fake_desktop.env())
        assert done.returncode == 0, done.stdout
        vmx = folder / f"{name}.vmx"
        vmx.write_text(
            f'.encoding = "UTF-8"\ndisplayName = "{name}"\nmemsize = "2048"\n'
            'numvcpus = "2"\nguestOS = "debian12-64"\nfirmware = "efi"\n# tuned by hand\n'
            'scsi0.present = "TRUE"\nscsi0:0.present = "TRUE"\n'
            f'scsi0:0.fileName = "{name}.vmdk"\nmks.enable3d = "TRUE"\n' + extra)
        return vmx

    desk = handmade("desk", 'ethernet0.present = "TRUE"\nethernet0.connectionType = "custom"\n'
                    'ethernet0.vnet = "vmnet3"\nethernet0.virtualDev = "vmxnet3"\n'
                    f'sata0.present = "TRUE"\nsata0:0.present = "TRUE"\n'
                    f'sata0:0.deviceType = "cdrom-image"\nsata0:0.fileName = "{iso}"\n')
    lab = handmade("lab", 'ethernet0.present = "TRUE"\nethernet0.connectionType = "hostonly"\n')
    assert fake_desktop.run("vmrun", "-T", "ws", "start", str(lab), "nogui").returncode == 0
    manifest = write_head(tmp_path / "decl.yaml", "impvmw")
    env = {**fake_desktop.env(), "HOME": str(tmp_path / "home")}

    listed = decl(env, "import", "-f", str(manifest), "--provider", "vmware")  # running only
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "# decl import: 0 objects on host local (provider vmware) that the manifest does not "
        "name yet",
        f"# not importable: vm.lab: VMware VM {lab}: ethernet0 is hostonly, and decl rewrites "
        "ethernet0 as nat, bridged, a custom vmnet or none whenever it edits the .vmx: write "
        "its entry by hand"]

    before = desk.read_text()
    text = round_trip(env, manifest, "vmware", ["desk"], "--path", str(vms / "desk"),
                      expect={"vm.desk"})
    assert "  desk:\n    provider: vmware\n    state: stopped\n    cpus: 2\n" \
        "    memory: 2GiB\n    firmware: uefi\n    disks:\n      - {size: 200MiB}\n" \
        f"    cdrom: {iso}\n    network: {{mode: bridge, bridge: vmnet3}}\n" in text, text
    assert f"vm_dir: {vms}" in text and "guest_os: debian12-64" in text
    after = desk.read_text()
    assert 'decl.project = "impvmw"' in after
    for line in before.splitlines():  # every setting as it was (the marks are added)
        assert line in after.splitlines(), (line, after)
