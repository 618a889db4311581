"""Helpers for the Docker end-to-end tests: run the real CLI, read plans, ask the engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

DECL = [sys.executable, "-m", "decl"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_manifest(path: str, project: str, **sections: Any) -> str:
    """Write a manifest (JSON is YAML) and return its path."""
    document = {"version": 1, "project": project, **sections}
    with open(path, "w") as handle:
        json.dump(document, handle, indent=1)
    return path


def decl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run this checkout's decl with the given arguments (environment inherited)."""
    return subprocess.run([*DECL, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def apply(manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`decl apply -y -f manifest`, which must succeed."""
    done = decl("apply", "-y", "-f", manifest, *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def plan_json(manifest: str, *extra: str) -> dict[str, Any]:
    """`decl plan --json` as data."""
    done = decl("plan", "--json", "-f", manifest, *extra)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def actions(plan: dict[str, Any]) -> dict[str, str]:
    """address -> action of every change in a JSON plan."""
    return {c["address"]: c["action"] for c in plan["changes"]}


def assert_no_changes(manifest: str) -> None:
    """`decl plan --detailed-exitcode` says there is nothing to do."""
    done = decl("plan", "--detailed-exitcode", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr


def container(client: Any, name: str) -> dict[str, Any] | None:
    """Inspect data of a container, or None."""
    import docker.errors

    try:
        return client.api.inspect_container(name)
    except docker.errors.NotFound:
        return None


def busybox(**fields: Any) -> dict[str, Any]:
    """A test container running `sleep` under an init (so a stop is quick)."""
    return {"image": "decl-test/busybox:1", "command": ["sleep", "3600"], "init": True,
            **fields}
