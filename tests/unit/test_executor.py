"""The executor with an in-memory provider: order, parallelism, verification, failures."""

from __future__ import annotations

import threading
import time

from decl.connections.pool import ConnectionPool
from decl.core.plan import Action
from decl.core.planner import PlanOptions, plan
from decl.core.resource import Desired, Observed, Snapshot
from decl.core.traits import KindTraits, Policy
from decl.engine.executor import Executor
from decl.engine.statedir import Journal
from decl.errors import ProviderError
from decl.providers.base import Availability, Discovery, Provider

TRAITS = KindTraits(policies={"size": Policy.LIVE}, has_run_state=False)


class MemoryProvider(Provider):
    """Objects in a dict; knobs to fail, to not converge, and to record timing."""

    name = "mem"
    kinds = ("venv",)
    traits = {"venv": TRAITS}

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.fail: set[str] = set()
        self.stubborn: set[str] = set()
        self.log: list[tuple[str, str, float, float]] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0

    def check(self, conn):
        return Availability(True, "1")

    def discover(self, conn, project, wanted):
        found = Discovery()
        for address, obj in self.objects.items():
            found.observed.append(Observed(address=address, kind="venv",
                                           name=address.split(".")[1], provider="mem",
                                           host="local", state="present", spec=dict(obj["spec"]),
                                           marks=obj["marks"]))
        return found

    def create(self, op):
        self._work(op)

    def update(self, op):
        self._work(op)

    def delete(self, op):
        self._work(op)

    def _work(self, op):
        change = op.change
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        start = time.monotonic()
        try:
            time.sleep(self.delay)
            if change.address in self.fail:
                raise ProviderError(f"{change.address}: the tool said no")
            if change.action is Action.DELETE:
                self.objects.pop(change.address, None)
            else:
                spec = dict(op.desired.spec)
                if change.address in self.stubborn:
                    spec["size"] = 1
                self.objects[change.address] = {"spec": spec, "marks": op.marks()}
        finally:
            with self.lock:
                self.running -= 1
            self.log.append((change.address, change.action.value, start, time.monotonic()))


class Registry:
    def __init__(self, provider):
        self.provider = provider

    def get(self, name):
        return self.provider


def desired(name: str, size: int = 2, deps: tuple[str, ...] = ()) -> Desired:
    return Desired(address=f"venv.{name}", kind="venv", name=name, provider="mem",
                   host="local", state="present", spec={"size": size}, depends_on=deps)


def run(provider: MemoryProvider, items: list[Desired], tmp_path, parallelism: int = 4):
    snapshot = Snapshot(observed=tuple(provider.discover(None, "p", items).observed))
    result = plan("p", items, snapshot, {("mem", "venv"): TRAITS}, PlanOptions())
    executor = Executor(result, Registry(provider), ConnectionPool(), {("mem", "venv"): TRAITS},
                        parallelism=parallelism, journal=Journal("p", "test"))
    return executor.run()


def test_dependencies_run_first_and_independent_work_in_parallel(tmp_path):
    provider = MemoryProvider()
    provider.delay = 0.2
    items = [desired("base"), desired("app", deps=("venv.base",)), desired("x"), desired("y")]
    summary = run(provider, items, tmp_path)
    assert summary.ok
    ends = {address: end for address, _, _, end in provider.log}
    starts = {address: start for address, _, start, _ in provider.log}
    assert starts["venv.app"] >= ends["venv.base"]
    assert provider.max_running >= 2


def test_parallelism_one_runs_one_at_a_time(tmp_path):
    provider = MemoryProvider()
    provider.delay = 0.05
    summary = run(provider, [desired(n) for n in "abcd"], tmp_path, parallelism=1)
    assert summary.ok and provider.max_running == 1


def test_failure_skips_dependents_only(tmp_path):
    provider = MemoryProvider()
    provider.fail = {"venv.base"}
    items = [desired("base"), desired("app", deps=("venv.base",)),
             desired("top", deps=("venv.app",)), desired("free")]
    summary = run(provider, items, tmp_path)
    status = {o.change.address: (o.status, o.message) for o in summary.outcomes}
    assert status["venv.base"] == ("failed", "venv.base: the tool said no")
    assert status["venv.app"] == ("skipped", "skipped: venv.base did not succeed")
    assert status["venv.top"][0] == "skipped"
    assert status["venv.free"] == ("done", "")
    assert set(provider.objects) == {"venv.free"}


def test_a_change_that_does_not_converge_fails_naming_the_field(tmp_path):
    provider = MemoryProvider()
    provider.stubborn = {"venv.a"}
    summary = run(provider, [desired("a", size=2)], tmp_path)
    (outcome,) = summary.outcomes
    assert outcome.status == "failed"
    assert outcome.message == "did not converge: size is 1, wanted 2"


def test_journal_records_intent_and_outcome(tmp_path, isolated_state):
    import json

    provider = MemoryProvider()
    provider.fail = {"venv.b"}
    run(provider, [desired("a"), desired("b")], tmp_path)
    lines = [json.loads(line) for line in
             (isolated_state / "journal" / "p.jsonl").read_text().splitlines()]
    events = sorted((r["event"], r["address"]) for r in lines)
    assert events == [("done", "venv.a"), ("failed", "venv.b"), ("intent", "venv.a"),
                      ("intent", "venv.b")]


def test_warm_ups_are_joined_and_their_failures_logged(caplog):
    import logging

    from decl.engine.warmup import WarmUps

    finished = threading.Event()

    def slow():
        time.sleep(0.3)
        finished.set()

    def broken():
        raise RuntimeError("no such module")

    warmups = WarmUps()
    with caplog.at_level(logging.DEBUG, logger="decl"):
        warmups.start("slow", slow)
        warmups.start("broken", broken)
        warmups.join()
    assert finished.is_set()  # join waited for the slow one
    assert not any(t.name.startswith("decl-prepare-") for t in threading.enumerate())
    assert isinstance(warmups.failures["broken"], RuntimeError)
    assert "warm-up of provider broken failed: RuntimeError: no such module" in caplog.text
