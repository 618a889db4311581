"""NO_COLOR and --no-color: not one escape code, even on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def on_a_terminal(*args: str, no_color: bool, cwd: str) -> bytes:
    """Run decl with its stdout on a pseudo-terminal; return what it wrote."""
    leader, follower = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env.update({"PYTHONPATH": ROOT, "TERM": "xterm-256color"})
    if no_color:
        env["NO_COLOR"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "decl", *args], stdout=follower,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks)


def test_plan_on_a_terminal_has_colour_but_none_with_no_color(tmp_path):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(f"version: 1\nproject: colours\nvenvs:\n  a: {{path: {tmp_path / 'a'}}}\n")
    coloured = on_a_terminal("plan", "-f", str(manifest), no_color=False, cwd=str(tmp_path))
    assert b"\x1b[" in coloured and b"venv.a" in coloured
    plain = on_a_terminal("plan", "-f", str(manifest), no_color=True, cwd=str(tmp_path))
    assert b"venv.a will be created" in plain and b"\x1b" not in plain
    flag = on_a_terminal("--no-color", "plan", "-f", str(manifest), no_color=False,
                         cwd=str(tmp_path))
    assert b"venv.a will be created" in flag and b"\x1b" not in flag
