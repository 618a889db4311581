"""Shared fixtures: an isolated state directory and a clean pip configuration."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKES_BIN = os.path.join(ROOT, "tests", "fakes", "bin")


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory, monkeypatch):
    """Each test gets its own decl state directory (locks, journals)."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("DECL_STATE_DIR", str(state))
    monkeypatch.setenv("NO_COLOR", "1")
    return state


@pytest.fixture
def decl_cmd():
    """argv prefix that runs this checkout's decl with the current interpreter."""
    return [sys.executable, "-m", "decl"]


# Tests that cannot run on a Windows runner: the fake CLIs are Python scripts with a shebang
# (Windows cannot exec them), and the venv tests read the POSIX venv layout (bin/python).
POSIX_ONLY_PATHS = ("tests/e2e/", "tests/bench/", "tests/providers/wsl/test_provider.py",
                    "tests/unit/test_venv_survey.py")


def pytest_collection_modifyitems(config, items):
    """Mark POSIX-only tests `posix` so the Windows runner can deselect them."""
    for item in items:
        relative = os.path.relpath(str(item.fspath), ROOT).replace(os.sep, "/")
        if relative.startswith(POSIX_ONLY_PATHS):
            item.add_marker(pytest.mark.posix)


def pytest_runtest_setup(item):
    """A test that needs a real backend daemon runs on Linux only (the daemons are Linux's)."""
    from decl.platforms import LINUX, current_system
    from tests.backends import missing_backend

    marker = item.get_closest_marker("backend")
    if marker is not None and current_system() != LINUX:
        name = marker.args[0] if marker.args else "daemon"
        missing_backend(name, f"its daemon runs on Linux only (this is {sys.platform})")
