"""Warm-up work (providers importing heavy libraries) run in threads during discovery.

Every thread is joined before the session ends: a thread still inside a C call (an import
of the docker SDK, say) while the interpreter finalises can abort the process (signal 6,
"FATAL: exception not rethrown"). A warm-up that fails changes nothing (apply will say what
is wrong); its exception is logged, shown under --debug.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("decl.warmup")

# How long close() waits for one warm-up; an import takes well under a second.
JOIN_TIMEOUT = 120.0


class WarmUps:
    """Start warm-up threads; join them all (once) before exit."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.failures: dict[str, BaseException] = {}

    def start(self, name: str, function: Callable[[], None]) -> None:
        """Run `function` in a (non-daemon) thread named after `name`."""
        thread = threading.Thread(target=self._run, args=(name, function),
                                  name=f"decl-prepare-{name}", daemon=False)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _run(self, name: str, function: Callable[[], None]) -> None:
        try:
            function()
        except Exception as exc:  # noqa: BLE001 - a warm-up that fails changes nothing
            with self._lock:
                self.failures[name] = exc
            log.debug("warm-up of provider %s failed: %s: %s", name, type(exc).__name__, exc,
                      exc_info=exc)

    def join(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Wait for every warm-up thread; one still running after `timeout` is logged."""
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s is still running after %.0f s", thread.name, timeout)
