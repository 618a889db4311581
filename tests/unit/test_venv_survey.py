"""The venv survey gives the same answer in decl's process (local host) and as the script
another host's Python runs."""

from __future__ import annotations

import json
import subprocess
import sys
import venv

from decl.providers.venv.probe import SCRIPT, survey_here
from tests.wheelhouse import make_wheel


def test_in_process_and_script_agree(tmp_path):
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "alpha", "1.0", ["gamma>=1"])
    site = next(env_dir.glob("lib/python*/site-packages"))
    import zipfile

    with zipfile.ZipFile(next(wheels.glob("*.whl"))) as archive:
        archive.extractall(site)
    (env_dir / "decl.json").write_text('{"project": "p", "address": "venv.e"}')
    (tmp_path / "plain").mkdir()
    request = {"paths": [str(env_dir), str(tmp_path / "plain"), str(tmp_path / "missing")],
               "index": str(tmp_path / "index.json"), "interpreters": [sys.executable]}
    here = survey_here(request)
    there = json.loads(subprocess.run([sys.executable, "-c", SCRIPT],
                                      input=json.dumps(request).encode(), capture_output=True,
                                      check=True).stdout)
    assert here == there
    found = {item["path"]: item for item in here["venvs"]}
    assert found[str(env_dir)]["dists"] == [{"name": "alpha", "version": "1.0",
                                             "requires": ["gamma>=1"]}]
    assert found[str(env_dir)]["marks"]["project"] == "p"
    assert found[str(tmp_path / "plain")]["cfg"] is None
    assert found[str(tmp_path / "missing")]["exists"] is False
