"""Non-blocking exclusive file locks the OS drops when the holder dies: fcntl or msvcrt.

`locker_for(system)` picks the implementation by a pure function of the platform
(decl.platforms.lock_module_name); both are tested on Linux, the Windows one with a fake
msvcrt module.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Protocol

from decl.platforms import current_system, lock_module_name

# msvcrt.locking locks bytes from the current position, and Windows refuses reads of locked
# bytes. The lock sits on one byte far past the holder's description, which stays readable.
MSVCRT_LOCK_OFFSET = 1 << 30


class FileLocker(Protocol):
    """Take or drop an exclusive lock on an open file descriptor."""

    def try_lock(self, fd: int) -> bool:
        """True when the lock was taken, False when another process holds it."""

    def unlock(self, fd: int) -> None:
        """Drop the lock (closing the file drops it too)."""


class FcntlLocker:
    """flock(2): whole file, dropped by the kernel with the last descriptor."""

    def __init__(self, module: ModuleType) -> None:
        self.fcntl = module

    def try_lock(self, fd: int) -> bool:
        """LOCK_EX | LOCK_NB."""
        try:
            self.fcntl.flock(fd, self.fcntl.LOCK_EX | self.fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return False
        return True

    def unlock(self, fd: int) -> None:
        """LOCK_UN."""
        self.fcntl.flock(fd, self.fcntl.LOCK_UN)


class MsvcrtLocker:
    """msvcrt.locking(LK_NBLCK) on one byte at MSVCRT_LOCK_OFFSET; Windows drops it on exit."""

    def __init__(self, module: ModuleType) -> None:
        self.msvcrt = module

    def try_lock(self, fd: int) -> bool:
        """LK_NBLCK: fails at once (OSError) when another process holds the byte."""
        position = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, MSVCRT_LOCK_OFFSET, os.SEEK_SET)
        try:
            self.msvcrt.locking(fd, self.msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            os.lseek(fd, position, os.SEEK_SET)
        return True

    def unlock(self, fd: int) -> None:
        """LK_UNLCK on the same byte."""
        position = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, MSVCRT_LOCK_OFFSET, os.SEEK_SET)
        try:
            self.msvcrt.locking(fd, self.msvcrt.LK_UNLCK, 1)
        finally:
            os.lseek(fd, position, os.SEEK_SET)


def locker_for(system: str | None = None, module: ModuleType | None = None) -> FileLocker:
    """The locker of `system` (default: this one), built on `module` (default: imported)."""
    name = lock_module_name(system or current_system())
    loaded = module if module is not None else importlib.import_module(name)
    return MsvcrtLocker(loaded) if name == "msvcrt" else FcntlLocker(loaded)
