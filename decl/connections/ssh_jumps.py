"""Jump-host connections shared by every host reached through the same jump chain.

Each host behind a bastion used to open its own SSH connection to the bastion, so a fleet
of 16 hosts discovered at once made 16 simultaneous logins there, past OpenSSH's default
`MaxStartups 10:30:100` (from the 11th unauthenticated connection on, sshd drops 30% of new
ones, more as they grow). Now one connection per jump chain carries a direct-tcpip channel
to every host (a channel, not a session: `MaxSessions` does not count it).

A connection is opened by the first host that needs it, while the others wait; it is closed
when the last host using it lets it go, and reopened when it has dropped. A failure is
shared with the hosts that were waiting for that same attempt, so an unreachable bastion
costs one timeout, not one per host.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Opener = Callable[[Any, Any], Any]  # (jump target, transport to go through or None) -> transport


@dataclass
class _Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    transport: Any = None
    users: int = 0
    failed_at: float = 0.0
    error: BaseException | None = None


class SharedJumps:
    """Jump transports keyed by their chain (the jump targets up to and including them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: dict[tuple[Any, ...], _Shared] = {}

    def acquire(self, chain: tuple[Any, ...], opener: Opener) -> list[Any]:
        """The transports of each jump of `chain`, in order, one use of each taken.

        Raises what `opener` raised (its first jump's failure), with every use taken so far
        given back."""
        taken: list[tuple[Any, ...]] = []
        transports: list[Any] = []
        try:
            for depth in range(1, len(chain) + 1):
                key = chain[:depth]
                via = transports[-1] if transports else None
                transports.append(self._take(key, functools.partial(opener, key[-1], via)))
                taken.append(key)
        except BaseException:
            self._give_back(taken)
            raise
        return transports

    def release(self, chain: tuple[Any, ...]) -> None:
        """Give back one use of each jump of `chain`; the last user's release closes it."""
        self._give_back([chain[:depth] for depth in range(1, len(chain) + 1)])

    def open_count(self) -> int:
        """How many jump transports are open now (for tests)."""
        with self._lock:
            return sum(1 for s in self._shared.values() if s.transport is not None)

    def _take(self, key: tuple[Any, ...], open_one: Callable[[], Any]) -> Any:
        asked_at = time.monotonic()
        with self._lock:
            shared = self._shared.setdefault(key, _Shared())
            shared.users += 1
        try:
            with shared.lock:
                if shared.transport is not None and shared.transport.is_active():
                    return shared.transport
                if shared.error is not None and shared.failed_at >= asked_at:
                    # the attempt this caller waited for failed: its error, not a retry
                    raise shared.error
                if shared.transport is not None:
                    shared.transport.close()
                    shared.transport = None
                try:
                    shared.transport = open_one()
                except BaseException as exc:
                    shared.error, shared.failed_at = exc, time.monotonic()
                    raise
                shared.error = None
                return shared.transport
        except BaseException:
            self._give_back([key])
            raise

    def _give_back(self, keys: list[tuple[Any, ...]]) -> None:
        closing = []
        with self._lock:
            for key in reversed(keys):  # the deepest first: it runs through the others
                shared = self._shared.get(key)
                if shared is None:
                    continue
                shared.users -= 1
                if shared.users <= 0:
                    del self._shared[key]
                    if shared.transport is not None:
                        closing.append(shared.transport)
        for transport in closing:
            transport.close()


JUMPS = SharedJumps()
