"""decl.connections.secret_env: secrets reach tools through the environment or a 0600 file,
and a command whose argv holds one is not started."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from decl import redact
from decl.connections.local import LocalConnection
from decl.connections.secret_env import (
    carries_secret,
    check_command_line,
    private_file,
    run_with_env,
)
from decl.errors import ProviderError

SECRET = "Hunter2-ä'\"tok"


@pytest.fixture(autouse=True)
def known_secret(monkeypatch):
    monkeypatch.setattr(redact, "_KNOWN", {SECRET})
    redact._CACHE.clear()
    yield
    redact._CACHE.clear()


def test_a_secret_in_argv_stops_the_command_before_it_starts(tmp_path):
    marker = tmp_path / "ran"
    conn = LocalConnection()
    for value in (SECRET, f"--token={SECRET}", "https://u:Hunter2-%C3%A4%27%22tok@x/"):
        with pytest.raises(ProviderError, match=r"would go on the command line of sh "
                                                r"\(argument 3: .*\(sensitive\).*\).*nothing "
                                                r"was run") as caught:
            conn.run(["sh", "-c", f"touch {marker}", value])
        assert not carries_secret(str(caught.value))  # the message does not hold it
    assert not marker.exists()


def test_short_spellings_and_plain_values_pass():
    redact._KNOWN.clear()
    redact._KNOWN.add("abcd")  # a 4-letter secret: too short to look for on command lines
    redact._CACHE.clear()
    check_command_line("local", ["echo", "abcdef"])
    check_command_line("local", ["echo", "plain"], {"X": "abcd"})


def test_a_secret_in_the_environment_of_a_remote_command_line_is_refused():
    with pytest.raises(ProviderError, match="variable TOKEN for curl holds a secret"):
        check_command_line("box", ["curl", "x"], {"TOKEN": SECRET})


def test_run_with_env_gives_the_tool_the_value_in_its_environment():
    done = run_with_env(LocalConnection(), [sys.executable, "-c",
                                            "import os; print(os.environ['TOKEN'])"],
                        {"TOKEN": SECRET}, timeout=30)
    assert done.ok and done.out.strip() == SECRET


def test_private_file_is_0600_and_removed_after():
    with private_file(LocalConnection(), SECRET.encode(), ".txt") as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path, encoding="utf-8") as handle:
            assert handle.read() == SECRET
    assert not os.path.exists(path)


class _RemoteRecorder:
    """A remote POSIX host that records what it is asked to run and the files written."""

    is_local = False
    shell = "posix"
    host = "box"

    def __init__(self):
        self.runs, self.files, self.removed = [], {}, []

    def run(self, argv, env=None, timeout=None):
        check_command_line(self.host, argv, env)
        self.runs.append((list(argv), dict(env or {})))
        return "done"

    def write_file(self, path, data, mode=None):
        self.files[path] = (data, mode)

    def remove(self, path):
        self.removed.append(path)


def test_run_with_env_on_a_remote_host_sources_a_0600_file():
    conn = _RemoteRecorder()
    assert run_with_env(conn, ["pip", "install", "x"], {"TOKEN": SECRET, "PLAIN": "1"},
                        private=["INDEX"]) == "done"
    (argv, env), = conn.runs
    (path, (data, mode)), = conn.files.items()
    assert mode == 0o600 and argv[:2] == ["sh", "-c"] and argv[3] == path
    assert argv[4:] == ["pip", "install", "x"] and env == {"PLAIN": "1"}
    assert SECRET not in " ".join(argv) and b"export TOKEN=" in data
    assert conn.removed == [path]  # removed after, had the wrapper not done it


def test_a_powershell_host_is_refused_rather_than_given_the_secret_on_its_command_line():
    conn = _RemoteRecorder()
    conn.shell = "powershell"
    with pytest.raises(ProviderError, match="TOKEN hold a secret"):
        run_with_env(conn, ["tool.exe"], {"TOKEN": SECRET})
    assert conn.runs == []
