"""The sharing of jump-host connections (decl.connections.ssh_jumps), with a fake opener."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from decl.connections.ssh_jumps import SharedJumps
from decl.errors import ConnectionFailed


class FakeTransport:
    def __init__(self, name: str) -> None:
        self.name, self.active, self.closed = name, True, False

    def is_active(self) -> bool:
        return self.active and not self.closed

    def close(self) -> None:
        self.closed = True


class Opener:
    """Counts its calls; each takes `delay` s; fails with ConnectionFailed while `fail`."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.delay, self.fail = delay, fail
        self.lock = threading.Lock()

    def __call__(self, target: str, via: object) -> FakeTransport:
        with self.lock:
            self.calls.append((target, via))
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionFailed(target, "unreachable", "connection refused")
        return FakeTransport(target)


def test_hosts_at_once_share_one_transport_per_jump_of_the_chain():
    jumps, opener = SharedJumps(), Opener(delay=0.05)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: jumps.acquire(("bastion", "inner-bastion"), opener),
                            range(8)))
    assert len(opener.calls) == 2
    first, second = got[0]
    assert all(g[0] is first and g[1] is second for g in got)
    assert opener.calls[1] == ("inner-bastion", first)  # the second jump goes through the first
    assert jumps.open_count() == 2


def test_the_last_release_closes_the_transports():
    jumps, opener = SharedJumps(), Opener()
    a = jumps.acquire(("bastion",), opener)
    jumps.acquire(("bastion",), opener)
    jumps.release(("bastion",))
    assert not a[0].closed
    jumps.release(("bastion",))
    assert a[0].closed and jumps.open_count() == 0
    b = jumps.acquire(("bastion",), opener)
    assert b[0] is not a[0] and len(opener.calls) == 2


def test_a_dropped_jump_is_opened_again_for_the_next_host():
    jumps, opener = SharedJumps(), Opener()
    first = jumps.acquire(("bastion",), opener)[0]
    first.active = False
    second = jumps.acquire(("bastion",), opener)[0]
    assert second is not first and first.closed and len(opener.calls) == 2


def test_an_unreachable_jump_costs_one_attempt_for_the_hosts_that_waited_for_it():
    jumps, opener = SharedJumps(), Opener(delay=0.3, fail=True)

    def attempt(_: int) -> str:
        with pytest.raises(ConnectionFailed) as caught:
            jumps.acquire(("bastion",), opener)
        return caught.value.detail

    with ThreadPoolExecutor(5) as pool:
        details = list(pool.map(attempt, range(5)))
    assert details == ["connection refused"] * 5
    assert len(opener.calls) == 1
    assert jumps.open_count() == 0
    opener.fail, opener.delay = False, 0.0  # a later host tries again, and gets through
    assert jumps.acquire(("bastion",), opener)[0].is_active()
    assert len(opener.calls) == 2


def test_a_failure_on_the_second_jump_gives_the_first_back():
    jumps = SharedJumps()

    def opener(target: str, via: object) -> FakeTransport:
        if target == "inner-bastion":
            raise ConnectionFailed(target, "unreachable", "no route")
        return FakeTransport(target)

    with pytest.raises(ConnectionFailed):
        jumps.acquire(("bastion", "inner-bastion"), opener)
    assert jumps.open_count() == 0
