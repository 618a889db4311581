"""An apply rotates a journal grown past its limit, and recovery still reads what it needs."""

from __future__ import annotations

import json

from decl.engine.journal_rotation import ROTATE_AT
from tests.e2e.venv_helpers import decl


def test_apply_rotates_a_journal_past_its_limit_keeping_the_open_records(tmp_path):
    state = tmp_path / "state"
    journal = state / "journal" / "rot.jsonl"
    journal.parent.mkdir(parents=True)
    old_run = {"event": "run", "command": "apply", "changes": 0, "manifest": "x" * 200}
    history = "".join(json.dumps({**old_run, "run": f"old{i}"}, sort_keys=True) + "\n"
                      for i in range(ROTATE_AT // 250 + 1))
    left_open = {"event": "intent", "run": "dead1", "address": "venv.halfmade",
                 "host": "local", "action": "create"}
    journal.write_text(history + json.dumps(left_open, sort_keys=True) + "\n")
    assert journal.stat().st_size > ROTATE_AT
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "rot", "venvs": {"tools": {
        "path": str(tmp_path / "env"), "backend": "venv", "pip": False}}}))

    done = decl("apply", "-y", "-f", str(manifest), env={"DECL_STATE_DIR": str(state)})

    assert done.returncode == 0, done.stdout + done.stderr
    generation_1 = journal.parent / "rot.jsonl.1"
    assert generation_1.read_text().startswith(history)  # nothing of the history lost
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert records[0] == left_open  # carried over, first
    assert any(r["event"] == "done" and r.get("address") == "venv.tools" for r in records)
    assert journal.stat().st_size < 100_000
