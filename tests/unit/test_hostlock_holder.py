"""Whether a host lock's holder is a decl of this machine that has ended (pure parts)."""

from __future__ import annotations

import json

import pytest

from decl.connections.hostlock import holder_has_ended, local_process_ended


def _raises(exc: BaseException | None):
    def probe(pid: int, signal: int) -> None:
        assert signal == 0
        if exc is not None:
            raise exc
    return probe


@pytest.mark.parametrize(("exc", "ended"), [
    (None, False), (ProcessLookupError(), True), (PermissionError(), False)])
def test_a_local_process_has_ended_only_when_the_kernel_says_no_such_process(exc, ended):
    assert local_process_ended(42, windows=False, probe=_raises(exc)) is ended


def test_on_windows_no_process_is_probed():
    def probe(pid: int, signal: int) -> None:
        raise AssertionError("os.kill would end the process on Windows")
    assert local_process_ended(42, windows=True, probe=probe) is False


@pytest.mark.parametrize(("holder", "ended"), [
    ({"pid": 7, "host": "me"}, True),
    ({"pid": 7, "host": "other"}, False),
    ({"pid": 8, "host": "me"}, False),
    ({"pid": "7", "host": "me"}, False),
    ({"host": "me"}, False),
])
def test_a_holder_has_ended_when_it_is_a_dead_decl_of_this_machine(holder, ended):
    assert holder_has_ended(json.dumps(holder), "me", lambda pid: pid == 7) is ended


def test_an_unreadable_holder_has_not_ended():
    assert holder_has_ended("not json", "me", lambda pid: True) is False
