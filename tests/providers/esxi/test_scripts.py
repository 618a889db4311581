"""The discovery scripts run by ESXi's shell, BusyBox ash: run here under `busybox sh`
against the fake host, and read back with the same parsers decl uses."""

from __future__ import annotations

import os
import shutil
import subprocess

from decl.providers.esxi import vimcmd
from decl.providers.esxi.host import (
    DETAILS_SCRIPT,
    DISK_NAMES_SED,
    LISTING_SCRIPT,
    split_sections,
    vmx_path,
)
from tests.backends import missing_backend
from tests.fakes.datacenter.harness import FakeEsxi

NONCE = "@decl-test"


APPLETS = ("cat", "head", "sed", "printf", "rm", "test", "[")


def busybox_sh(fake: FakeEsxi, script: str, *args: str) -> str:
    """Run a script with BusyBox's ash and BusyBox's applets first on PATH (as on ESXi),
    then the fake vim-cmd."""
    busybox = shutil.which("busybox")
    if busybox is None:
        missing_backend("busybox", "busybox is not installed (Debian: busybox-static)")
        raise AssertionError("unreachable")
    applets = fake.directory / "busybox-bin"
    applets.mkdir(exist_ok=True)
    for name in APPLETS:
        if not (applets / name).exists():
            os.symlink(busybox, applets / name)
    env = fake.env()
    env["PATH"] = f"{applets}{os.pathsep}{env['PATH']}"
    done = subprocess.run([busybox, "sh", "-c", script, "sh", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_scripts_under_busybox_ash(tmp_path):
    fake = FakeEsxi(tmp_path / "esxi")
    fake.add_vm("Web Server 1", disk_gib=3)
    fake.add_vm("db", disk_gib=1, power="on")
    listing = split_sections(busybox_sh(fake, LISTING_SCRIPT, NONCE), NONCE)
    datastores = vimcmd.parse_datastores(listing[0][1])
    assert list(datastores) == ["datastore1"]
    rows, invalid = vimcmd.parse_getallvms(listing[1][1])
    assert [r.name for r in rows] == ["Web Server 1", "db"] and invalid == []
    args = [NONCE, DISK_NAMES_SED]
    for row in rows:
        args += [row.vmid, vmx_path(datastores, row)]
    sections = split_sections(busybox_sh(fake, DETAILS_SCRIPT, *args), NONCE)
    by_kind = {(words[0], words[1], words[2] if len(words) > 2 else ""): body
               for words, body in sections[1:]}
    assert vimcmd.parse_power(by_kind[("state", rows[0].vmid, "")]) == "stopped"
    assert vimcmd.parse_power(by_kind[("state", rows[1].vmid, "")]) == "running"
    assert 'displayName = "Web Server 1"' in by_kind[("vmx", rows[0].vmid, "")]
    descriptor = by_kind[("vmdk", rows[0].vmid, "Web Server 1.vmdk")]
    assert vimcmd.descriptor_size(descriptor) == 3 * 1024**3
