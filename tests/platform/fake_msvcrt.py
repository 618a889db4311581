"""A stand-in for Windows' msvcrt.locking: byte-range locks per open file, as Windows keeps them.

Locks are kept per (file, offset) in this process; a second descriptor asking for a held byte
gets OSError(EACCES) at once with LK_NBLCK, as _locking does on Windows. Unlocking a byte the
descriptor does not hold is an error, as on Windows.
"""

from __future__ import annotations

import errno
import os

LK_UNLCK = 0
LK_LOCK = 1
LK_NBLCK = 2
LK_RLCK = 3
LK_NBRLCK = 4

held: dict[tuple[int, int, int], int] = {}
calls: list[tuple[str, int, int]] = []


def locking(fd: int, mode: int, nbytes: int) -> None:
    info = os.fstat(fd)
    offset = os.lseek(fd, 0, os.SEEK_CUR)
    key = (info.st_dev, info.st_ino, offset)
    calls.append(("lock" if mode != LK_UNLCK else "unlock", offset, nbytes))
    if mode == LK_UNLCK:
        if held.get(key) != fd:
            raise OSError(errno.EACCES, "Permission denied")
        del held[key]
        return
    if mode != LK_NBLCK:
        raise AssertionError("decl must not block on the lock")
    if key in held:
        raise OSError(errno.EACCES, "Permission denied")
    held[key] = fd
