"""Test helpers around the fake Mac: its state file, PATH, faults, call log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.mac import state as fstate

FAKES_BIN = str(Path(__file__).resolve().parent.parent / "bin")


class FakeMac:
    """One fake Mac (prlctl, utmctl, osascript), state in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            fstate.save(str(path), fstate.empty_state())

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should see the fakes first on PATH."""
        return {**os.environ, fstate.ENV: str(self.path),
                "PATH": FAKES_BIN + os.pathsep + os.environ.get("PATH", "")}

    def load(self) -> dict[str, Any]:
        """The whole state."""
        return fstate.load(str(self.path))

    def edit(self, change: Any) -> None:
        """Apply `change(state)` to the state, under its lock."""
        with fstate.locked(str(self.path)):
            data = fstate.load(str(self.path))
            change(data)
            fstate.save(str(self.path), data)

    def fail(self, tool: str, match: str, after: int = 0, times: int = 1, **extra: Any) -> None:
        """Make the (after+1)-th call of `tool` whose command line contains `match` fail."""
        self.edit(lambda d: d["faults"].append({"tool": tool, "match": match, "after": after,
                                                "times": times, **extra}))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        """Every call made so far (argv after the program name), optionally of one tool."""
        return [c["argv"] for c in self.load()["calls"] if tool is None or c["tool"] == tool]

    def clear_calls(self) -> None:
        """Forget the call log."""
        self.edit(lambda d: d.__setitem__("calls", []))

    def run(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run one fake tool directly (to set up state the way a user would)."""
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env(),
                              input=input, timeout=60, check=False)

    def parallels_vms(self) -> dict[str, dict[str, Any]]:
        """Parallels VMs by name."""
        return {vm["name"]: vm for vm in self.load()["parallels"]["vms"]}

    def utm_vms(self) -> dict[str, dict[str, Any]]:
        """UTM VMs by name."""
        return {vm["config"]["name"]: vm for vm in self.load()["utm"]["vms"]}


@pytest.fixture(name="fake_mac")
def fake_mac_fixture(tmp_path, monkeypatch) -> FakeMac:
    """A fresh fake Mac, with the fakes first on this process's PATH."""
    fake = FakeMac(tmp_path / "mac.json")
    monkeypatch.setenv(fstate.ENV, str(fake.path))
    monkeypatch.setenv("PATH", FAKES_BIN + os.pathsep + os.environ.get("PATH", ""))
    return fake


def write_manifest(path: Path, document: dict[str, Any]) -> Path:
    """Write a manifest (JSON is YAML) and return its path."""
    path.write_text(json.dumps(document, indent=2))
    return path


def run_decl(fake: FakeMac, decl_cmd: list[str], *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the decl CLI with the fakes first on PATH."""
    return subprocess.run([*decl_cmd, *args], capture_output=True, text=True, timeout=300,
                          env={**fake.env(), **(env or {})}, check=False)


def plan_json(fake: FakeMac, decl_cmd: list[str], manifest: Path) -> dict[str, Any]:
    """`decl plan --json` as data (fails the test on an error exit)."""
    done = run_decl(fake, decl_cmd, "plan", "--json", "-f", str(manifest))
    plan: dict[str, Any] = json.loads(done.stdout)
    conflict = any(c["action"] == "conflict" for c in plan["changes"])  # exits 1 (README)
    assert done.returncode in ((1,) if conflict else (0, 2)), done.stdout + done.stderr
    return plan
