"""The journal stays bounded: rotated past a size, with every open record kept."""

from __future__ import annotations

import json
import os

from decl.engine.journal_rotation import rotate_journal
from decl.engine.recovery import leftovers, open_records, read_journal


def rec(event, **fields):
    return {"event": event, "run": fields.pop("run", "r1"), **fields}


HISTORY = [
    rec("run"),
    rec("intent", address="venv.a", host="local", action="create"),  # open
    rec("intent", address="venv.b", host="local", action="create"),
    rec("done", address="venv.b", host="local"),
    rec("intent", address="venv.c", host="local", action="create"),
    rec("settled", run="r2", resources=[["venv.c", "local"]]),
    rec("intent", address="venv.d", host="nas", action="replace"),  # open
    rec("process", pid=10, token="5", tool="pip"),  # never ended
    rec("process", pid=11, token="6", tool="python3"),
    rec("process-end", pid=11),
    rec("intent", address="venv.e", host="local", action="create"),
    rec("intent", address="venv.e", host="local", action="update"),  # a later intent closes
]


def write(path, records) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def test_open_records_are_the_open_makings_and_the_unended_tools_in_order():
    kept = open_records(HISTORY)
    assert [(r["event"], r.get("address"), r.get("pid")) for r in kept] == [
        ("intent", "venv.a", None), ("intent", "venv.d", None), ("process", None, 10)]
    assert leftovers(kept) == leftovers(HISTORY)


def test_a_small_journal_is_left_as_it_is(tmp_path):
    path = tmp_path / "p.jsonl"
    write(path, HISTORY)
    before = path.read_bytes()
    assert not rotate_journal(str(path), limit=10_000_000)
    assert path.read_bytes() == before and not (tmp_path / "p.jsonl.1").exists()


def test_a_large_journal_becomes_generation_1_and_restarts_with_the_open_records(tmp_path):
    path = tmp_path / "p.jsonl"
    filler = [rec("run", run=f"old{i}") for i in range(200)]
    write(path, [*filler, *HISTORY])
    before_bytes, before = path.read_bytes(), leftovers(read_journal(str(path)))

    assert rotate_journal(str(path), limit=1000)

    assert (tmp_path / "p.jsonl.1").read_bytes() == before_bytes  # the history, whole
    fresh = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("address") or r.get("pid") for r in fresh] == ["venv.a", "venv.d", 10]
    assert leftovers(read_journal(str(path))) == before
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_the_next_rotation_replaces_generation_1(tmp_path):
    path = tmp_path / "p.jsonl"
    write(path, [rec("run", run=f"old{i}") for i in range(200)])
    assert rotate_journal(str(path), limit=1000)
    write(path, [rec("run", run=f"new{i}") for i in range(200)])
    assert rotate_journal(str(path), limit=1000)
    older = (tmp_path / "p.jsonl.1").read_text()
    assert '"new0"' in older and '"old0"' not in older
    assert path.read_text() == ""


def test_a_decl_killed_between_the_two_steps_loses_nothing(tmp_path):
    """The rename done, the new journal not yet written: generation 1 is read instead."""
    path = tmp_path / "p.jsonl"
    write(path, HISTORY)
    before = leftovers(read_journal(str(path)))
    os.replace(path, tmp_path / "p.jsonl.1")
    assert leftovers(read_journal(str(path))) == before
