"""Run decl in a subprocess with its own state directory; snapshot a tree to see writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_decl(*args: str, cwd: Path, state: Path, env: dict[str, str] | None = None,
             timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m decl ARGS` in `cwd`, state in `state`, no colour; output captured."""
    full = {**os.environ, "DECL_STATE_DIR": str(state), "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "decl", *args], cwd=cwd, capture_output=True,
                          text=True, env=full, timeout=timeout, input=stdin, check=False)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and mtime: compare two to see whether anything
    was written."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found
