"""The user's state directory: the per-project lock, the journal, what a project touched."""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from collections.abc import Iterable
from typing import IO, Any

from decl.errors import DeclError, LockHeldError
from decl.files import state_dir, write_atomic


class StateDirError(DeclError):
    """decl's state directory cannot be written: said before anything is changed."""

    def __init__(self, path: str, exc: OSError) -> None:
        super().__init__(
            f"cannot write decl's state at {path}: {exc.strerror or exc}; set DECL_STATE_DIR "
            "(or XDG_STATE_HOME) to a writable directory; nothing was changed")


def now() -> str:
    """UTC time stamp, ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


class ProjectLock:
    """One apply per project at a time: an OS file lock the kernel drops if we crash."""

    def __init__(self, project: str, command: str) -> None:
        self.path = os.path.join(state_dir(), "locks", f"{project}.lock")
        self.project = project
        self.command = command
        self._handle: IO[str] | None = None
        self._locker: Any = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeldError naming its holder."""
        from decl.filelock import locker_for

        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - until release
        except OSError as exc:
            raise StateDirError(self.path, exc) from None
        locker = locker_for()
        if not locker.try_lock(handle.fileno()):
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            try:
                info = json.loads(holder)
                who = (f"pid {info['pid']} on {info['host']} since {info['started']} "
                       f"({info['command']})")
            except (ValueError, KeyError):
                who = "another process"
            raise LockHeldError(
                f"project {self.project} is locked by {who}; wait for it to finish "
                f"(lock file {self.path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": now(), "command": self.command}))
        handle.flush()
        self._handle = handle
        self._locker = locker

    def release(self) -> None:
        """Drop the lock."""
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
            self._locker.unlock(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def journal_path(project: str) -> str:
    """The project's journal (JSON lines)."""
    return os.path.join(state_dir(), "journal", f"{project}.jsonl")


class Journal:
    """JSON lines of every intent and outcome; secrets scrubbed before writing."""

    def __init__(self, project: str, run_id: str, scrub: Any = None) -> None:
        self.path = journal_path(project)
        self.run_id = run_id
        self.scrub = scrub or (lambda text: text)
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as exc:
            raise StateDirError(self.path, exc) from None

    def write(self, event: str, **fields: Any) -> None:
        """Append one record."""
        record: Any = {"time": now(), "run": self.run_id, "event": event, **fields}
        if hasattr(self.scrub, "data"):  # a Redactor: strings first, then the line
            record = self.scrub.data(json.loads(json.dumps(record, default=str)))
        line = self.scrub(json.dumps(record, default=str, sort_keys=True))
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def touched_path(project: str) -> str:
    """Where the (provider, host) pairs a project has used are recorded."""
    return os.path.join(state_dir(), "projects", f"{project}.json")


def read_touched(project: str) -> set[tuple[str, str]]:
    """(provider, host) pairs this project created objects with before (to find orphans)."""
    try:
        with open(touched_path(project), encoding="utf-8") as handle:
            data = json.load(handle)
        return {(str(p), str(h)) for p, h in data.get("groups", [])}
    except (OSError, ValueError):
        return set()


def record_touched(project: str, groups: Iterable[tuple[str, str]]) -> None:
    """Remember more (provider, host) pairs for this project."""
    known = read_touched(project) | set(groups)
    payload = json.dumps({"groups": sorted(known)}, indent=1).encode()
    try:
        write_atomic(touched_path(project), payload)
    except OSError as exc:
        raise StateDirError(touched_path(project), exc) from None
