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
    """Where decl keeps its own files: $DECL_STATE_DIR, else $XDG_STATE_HOME/decl, else
    ~/.local/state/decl (HOME unset: the user's home from the password database)."""
    explicit = os.environ.get("DECL_STATE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    return os.path.join(base, "decl")
