"""File helpers at the bottom of every layer: atomic writes."""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, data: bytes, mode: int | None = None) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".decl-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def state_dir() -> str:
    """Where decl keeps its own files: $DECL_STATE_DIR, else the platform\'s place
    (decl.platforms.state_dir; HOME unset: the home from the password database)."""
    from decl.platforms import current_system
    from decl.platforms import state_dir as state_dir_of

    return state_dir_of(current_system(), os.environ, os.path.expanduser("~"))
