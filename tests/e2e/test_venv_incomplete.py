"""A venv whose install failed is decl's unfinished work: the next plan says the last apply did
not finish (not "changed outside decl"), and the next apply finishes it."""

from __future__ import annotations

import json
import pathlib

from tests.e2e.venv_helpers import decl, installed, plan_json
from tests.wheelhouse import make_wheel, standard_wheelhouse


def test_failed_install_is_reported_as_unfinished_not_drift(tmp_path: pathlib.Path):
    wheels = standard_wheelhouse(tmp_path / "wheels")
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "unfinished", "venvs": {"v": {
        "path": str(tmp_path / "v"), "backend": "venv", "pip": False,
        "packages": ["alpha==1.0", "omega==1.0"], "find_links": [str(wheels)],
        "no_index": True}}}))
    failed = decl("apply", "-y", "-f", str(manifest))
    assert failed.returncode == 1, failed.stdout + failed.stderr  # omega is not there yet
    marks = json.loads((tmp_path / "v" / "decl.json").read_text())
    assert marks["state"] == "incomplete"

    plan = plan_json(str(manifest))
    [change] = plan["changes"]
    assert change["action"] == "update" and change["origin"] == "interrupted"
    assert change["cause"].startswith("the last apply did not finish: ")
    text = decl("plan", "-f", str(manifest)).stdout
    assert "changed outside decl" not in text

    make_wheel(wheels, "omega", "1.0")
    done = decl("apply", "-y", "-f", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(str(tmp_path / "v")) == {"alpha": "1.0", "omega": "1.0"}
    assert json.loads((tmp_path / "v" / "decl.json").read_text())["state"] == "complete"
    assert decl("plan", "--detailed-exitcode", "-f", str(manifest)).returncode == 0
