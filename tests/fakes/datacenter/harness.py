"""Test helpers around the datacenter fakes: a fake ESXi host behind the tests' own sshd,
a fake Xen host (local or behind sshd), their state, faults and call logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.datacenter import esxi as fesxi
from tests.fakes.datacenter import state as fstate
from tests.fakes.datacenter import xen as fxen

FAKES_BIN = str(Path(__file__).resolve().parent.parent / "bin")
ROOT = str(Path(__file__).resolve().parents[3])


class FakeHost:
    """One fake host: its state directory and the environment that runs its tools."""

    env_name = ""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        with fstate.locked(str(directory)):
            fstate.save(str(directory), self.empty())

    @staticmethod
    def empty() -> dict[str, Any]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        """Environment for a process that should find this host's tools first on PATH."""
        return {self.env_name: str(self.directory),
                "PATH": FAKES_BIN + os.pathsep + os.environ.get("PATH", "")}

    def load(self) -> dict[str, Any]:
        """The whole state."""
        return fstate.load(str(self.directory), self.empty)

    def edit(self, change: Any) -> None:
        """Apply `change(state)` under the host's lock."""
        with fstate.locked(str(self.directory)):
            data = fstate.load(str(self.directory), self.empty)
            change(data)
            fstate.save(str(self.directory), data)

    def fail(self, command: str, after: int = 0, times: int = 1, **extra: Any) -> None:
        """Make the (after+1)-th call whose command line contains `command` fail."""
        self.edit(lambda d: d["faults"].append({"command": command, "after": after,
                                                "times": times, **extra}))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        """Every call so far (argv with the tool's name first)."""
        return [c for c in self.load()["calls"] if tool is None or c[0] == tool]

    def clear_calls(self) -> None:
        """Forget the call log."""
        self.edit(lambda d: d.__setitem__("calls", []))

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run one of the fake tools directly."""
        return subprocess.run([os.path.join(FAKES_BIN, argv[0]), *argv[1:]],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, **self.env()})

    def dump(self) -> str:
        """The state as text, for assertion messages."""
        return json.dumps(self.load(), indent=1)


class FakeEsxi(FakeHost):
    """A fake ESXi host: vim-cmd, vmkfstools, vmware."""

    env_name = fesxi.ENV

    @staticmethod
    def empty() -> dict[str, Any]:
        return fesxi.empty_state()

    def datastore(self, name: str = "datastore1") -> str:
        """The folder of a datastore (made when missing)."""
        with fstate.locked(str(self.directory)):
            data = self.load()
            path = fesxi.ensure_datastore(str(self.directory), data, name)
            fstate.save(str(self.directory), data)
        return path

    def vms(self) -> dict[str, dict[str, Any]]:
        """Registered VMs by display name, each with its vmid and .vmx keys."""
        out = {}
        for vmid, vm in self.load()["vms"].items():
            try:
                pairs = fesxi.read_vmx(vm["vmx"])
            except OSError:
                continue
            name = fesxi.vmx_value(pairs, "displayName")
            out[name] = {**vm, "vmid": vmid,
                         "keys": {k.lower(): fesxi.vmx_value(pairs, k) for k, _ in pairs}}
        return out

    def add_vm(self, name: str, keys: dict[str, str] | None = None, disk_gib: int = 1,
               power: str = "off", tools: str = "none", datastore: str = "datastore1") -> str:
        """A VM made behind decl's back (no marks unless `keys` has them); its vmid."""
        folder = Path(self.datastore(datastore)) / name
        folder.mkdir(parents=True)
        disk = folder / f"{name}.vmdk"
        assert self.run("vmkfstools", "-c", f"{disk_gib}G", "-d", "thin", str(disk)) \
            .returncode == 0
        pairs = {".encoding": "UTF-8", "config.version": "8", "virtualHW.version": "13",
                 "displayName": name, "guestOS": "otherlinux-64", "numvcpus": "1",
                 "memSize": "1024", "scsi0.present": "TRUE", "scsi0.virtualDev": "lsilogic",
                 "scsi0:0.present": "TRUE", "scsi0:0.deviceType": "scsi-hardDisk",
                 "scsi0:0.fileName": f"{name}.vmdk", "ethernet0.present": "TRUE",
                 "ethernet0.networkName": "VM Network", **(keys or {})}
        vmx = folder / f"{name}.vmx"
        fesxi.write_vmx(str(vmx), list(pairs.items()))
        done = self.run("vim-cmd", "solo/registervm", str(vmx))
        vmid = done.stdout.strip()
        assert vmid.isdigit(), done.stdout + done.stderr
        if power == "on" or tools != "none":
            self.edit(lambda d: d["vms"][vmid].__setitem__("tools", tools))
        if power == "on":
            assert self.run("vim-cmd", "vmsvc/power.on", vmid).returncode == 0
        return vmid


class FakeXen(FakeHost):
    """A fake Xen host: xl."""

    env_name = fxen.ENV

    @staticmethod
    def empty() -> dict[str, Any]:
        return fxen.empty_state()

    def domains(self) -> dict[str, dict[str, Any]]:
        """Running domains by name."""
        return dict(self.load()["domains"])


def esxi_over_sshd(fake: FakeEsxi, sshd_factory: Any) -> dict[str, Any]:
    """Start an sshd whose sessions see the fake ESXi tools first on PATH (the test user's
    environment, set by sshd's SetEnv); returns the manifest's host entry."""
    server = sshd_factory(env={"PATH": f"{FAKES_BIN}:/usr/bin:/bin",
                               fesxi.ENV: str(fake.directory)})
    return dict(server.manifest_host())


def xen_over_sshd(fake: FakeXen, sshd_factory: Any) -> dict[str, Any]:
    """Like esxi_over_sshd, for the fake xl."""
    server = sshd_factory(env={"PATH": f"{FAKES_BIN}:/usr/bin:/bin",
                               fxen.ENV: str(fake.directory)})
    return dict(server.manifest_host())


def decl(*args: str, env: dict[str, str] | None = None, timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    """Run this checkout's decl."""
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, **(env or {})})


def write_manifest(path: Path, document: dict[str, Any]) -> str:
    """Write a manifest (JSON is YAML); its path."""
    path.write_text(json.dumps(document, indent=2))
    return str(path)


def plan(manifest: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`decl plan --json`, parsed."""
    done = decl("plan", "--json", "-f", manifest, env=env)
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def actions(document: dict[str, Any]) -> dict[str, str]:
    """{address: action} of a plan."""
    return {c["address"]: c["action"] for c in document["changes"]}
