"""Helpers for the VM end-to-end tests: run decl, write manifests, read plans."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any


def decl(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    """Run this checkout's decl and capture its output."""
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def write_manifest(path: str, project: str, vms: dict[str, Any],
                   hosts: dict[str, Any] | None = None) -> str:
    """Write a manifest (JSON is YAML) and return its path."""
    document: dict[str, Any] = {"version": 1, "project": project, "vms": vms}
    if hosts:
        document["hosts"] = hosts
    with open(path, "w") as handle:
        json.dump(document, handle, indent=2)
    return path


def plan_json(manifest: str) -> dict[str, Any]:
    """`decl plan --json`, parsed (exit code 0 or 2 expected)."""
    done = decl("plan", "-f", manifest, "--json")
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


def actions(plan: dict[str, Any]) -> dict[str, str]:
    """{address: action} of the plan's changes."""
    return {change["address"]: change["action"] for change in plan["changes"]}


def apply(manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`decl apply -y`; asserts success."""
    done = decl("apply", "-y", "-f", manifest, *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def destroy(manifest: str) -> subprocess.CompletedProcess[str]:
    """`decl destroy -y`; asserts success."""
    done = decl("destroy", "-y", "-f", manifest)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def assert_no_changes(manifest: str) -> None:
    """`decl plan --detailed-exitcode` says nothing is left to do."""
    done = decl("plan", "-f", manifest, "--detailed-exitcode")
    assert done.returncode == 0, done.stdout + done.stderr


def status_json(manifest: str) -> dict[str, Any]:
    """`decl status --json`, parsed."""
    done = decl("status", "-f", manifest, "--json")
    assert done.returncode in (0, 2), done.stdout + done.stderr
    return json.loads(done.stdout)


def sha256_of(path: str) -> str:
    """sha256:HEX of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def qemu_img_info(path: str) -> dict[str, Any]:
    """qemu-img info of a local file."""
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", path],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))
