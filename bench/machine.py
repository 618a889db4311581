"""The machine a bench ran on, and the versions of every tool measured."""

from __future__ import annotations

import os
import platform
import subprocess

from bench.cases.common import DECL, PYTHON


def _out(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    return (done.stdout or done.stderr).strip()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def os_name() -> str:
    """PRETTY_NAME of /etc/os-release."""
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def describe(peers, env: dict[str, str]) -> dict:
    """nproc, CPU, memory, OS, kernel, and the version of each tool (as each prints it)."""
    versions = {"decl": _out([*DECL, "--version"], env),
                "python": f"{platform.python_version()} ({PYTHON})",
                "uv": _out(["uv", "--version"], env),
                **peers.versions}
    if "DOCKER_HOST" in env:
        versions["dockerd"] = _out(["docker", "version", "--format",
                                    "{{.Server.Version}} (storage: vfs, own daemon)"], env)
    return {"nproc": os.cpu_count(), "cpu": cpu_model(), "memory": _out(["free", "-h"]),
            "os": os_name(), "kernel": platform.release(), "versions": versions}
