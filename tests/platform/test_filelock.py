"""Project locks on both lock implementations: fcntl here, msvcrt through a faithful fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from decl import filelock
from decl.engine.statedir import ProjectLock
from decl.errors import LockHeldError
from decl.platforms import LINUX, MACOS, WINDOWS
from tests.platform import fake_msvcrt


@pytest.fixture
def windows_locks(monkeypatch):
    """decl believes it runs on Windows and finds the fake msvcrt."""
    monkeypatch.setitem(sys.modules, "msvcrt", fake_msvcrt)
    monkeypatch.setattr(filelock, "current_system", lambda: WINDOWS)
    fake_msvcrt.held.clear()
    fake_msvcrt.calls.clear()
    yield fake_msvcrt
    fake_msvcrt.held.clear()


def test_locker_choice_is_a_function_of_the_system():
    assert isinstance(filelock.locker_for(WINDOWS, fake_msvcrt), filelock.MsvcrtLocker)
    assert isinstance(filelock.locker_for(LINUX), filelock.FcntlLocker)
    assert isinstance(filelock.locker_for(MACOS), filelock.FcntlLocker)


def test_windows_lock_refuses_a_second_apply_and_names_the_holder(windows_locks):
    first = ProjectLock("proj", "decl apply")
    first.acquire()
    second = ProjectLock("proj", "decl apply again")
    with pytest.raises(LockHeldError, match=rf"locked by pid {os.getpid()} on .* \(decl apply\)"):
        second.acquire()
    # The lock byte is far past the holder's description, which stays readable on Windows.
    assert windows_locks.calls[0] == ("lock", filelock.MSVCRT_LOCK_OFFSET, 1)
    with open(first.path, encoding="utf-8") as handle:
        assert json.loads(handle.read())["command"] == "decl apply"
    first.release()
    assert windows_locks.calls[-1] == ("unlock", filelock.MSVCRT_LOCK_OFFSET, 1)
    second.acquire()  # free again
    second.release()
    assert windows_locks.held == {}


def test_windows_locker_keeps_the_file_position(windows_locks, tmp_path):
    path = tmp_path / "f"
    path.write_text("holder")
    with open(path, "r+", encoding="utf-8") as handle:
        handle.seek(3)
        os.lseek(handle.fileno(), 3, os.SEEK_SET)
        locker = filelock.locker_for()
        assert locker.try_lock(handle.fileno())
        assert os.lseek(handle.fileno(), 0, os.SEEK_CUR) == 3
        locker.unlock(handle.fileno())


HOLD = """
import sys, time
from decl.engine.statedir import ProjectLock
lock = ProjectLock("proj", "holder")
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_fcntl_lock_between_processes_and_dropped_when_the_holder_dies():
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=f"locked by pid {holder.pid} .*holder"):
            ProjectLock("proj", "second").acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = ProjectLock("proj", "third")
    deadline = time.monotonic() + 10  # Windows drops a dead process's locks soon, not at once
    while True:
        try:
            lock.acquire()  # the OS dropped the dead holder's lock
            break
        except LockHeldError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    lock.release()
