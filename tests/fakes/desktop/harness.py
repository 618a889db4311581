"""Test helpers around the fake desktop host: its state, PATH, faults and call log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.desktop import state as fstate

FAKES_BIN = str(Path(__file__).resolve().parent.parent / "bin")


class FakeDesktop:
    """One fake desktop host (VBoxManage, vmrun, vmware-vdiskmanager), state in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        if not (path / "state.json").exists():
            fstate.save(str(path), fstate.empty_state(str(path)))

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that sees the fakes first on PATH."""
        return {**os.environ, fstate.ENV: str(self.path),
                "PATH": FAKES_BIN + os.pathsep + os.environ.get("PATH", ""), **extra}

    def load(self) -> dict[str, Any]:
        """The whole state."""
        return fstate.load(str(self.path))

    def edit(self, change: Any) -> None:
        """Apply `change(state)` under the state's lock."""
        with fstate.locked(str(self.path)):
            data = fstate.load(str(self.path))
            change(data)
            fstate.save(str(self.path), data)

    def fail(self, tool: str, match: str, after: int = 0, times: int = 1, **extra: Any) -> None:
        """Make the (after+1)-th call of `tool` whose command line contains `match` fail."""
        self.edit(lambda d: d["faults"].append({"tool": tool, "match": match, "after": after,
                                                "times": times, **extra}))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        """Every call so far (argv after the program name), optionally of one tool."""
        return [c["argv"] for c in self.load()["calls"] if tool is None or c["tool"] == tool]

    def clear_calls(self) -> None:
        """Forget the call log."""
        self.edit(lambda d: d.__setitem__("calls", []))

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one fake tool as a user would."""
        return subprocess.run([os.path.join(FAKES_BIN, tool), *args], capture_output=True,
                              text=True, timeout=60, env=self.env())


@pytest.fixture(name="fake_desktop")
def fake_desktop_fixture(tmp_path, monkeypatch) -> FakeDesktop:
    """A fresh fake desktop host, the fakes first on this process's PATH."""
    fake = FakeDesktop(tmp_path / "desktop")
    monkeypatch.setenv(fstate.ENV, str(fake.path))
    monkeypatch.setenv("PATH", FAKES_BIN + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv(fstate.FAIL_ENV, raising=False)
    return fake


def write_manifest(path: Path, document: dict[str, Any]) -> Path:
    """Write a manifest (JSON is YAML) and return its path."""
    path.write_text(json.dumps(document, indent=2))
    return path


def run_decl(fake: FakeDesktop, decl_cmd: list[str], *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the decl CLI with the fakes first on PATH."""
    return subprocess.run([*decl_cmd, *args], capture_output=True, text=True, timeout=300,
                          env={**fake.env(), **(env or {})})


def plan_json(fake: FakeDesktop, decl_cmd: list[str], manifest: Path) -> dict[str, Any]:
    """`decl plan --json` as data (fails the test on an error exit; a plan with a conflict
    must exit 1, as the README says)."""
    done = run_decl(fake, decl_cmd, "plan", "--json", "-f", str(manifest))
    plan: dict[str, Any] = json.loads(done.stdout)
    conflict = any(c["action"] == "conflict" for c in plan["changes"])
    assert done.returncode in ((1,) if conflict else (0, 2)), done.stdout + done.stderr
    return plan
