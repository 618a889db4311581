"""`decl show PLANFILE` prints a saved plan byte for byte as `decl plan` printed it."""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.e2e.venv_helpers import decl
from tests.wheelhouse import standard_wheelhouse


@pytest.fixture
def wheels(tmp_path: pathlib.Path) -> pathlib.Path:
    return standard_wheelhouse(tmp_path / "wheels")


def venv(path: pathlib.Path, wheels: pathlib.Path, packages: list[str], **extra) -> dict:
    return {"path": str(path), "packages": packages, "find_links": [str(wheels)],
            "no_index": True, "backend": "venv", "pip": False, **extra}


def write(manifest: pathlib.Path, venvs: dict) -> None:
    manifest.write_text(json.dumps({"version": 1, "project": "showtest", "venvs": venvs}))


@pytest.mark.parametrize("destroy", [False, True])
def test_show_prints_the_saved_plan_exactly_as_plan_did(tmp_path, wheels, destroy):
    manifest = tmp_path / "decl.yaml"
    write(manifest, {"upd": venv(tmp_path / "upd", wheels, ["alpha==1.0"]),
                     "gone": venv(tmp_path / "gone", wheels, []),
                     "left": venv(tmp_path / "left", wheels, []),
                     "kept": venv(tmp_path / "kept", wheels, [],
                                  lifecycle={"prevent_destroy": True})})
    applied = decl("apply", "-y", "-f", str(manifest))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # Now: one update, one delete, one create, an orphan, one unchanged and kept.
    write(manifest, {"upd": venv(tmp_path / "upd", wheels, ["alpha==2.0", "delta"]),
                     "gone": venv(tmp_path / "gone", wheels, [], state="absent"),
                     "new": venv(tmp_path / "new", wheels, ["beta"]),
                     "kept": venv(tmp_path / "kept", wheels, [],
                                  lifecycle={"prevent_destroy": True})})
    extra = ["--destroy"] if destroy else []
    for flags in ([], ["-v"], ["--no-color"]):
        root = flags if flags == ["--no-color"] else []
        local = [] if root else flags
        shown_by_plan = decl(*root, "plan", "-f", str(manifest), *extra, *local)
        assert shown_by_plan.returncode == 0, shown_by_plan.stderr
        saved = decl("plan", "-f", str(manifest), *extra, "--out", str(tmp_path / "p.json"))
        assert saved.returncode == 0, saved.stderr
        shown = decl(*root, "show", str(tmp_path / "p.json"), *local)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == shown_by_plan.stdout
    text = shown_by_plan.stdout
    if destroy:
        assert "kept: lifecycle.prevent_destroy is set" in text
    else:
        assert "venv.upd will be updated in place" in text and "venv.new will be created" in text
        assert "venv.gone will be deleted" in text and "? venv.left" in text
    as_json = decl("plan", "-f", str(manifest), *extra, "--json")
    shown_json = decl("show", "--json", str(tmp_path / "p.json"))
    assert shown_json.returncode == 0
    assert shown_json.stdout == as_json.stdout


def test_show_refuses_a_file_that_is_not_a_plan(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text("{}")
    shown = decl("show", str(bad))
    assert shown.returncode == 1
    assert shown.stderr.strip() == f"error: {bad} cannot be shown: not a decl plan file " \
        "(format 1), or parts of it are missing or were added"
    assert decl("show", str(tmp_path / "nope.json")).stderr.strip() == \
        f"error: plan file not found: {tmp_path / 'nope.json'}"
