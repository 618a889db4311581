"""Helpers for the venv end-to-end tests: run decl, write manifests, clean pip settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

CLEAN_PIP_ENV = {"PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": "", "PIP_INDEX_URL": "",
                 "PIP_EXTRA_INDEX_URL": "", "PIP_CONSTRAINT": "", "UV_NO_CONFIG": "1",
                 "UV_INDEX_URL": "", "UV_EXTRA_INDEX_URL": "", "UV_FIND_LINKS": ""}


def decl(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run this checkout's decl and capture its output."""
    full_env = {**os.environ, **CLEAN_PIP_ENV, **(env or {})}
    for key in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT",
                "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS"):
        if not full_env.get(key):
            full_env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, input=input, check=False)


def plan_json(manifest: str, *extra: str, codes: tuple[int, ...] = (0, 2)) -> dict[str, Any]:
    """`decl plan --json` parsed (a plan with conflicts exits 1: pass codes=(1,))."""
    done = decl("plan", "-f", manifest, "--json", *extra)
    assert done.returncode in codes, done.stderr
    return json.loads(done.stdout)


def installed(venv: str) -> dict[str, str]:
    """{name: version} read from the venv's site-packages."""
    import glob

    found = {}
    for meta in glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "*.dist-info",
                                       "METADATA")):
        fields = dict(line.split(": ", 1) for line in open(meta).read().splitlines()
                      if ": " in line and line.split(": ", 1)[0] in ("Name", "Version"))
        found[fields["Name"].lower()] = fields["Version"]
    return found
