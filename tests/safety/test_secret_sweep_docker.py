"""Secret sweep against the tests' own dockerd: secrets in env, labels and a failing image
name; plan, --json, --out, apply, an update, status, errors, --debug and the journal hold
no spelling of any secret."""

from __future__ import annotations

import json

import pytest

from tests.docker_engine import docker_engine  # noqa: F401 - session fixture
from tests.e2e.docker_helpers import busybox
from tests.safety.test_secret_argv_sweep import command_lines  # noqa: F401 - a fixture
from tests.safety.test_secret_sweep import SECRETS, _hits, _run

pytestmark = pytest.mark.backend("docker")


def test_docker_plan_apply_update_status_journal(docker_engine, tmp_path,  # noqa: F811
                                                monkeypatch, command_lines):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    names = list(SECRETS)
    env = {f"E{i}": f"{{{{ secret('{name}') }}}}" for i, name in enumerate(names)}
    labels = {"sweep.token": f"x-{{{{ secret('{names[0]}') | urlencode }}}}"}
    manifest = {"version": 1, "project": "sweepdocker",
                "containers": {"sweep-c": busybox(env=env, labels=labels)}}
    (tmp_path / "m.yaml").write_text(json.dumps(manifest))
    outputs = []
    for args in (["plan", "-f", "m.yaml"], ["plan", "-f", "m.yaml", "--json"],
                 ["plan", "-f", "m.yaml", "--out", "p.json"], ["apply", "p.json"],
                 ["status", "-f", "m.yaml"], ["status", "-f", "m.yaml", "--json"]):
        code, output = _run(args)
        assert code in (0, 2), (args, output)
        outputs.append(output)
    # an update: the env values swap secrets
    manifest["containers"]["sweep-c"]["env"] = {
        key: f"{{{{ secret('{names[(i + 1) % len(names)]}') }}}}"
        for i, key in enumerate(env)}
    (tmp_path / "m.yaml").write_text(json.dumps(manifest))
    code, planned = _run(["plan", "-f", "m.yaml", "--json"])
    changed = [f for c in json.loads(planned)["changes"] for f in c["fields"]]
    assert changed and all(f["sensitive"] for f in changed if f["path"].startswith("env")), \
        changed
    outputs.append(planned)
    for args in (["plan", "-f", "m.yaml"], ["apply", "-y", "-f", "m.yaml"],
                 ["--debug", "plan", "-f", "m.yaml"]):
        outputs.append(_run(args)[1])
    # an error: a secret in the image name
    manifest["containers"]["sweep-c"]["image"] = f"nope/{{{{ secret('{names[2]}') }}}}:1"
    (tmp_path / "m.yaml").write_text(json.dumps(manifest))
    for args in (["plan", "-f", "m.yaml"], ["--debug", "apply", "-y", "-f", "m.yaml"]):
        outputs.append(_run(args)[1])
    manifest["containers"]["sweep-c"]["image"] = "decl-test/busybox:1"
    (tmp_path / "m.yaml").write_text(json.dumps(manifest))
    outputs.append(_run(["destroy", "-y", "-f", "m.yaml"])[1])
    texts = outputs + [(tmp_path / "p.json").read_text()]
    import os

    state = os.environ["DECL_STATE_DIR"]
    for root, _, files in os.walk(state):
        texts += [open(os.path.join(root, f), errors="replace").read() for f in files
                  if f != "plan-key"]
    hits = [hit for text in texts for hit in _hits(text)]
    assert hits == [], hits
    # the env reaches the engine through its API, never a command line
    assert [line for line in command_lines if _hits(line)] == []
