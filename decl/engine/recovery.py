"""What a run that died left behind, read from the project's journal.

- In-flight objects: a create (or replace) journaled as started with no outcome after it.
  An unmarked object at that address is decl's half-made object, not a conflict; the planner
  gets these as data (Snapshot.in_flight) and plans it as "finish the job".
- Tools still running: every tool decl starts during an apply is journaled with its pid and
  start time, and again when it ends. The next apply (holding the project lock, so no other
  decl of this project runs) kills those that never ended, only if the pid's start time still
  matches (a reused pid is left alone).
- `settled` records close in-flight entries that a later apply saw absent or marked.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from decl.connections.reaper import kill_group
from decl.platforms import current_system, process_start_probe, start_token_from

MAKING = frozenset({"create", "replace"})
OUTCOMES = frozenset({"done", "failed", "skipped"})


@dataclass(frozen=True)
class Leftovers:
    """In-flight objects ((address, host) -> the run that was making it) and tools."""

    in_flight: dict[tuple[str, str], str]
    processes: tuple[dict[str, Any], ...]


def read_journal(path: str) -> list[dict[str, Any]]:
    """The journal's records, its previous generation (PATH.1, decl.engine.journal_rotation)
    first; a torn last line (the writer was killed) is skipped."""
    records: list[dict[str, Any]] = []
    for part in (f"{path}.1", path):
        try:
            with open(part, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict):
                        records.append(record)
        except FileNotFoundError:
            pass
    return records


def open_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records `leftovers` still needs, in their order (pure): the intents of makings
    with no outcome or settlement after them, and the tools never seen ending."""
    records = list(records)
    making: dict[tuple[str, str], dict[str, Any]] = {}
    running: dict[int, dict[str, Any]] = {}
    for record in records:
        event = record.get("event")
        key = (str(record.get("address", "")), str(record.get("host", "")))
        if event == "intent":
            making.pop(key, None)
            if record.get("action") in MAKING:
                making[key] = record
        elif event in OUTCOMES:
            making.pop(key, None)
        elif event == "settled":
            for item in record.get("resources", []):
                if isinstance(item, list) and len(item) == 2:
                    making.pop((str(item[0]), str(item[1])), None)
        elif event == "process" and isinstance(record.get("pid"), int):
            running[record["pid"]] = record
        elif event in ("process-end", "process-killed") and isinstance(record.get("pid"), int):
            running.pop(record["pid"], None)
    kept = {id(r) for r in [*making.values(), *running.values()]}
    return [r for r in records if id(r) in kept]


def leftovers(records: Iterable[dict[str, Any]]) -> Leftovers:
    """In-flight objects and unended tools, from journal records in order (pure)."""
    kept = open_records(records)
    return Leftovers(
        {(str(r.get("address", "")), str(r.get("host", ""))): str(r.get("run", ""))
         for r in kept if r.get("event") == "intent"},
        tuple(r for r in kept if r.get("event") == "process"))


def start_token(pid: int, system: str | None = None) -> str | None:
    """When process `pid` started, as a string to compare; None when unknown or gone."""
    system = system or current_system()
    probe = process_start_probe(system, pid)
    if probe is None:
        return None
    how, what = probe
    try:
        if how == "file":
            with open(str(what), encoding="utf-8", errors="replace") as handle:
                output = handle.read()
        else:
            done = subprocess.run(list(what), capture_output=True, text=True, timeout=10,
                                  check=False)
            if done.returncode != 0:
                return None
            output = done.stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return start_token_from(system, output)


def kill_leftover_tools(
    processes: Iterable[dict[str, Any]],
    token_of: Callable[[int], str | None] = start_token,
    kill: Callable[[int], None] = kill_group,
) -> list[dict[str, Any]]:
    """Kill the journaled tools still running with the same start time; return those killed."""
    killed = []
    for record in processes:
        pid, token = record.get("pid"), record.get("token")
        if not isinstance(pid, int) or not token or pid == os.getpid():
            continue
        if token_of(pid) != token:
            continue  # gone, or the pid now belongs to another process
        kill(pid)
        killed.append(record)
    return killed
