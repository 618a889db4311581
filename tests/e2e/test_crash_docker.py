"""Kill decl with SIGKILL at random points of an apply of containers, a network and a volume:
the next apply converges to exactly the manifest (no extra object on the engine) and a third
plan is empty. Containers, networks and volumes carry their labels from the create call on,
so nothing decl makes is ever unmarked."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.docker_engine import docker_engine  # noqa: F401 - a fixture
from tests.e2e.crash_helpers import CrashStats, decl_argv, kill_apply_after, plan_actions
from tests.e2e.docker_helpers import busybox, decl, write_manifest

pytestmark = [pytest.mark.backend("docker"), pytest.mark.crash]
STATS = CrashStats()
NAMES = ["c1", "c2", "c3", "c4"]


@pytest.fixture(scope="module")
def engine(docker_engine):  # noqa: F811
    return docker_engine


def _objects(engine, kind: str) -> list[str]:
    """Names of this project's objects of a kind on the engine (containers, networks...)."""
    listing = ["ps", "-a"] if kind == "container" else [kind, "ls"]
    done = engine.docker(*listing, "--filter", "label=io.decl.project=crashdock",
                         "--format", "{{.Names}}" if kind == "container" else "{{.Name}}")
    return sorted(line for line in done.stdout.decode().split() if line)


def test_kill_during_docker_apply_then_converge(engine):
    @settings(max_examples=5, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(delay=st.floats(min_value=0.05, max_value=4.0))
    def run(delay: float) -> None:
        with tempfile.TemporaryDirectory(prefix="decl-crash-") as tmp:
            manifest = write_manifest(
                os.path.join(tmp, "decl.yaml"), "crashdock",
                networks={"crashnet": {}}, volumes={"crashvol": {}},
                containers={name: busybox(networks=["crashnet"],
                                          volumes=[f"crashvol:/data/{name}"])
                            for name in NAMES})
            env = {**os.environ, "DECL_STATE_DIR": os.path.join(tmp, "state"),
                   "NO_COLOR": "1"}
            STATS.kills += 1
            STATS.delays.append(delay)
            kill_apply_after(decl_argv("apply", "-y", "-f", manifest), env, delay)

            os.environ["DECL_STATE_DIR"] = env["DECL_STATE_DIR"]
            done = decl("apply", "-y", "--json", "-f", manifest)
            assert done.returncode == 0, done.stdout + done.stderr
            actions = plan_actions(done)
            assert all(a["action"] != "conflict" for a in actions), actions
            STATS.finished_in_flight += sum(1 for a in actions if a["in_flight"]
                                     and a["action"] != "create")
            again = decl("plan", "--detailed-exitcode", "-f", manifest)
            assert again.returncode == 0, again.stdout + again.stderr
            assert _objects(engine, "container") == NAMES
            assert _objects(engine, "network") == ["crashnet"]
            assert _objects(engine, "volume") == ["crashvol"]
            for name in NAMES:
                state = json.loads(engine.docker("inspect", name).stdout)[0]["State"]
                assert state["Running"], name
            destroyed = decl("destroy", "-y", "-f", manifest, "--prune")
            assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
            STATS.converged += 1
        print(STATS.line("docker"))

    run()
