"""Which changes warm up the docker SDK (its import costs about 0.2 s of CPU)."""

from __future__ import annotations

import threading

import pytest

from decl.connections.local import LocalConnection
from decl.core.plan import Action, Change
from decl.engine.session import Session
from decl.engine.warmup import WarmUps
from decl.providers.docker.provider import DockerProvider


def change(action: Action, provider: str = "docker") -> Change:
    return Change(address="container.web", kind="container", name="web", provider=provider,
                  host="local", action=action, cause="")


@pytest.fixture
def local_socket(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")


def test_a_create_on_a_local_socket_needs_no_sdk_but_every_other_change_does(local_socket):
    provider = DockerProvider()
    conn = LocalConnection()
    assert not provider.needs_prepare(change(Action.CREATE), conn)
    for action in (Action.REPLACE, Action.UPDATE, Action.DELETE, Action.ADOPT):
        assert provider.needs_prepare(change(action), conn), action


def test_a_create_on_an_engine_reached_over_tcp_needs_the_sdk(monkeypatch):
    # nothing listens on port 1: the SDK client cannot even be made, and the warm-up is
    # still wanted (the apply will say what is wrong)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert DockerProvider().needs_prepare(change(Action.CREATE), LocalConnection())


class _Recorder:
    """A provider whose warm-up records that it ran."""

    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted
        self.prepared = threading.Event()

    def needs_prepare(self, change: Change, conn: object) -> bool:
        return self.wanted

    def prepare(self) -> None:
        self.prepared.set()


class _Registry:
    def __init__(self, providers: dict[str, _Recorder]) -> None:
        self.providers = providers

    def get(self, name: str) -> _Recorder:
        return self.providers[name]


class _Pool:
    def get(self, host: str) -> LocalConnection:
        return LocalConnection()


def test_the_session_warms_up_only_providers_whose_changes_need_it():
    needed, not_needed, idle = _Recorder(True), _Recorder(False), _Recorder(True)
    session = Session.__new__(Session)
    session.registry = _Registry({"a": needed, "b": not_needed, "c": idle})
    session.pool = _Pool()
    session.warmups = WarmUps()
    session.prepare_providers([change(Action.CREATE, "a"), change(Action.CREATE, "b")])
    session.warmups.join()
    assert needed.prepared.is_set()
    assert not not_needed.prepared.is_set()
    assert not idle.prepared.is_set()  # no change of its own: a no-op plan warms nothing up
