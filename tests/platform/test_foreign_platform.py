"""decl imports and its CLI answers when it believes it runs on Windows or macOS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from decl import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(("platform", "system"), [("win32", "windows"), ("darwin", "darwin")])
def test_decl_imports_without_posix_only_modules(platform, system, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DECL_STATE_DIR"}
    env.update({"PYTHONPATH": ROOT, "HOME": str(tmp_path), "USERPROFILE": str(tmp_path),
                "LOCALAPPDATA": str(tmp_path / "L"),
                "NO_COLOR": "1"})
    env.pop("XDG_STATE_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.platform.foreign", platform,
         os.path.join(ROOT, "examples", "venvs.yaml")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["failed"] == {}
    assert report["refused"] == []
    assert report["system"] == system
    assert report["version"] == [0, f"decl, version {__version__}\n"]
    assert report["validate"][0] == 0, report["validate"][1]
    expected = (os.path.join(str(tmp_path / "L"), "decl") if system == "windows"
                else os.path.join(str(tmp_path), "Library", "Application Support", "decl"))
    assert report["state_dir"].replace("\\", "/") == expected.replace("\\", "/")


def test_the_blocker_catches_a_posix_only_import(tmp_path):
    """The check can fail: a decl module that imports fcntl is refused."""
    script = (
        "import sys, importlib\n"
        "from tests.platform.foreign import PosixOnlyBlocker\n"
        "b = PosixOnlyBlocker(); sys.meta_path.insert(0, b); sys.modules.pop('fcntl', None)\n"
        "g = {'__name__': 'decl.fake'}\n"
        "try:\n"
        "    exec('import fcntl', g)\n"
        "except ImportError as e:\n"
        "    print('refused', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=60,
                          check=False)
    assert "refused No module named 'fcntl'" in done.stdout, done.stderr
