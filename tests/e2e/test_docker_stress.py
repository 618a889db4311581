"""plan / apply / destroy against a real dockerd, 50 times: the process always ends normally.

A warm-up thread left inside a C call (the docker SDK's import) at interpreter exit once made
`decl destroy` die with signal 6 and "FATAL: exception not rethrown"; warm-ups are joined
before exit now. Every run must end with its own exit code, never a signal.
"""

from __future__ import annotations

import pytest

from tests.docker_engine import docker_engine  # noqa: F401 - session fixture
from tests.e2e.docker_helpers import busybox, decl, write_manifest

pytestmark = pytest.mark.backend("docker")

ROUNDS = 50


def check(done, command: str, round_: int) -> None:
    text = done.stdout + done.stderr
    assert done.returncode >= 0, f"round {round_}: `decl {command}` died of signal " \
        f"{-done.returncode}: {text}"
    assert "FATAL" not in text and "Traceback" not in text, f"round {round_}: {text}"
    assert done.returncode in (0, 2), f"round {round_}: `decl {command}`: {text}"


def test_plan_apply_destroy_fifty_times(tmp_path, docker_engine):  # noqa: F811
    project = "stress"
    manifest = write_manifest(
        str(tmp_path / "decl.yaml"), project,
        containers={f"{project}-web": busybox(networks=[f"{project}-net"])},
        networks={f"{project}-net": {}},
    )
    for round_ in range(ROUNDS):
        check(decl("plan", "--detailed-exitcode", "-f", manifest), "plan", round_)
        check(decl("apply", "-y", "-f", manifest), "apply", round_)
        check(decl("destroy", "-y", "-f", manifest), "destroy", round_)
    done = decl("plan", "--detailed-exitcode", "-f", manifest)
    assert done.returncode == 2, done.stdout + done.stderr  # all gone: everything to create
