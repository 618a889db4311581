"""A saved plan is binding: edited, partial, malformed or foreign files are refused with one
message; apply carries out exactly the saved changes or refuses the plan as stale."""

from __future__ import annotations

import json
import os

import pytest

from tests.safety.helpers import run_decl

MANIFEST = """version: 1
project: saved
venvs:
  keep:
    path: ./keep
    pip: false
  new:
    path: ./new
    pip: false
    backend: venv
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "decl.yaml").write_text(MANIFEST)
    return tmp_path


def _made(project, state):
    """Create venv.keep (with a user's file in it), then save a plan that creates venv.new."""
    manifest = project / "decl.yaml"
    only_keep = manifest.read_text().split("  new:")[0]
    (project / "keep.yaml").write_text(only_keep)
    done = run_decl("apply", "-f", "keep.yaml", "-y", cwd=project, state=state)
    assert done.returncode == 0, done.stderr
    (project / "keep" / "user-file.txt").write_text("mine")
    done = run_decl("plan", "-f", "decl.yaml", "--out", "p.json", cwd=project, state=state)
    assert done.returncode == 0, done.stderr
    return json.loads((project / "p.json").read_text())


def _refused(project, state, document_or_text):
    text = document_or_text if isinstance(document_or_text, str) else json.dumps(document_or_text)
    (project / "p.json").write_text(text)
    done = run_decl("apply", "p.json", cwd=project, state=state)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr
    assert sum(line.startswith("error:") for line in done.stderr.splitlines()) == 1, done.stderr
    assert (project / "keep" / "user-file.txt").exists()
    assert not (project / "new").exists()
    return done.stderr


def _edits(document):
    def edit(path, value):
        copy = json.loads(json.dumps(document))
        target = copy
        for part in path[:-1]:
            target = target[part]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return copy

    return {
        "destroy": edit(("options", "destroy"), True),
        "prune": edit(("options", "prune"), True),
        "targets": edit(("options", "targets"), ["venv.keep"]),
        "empty_changes": edit(("plan", "changes"), []),
        "no_inputs": edit(("inputs",), KeyError),
        "plan_null": edit(("plan",), None),
        "file_fd": edit(("inputs", "file"), 123),
        "no_signature": edit(("signature",), KeyError),
        "resigned_sha256": edit(("signature", "value"), "0" * 64),
    }


def test_edited_plans_are_refused(project, tmp_path):
    state = tmp_path / "state"
    document = _made(project, state)
    for name, edited in _edits(document).items():
        message = _refused(project, state, edited)
        assert "cannot be applied" in message, (name, message)


def test_partial_and_malformed_files_are_refused(project, tmp_path):
    state = tmp_path / "state"
    _made(project, state)
    text = (project / "p.json").read_text()
    for cut in (0, 1, len(text) // 2, len(text) - 3):
        _refused(project, state, text[:cut])
    _refused(project, state, "[1, 2]")
    _refused(project, state, "\xff\xfe")
    _refused(project, state, "[" * 100000)


def test_json_output_fed_back_is_refused(project, tmp_path):
    state = tmp_path / "state"
    _made(project, state)
    done = run_decl("plan", "--json", cwd=project, state=state)
    message = _refused(project, state, done.stdout)
    assert "decl plan --json" in message


def test_plan_of_another_user_or_state_dir_is_refused(project, tmp_path):
    state = tmp_path / "state"
    _made(project, state)
    document = (project / "p.json").read_text()
    other = tmp_path / "other-state"
    (project / "p.json").write_text(document)
    done = run_decl("apply", "p.json", cwd=project, state=other)
    assert done.returncode == 1 and "no plan key" in done.stderr, done.stderr
    assert not (project / "new").exists()


def test_key_and_plan_are_private(project, tmp_path):
    state = tmp_path / "state"
    _made(project, state)
    assert os.stat(state / "plan-key").st_mode & 0o077 == 0
    assert os.stat(project / "p.json").st_mode & 0o077 == 0


def test_saved_plan_is_carried_out_exactly(project, tmp_path):
    state = tmp_path / "state"
    _made(project, state)
    done = run_decl("apply", "p.json", cwd=project, state=state)
    assert done.returncode == 0, done.stderr
    assert (project / "new" / "pyvenv.cfg").exists()
    assert (project / "keep" / "user-file.txt").exists()
    again = run_decl("apply", "p.json", cwd=project, state=state)
    assert again.returncode == 1 and "stale" in again.stderr, again.stderr


def test_stale_when_manifest_changed(project, tmp_path):
    state = tmp_path / "state"
    _made(project, state)
    manifest = project / "decl.yaml"
    manifest.write_text(manifest.read_text().replace("./new", "./other"))
    done = run_decl("apply", "p.json", cwd=project, state=state)
    assert done.returncode == 1 and "stale" in done.stderr, done.stderr
    assert not (project / "new").exists() and not (project / "other").exists()
