"""Test helpers around the fake Windows host: its state file, PATH, faults, call log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.windows import state as fstate

FAKES_BIN = str(Path(__file__).resolve().parent.parent / "bin")


class FakeWindows:
    """One fake Windows host (wsl.exe, powershell.exe, pwsh), state in `path`."""

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

    def add_file(self, windows_path: str, kind: str = "rootfs", **extra: Any) -> None:
        """Make a file (or, with kind "dir", a folder) exist on the fake Windows host."""
        self.edit(lambda d: d["files"].__setitem__(windows_path.lower(),
                                                   {"kind": kind, "path": windows_path,
                                                    **extra}))

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

    def dump(self) -> str:
        """The state as text, for assertion messages."""
        return json.dumps(self.load(), indent=1)


@pytest.fixture(name="fake_windows")
def fake_windows_fixture(tmp_path, monkeypatch) -> FakeWindows:
    """A fresh fake Windows host, with the fakes first on this process's PATH."""
    fake = FakeWindows(tmp_path / "windows.json")
    monkeypatch.setenv(fstate.ENV, str(fake.path))
    monkeypatch.setenv("PATH", FAKES_BIN + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("WSL_UTF8", raising=False)
    return fake


def write_manifest(path: Path, document: dict[str, Any]) -> Path:
    """Write a manifest (JSON is YAML) and return its path."""
    path.write_text(json.dumps(document, indent=2))
    return path


def run_decl(fake: FakeWindows, decl_cmd: list[str], *args: str, env: dict[str, str] | None = None
             ) -> Any:
    """Run the decl CLI with the fakes first on PATH; returns the CompletedProcess."""
    import subprocess

    return subprocess.run([*decl_cmd, *args], capture_output=True, text=True, timeout=300,
                          env={**fake.env(), **(env or {})})


def plan_json(fake: FakeWindows, decl_cmd: list[str], manifest: Path) -> dict[str, Any]:
    """`decl plan --json` as data (fails the test on an error exit)."""
    done = run_decl(fake, decl_cmd, "plan", "--json", "-f", str(manifest))
    plan: dict[str, Any] = json.loads(done.stdout)
    conflict = any(c["action"] == "conflict" for c in plan["changes"])  # exits 1 (README)
    assert done.returncode in ((1,) if conflict else (0, 2)), done.stdout + done.stderr
    return plan
