"""`--discovery-parallelism`: how many (provider, host) groups discover at once."""

from __future__ import annotations

import threading
import time

from click.testing import CliRunner

from decl.cli import cli
from decl.core.resource import Desired
from decl.engine import snapshot


def desired_on(host: str) -> Desired:
    return Desired(address=f"venv.{host}", kind="venv", name=host, provider="venv", host=host,
                   state="present",
                   spec={}, model=None)


def test_groups_discover_in_parallel_up_to_the_bound(monkeypatch):
    running = 0
    most = 0
    lock = threading.Lock()

    def discover_group(project, provider, host, items, registry, pool):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return [], {}, None, False

    monkeypatch.setattr(snapshot, "discover_group", discover_group)
    hosts = [desired_on(f"h{i}") for i in range(12)]
    monkeypatch.setattr(snapshot, "DISCOVERY_PARALLELISM", [16])
    snapshot.set_discovery_parallelism(3)
    snapshot.take_snapshot("p", hosts, registry=None, pool=None)  # type: ignore[arg-type]
    assert most == 3
    most = 0
    snapshot.set_discovery_parallelism(12)
    snapshot.take_snapshot("p", hosts, registry=None, pool=None)  # type: ignore[arg-type]
    assert most > 3


def test_the_option_is_checked_and_sets_the_bound(monkeypatch, tmp_path):
    monkeypatch.setattr(snapshot, "DISCOVERY_PARALLELISM", [16])
    bad = CliRunner().invoke(cli, ["plan", "--discovery-parallelism", "0", "-f",
                                   str(tmp_path / "none.yaml")])
    assert bad.exit_code == 2 and "discovery-parallelism" in bad.output
    CliRunner().invoke(cli, ["plan", "--discovery-parallelism", "40", "-f",
                             str(tmp_path / "none.yaml")])
    assert snapshot.DISCOVERY_PARALLELISM == [40]
