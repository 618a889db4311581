"""A no-op `decl apply -y --parallelism 1` on containers always ends cleanly.

Issue 14 saw one such run print "No changes." and then `FATAL: exception not rethrown`,
exit 134: a thread of decl's (a provider's warm-up) still running while the interpreter
shut down. The run is repeated here, since the failure came once in many; bench/run.py
repeats it 200 times (`--stability-runs`) and counts the exit codes.
"""

from __future__ import annotations

import pytest

from tests.docker_engine import docker_engine  # noqa: F401 - session fixture
from tests.e2e.docker_helpers import apply, busybox, decl, write_manifest

pytestmark = pytest.mark.backend("docker")

CONTAINERS = 20
RUNS = 25


def test_noop_apply_at_parallelism_one_never_aborts(tmp_path, docker_engine):  # noqa: F811
    project = "noopexit"
    manifest = write_manifest(
        str(tmp_path / "decl.yaml"), project,
        networks={f"{project}-net": {}},
        containers={f"{project}-{i:02d}": busybox(networks=[f"{project}-net"])
                    for i in range(CONTAINERS)})
    apply(manifest)
    try:
        codes = []
        for _ in range(RUNS):
            done = decl("apply", "-y", "--parallelism", "1", "-f", manifest)
            codes.append(done.returncode)
            assert "FATAL" not in done.stderr, done.stderr
            assert "No changes." in done.stdout, done.stdout + done.stderr
        assert codes == [0] * RUNS
    finally:
        decl("destroy", "-y", "-f", manifest)
