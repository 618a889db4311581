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
