"""What `apply` and `destroy` show while changes run.

Two reporters take the executor's events (start, progress, done, failed, skipped,
interrupt): on a terminal with colour, a live display with one row per running change
(spinner, action, elapsed time, a bar when the provider knows a fraction); elsewhere, plain
lines, a "still creating... [10 s elapsed]" line every 10 s for long changes and the
duration of each change when it ends. Finished changes become one line each in both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from decl.core.plan import Action, Change
from decl.render.text import esc

Clock = Callable[[], float]

# "create" -> ("creating", "created"): how a change reads while it runs and once it is done.
VERBS: dict[Action, tuple[str, str]] = {
    Action.CREATE: ("creating", "created"),
    Action.UPDATE: ("updating", "updated"),
    Action.UPDATE_RESTART: ("updating (restart)", "updated with a restart"),
    Action.REPLACE: ("replacing", "replaced"),
    Action.DELETE: ("deleting", "deleted"),
    Action.START: ("starting", "started"),
    Action.STOP: ("stopping", "stopped"),
    Action.ADOPT: ("adopting", "adopted"),
}
STILL_EVERY = 10.0


def running_verb(action: Action) -> str:
    """'creating', 'deleting', ...: the change while it runs."""
    return VERBS.get(action, (action.value, action.value))[0]


def done_verb(action: Action) -> str:
    """'created', 'deleted', ...: the change once it is done."""
    return VERBS.get(action, (action.value, action.value))[1]


def duration_text(seconds: float) -> str:
    """3.2 s, 12 s, 2 min 5 s: short and exact enough for people."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def outcome_line(address: str, action: Action, status: str, seconds: float,
                 message: str = "", width: int = 0) -> str:
    """One finished change as rich markup: "venv.tools: created in 3.2 s"."""
    when = duration_text(seconds)
    head = esc(f"{address}:".ljust(width + 1))
    if status == "done":
        return f"{head} [green]{done_verb(action)}[/] in {when}"
    if status == "failed":
        tail = f": {esc(message)}" if message else ""
        return f"{head} [red]failed[/] after {when}{tail}"
    reason = message[len("skipped: "):] if message.startswith("skipped: ") else message
    return f"{head} [yellow]skipped[/] ({esc(reason)})"


@dataclass
class Running:
    """One change that has started and not yet ended."""

    change: Change
    started: float
    message: str = ""
    fraction: float | None = None
    next_still: float = STILL_EVERY


class _Base:
    """Bookkeeping shared by both reporters: running changes and their start times."""

    def __init__(self, console: Any, clock: Clock = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self.guard = threading.RLock()
        self.running: dict[str, Running] = {}

    def __call__(self, event: str, change: Change, message: str,
                 fraction: float | None) -> None:
        with self.guard:
            if event == "start":
                self.running[change.key] = Running(change, self.clock(), "", None)
                self.started(change)
            elif event == "progress":
                row = self.running.get(change.key)
                if row is not None:
                    row.message = message
                    if fraction is not None:
                        row.fraction = max(0.0, min(1.0, fraction))
                    self.progressed(row, message, fraction)
            elif event in ("done", "failed"):
                row = self.running.pop(change.key, None)
                seconds = self.clock() - row.started if row else 0.0
                self.finished(outcome_line(change.address, change.action, event, seconds,
                                           message))
            elif event == "skipped":
                self.finished(outcome_line(change.address, change.action, "skipped", 0.0,
                                           message))
            elif event == "interrupt":
                self.finished(f"[yellow]{esc(message)}[/]")

    def started(self, change: Change) -> None:
        """A change began."""

    def progressed(self, row: Running, message: str, fraction: float | None) -> None:
        """A running change said how far it is."""

    def finished(self, markup: str) -> None:
        """A change ended: print its line."""
        self.console.print(markup)

    def close(self) -> None:
        """Stop any background work."""


class PlainReporter(_Base):
    """Lines for pipes and CI: start, progress (at most every 0.5 s), still running, end."""

    def __init__(self, console: Any, clock: Clock = time.monotonic,
                 still_every: float = STILL_EVERY, ticker: bool = True) -> None:
        super().__init__(console, clock)
        self.still_every = still_every
        self._last_progress: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if ticker:
            self._thread = threading.Thread(target=self._tick_loop, name="decl-still",
                                            daemon=True)
            self._thread.start()

    def started(self, change: Change) -> None:
        self.console.print(f"{esc(change.address)}: {change.action.value}...")
        self.running[change.key].next_still = self.still_every

    def progressed(self, row: Running, message: str, fraction: float | None) -> None:
        now = self.clock()
        key = row.change.key
        if now - self._last_progress.get(key, -1e9) < 0.5 and fraction not in (None, 1.0):
            return
        self._last_progress[key] = now
        pct = f" {fraction * 100:.0f}%" if fraction is not None else ""
        self.console.print(f"{row.change.address}: {message}{pct}", markup=False)

    def tick(self) -> None:
        """Print "still creating... [10 s elapsed]" for each change past its next 10 s."""
        with self.guard:
            now = self.clock()
            for row in self.running.values():
                elapsed = now - row.started
                if elapsed >= row.next_still:
                    shown = int(elapsed // self.still_every * self.still_every)
                    self.console.print(f"{esc(row.change.address)}: still "
                                       f"{running_verb(row.change.action)}... "
                                       f"\\[{shown} s elapsed]")
                    row.next_still = shown + self.still_every

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.5):
            self.tick()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


class LiveReporter(_Base):
    """A rich Live display: a row per running change; finished ones print above it.

    Lines are printed, and the display started, outside the bookkeeping lock: the display's
    refresh thread takes its own lock, then ours (to read the rows), never the other way.
    """

    def __init__(self, console: Any, clock: Clock = time.monotonic, start: bool = True) -> None:
        super().__init__(console, clock)
        self._spinners: dict[str, Any] = {}
        self.live: Any = None
        self._use_live = start
        self._want_live = False
        self._closed = False
        self._pending: list[str] = []
        self._printing = threading.Lock()

    def __call__(self, event: str, change: Change, message: str,
                 fraction: float | None) -> None:
        super().__call__(event, change, message, fraction)
        self._flush()

    def started(self, change: Change) -> None:
        # The display starts with the first change: the plan and the question come before.
        self._want_live = self._use_live

    def finished(self, markup: str) -> None:
        self._pending.append(markup)

    def _flush(self) -> None:
        with self._printing:
            with self.guard:
                lines, self._pending = self._pending, []
                start = self._want_live and self.live is None and not self._closed
            if start:
                from rich.live import Live

                self.live = Live(console=self.console, refresh_per_second=8, transient=True,
                                 get_renderable=self.renderable, redirect_stdout=False,
                                 redirect_stderr=False)
                self.live.start()
            for line in lines:
                self.console.print(line)

    def renderable(self) -> Any:
        """The rows of the running changes, as a rich renderable."""
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        with self.guard:
            rows = sorted(self.running.values(), key=lambda r: r.started)
            now = self.clock()
            address_width = max((len(r.change.address) for r in rows), default=0)
            verb_width = max((len(running_verb(r.change.action)) for r in rows), default=0)
            # What is left for the message once the other columns have their width.
            room = self.console.width - (2 + address_width + verb_width + 7 + 21 + 5 + 1)
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True, width=1)
            grid.add_column(no_wrap=True, min_width=address_width)
            grid.add_column(no_wrap=True, min_width=verb_width)
            grid.add_column(no_wrap=True, width=6, justify="right")
            grid.add_column(no_wrap=True, width=20)
            grid.add_column(no_wrap=True, width=4, justify="right")
            grid.add_column(no_wrap=True, overflow="ellipsis", style="dim")
            for row in rows:
                key = row.change.key
                spinner = self._spinners.setdefault(key, Spinner("dots", style="cyan"))
                bar: Any = Text("")
                pct = Text("")
                if row.fraction is not None:
                    bar = ProgressBar(total=1.0, completed=row.fraction, width=20)
                    pct = Text(f"{row.fraction * 100:.0f}%")
                message = Text(row.message)
                message.truncate(max(room, 8), overflow="ellipsis")
                grid.add_row(spinner, Text(row.change.address, style="bold"),
                             Text(running_verb(row.change.action)),
                             Text(duration_text(now - row.started), style="yellow"),
                             bar, pct, message)
            for gone in set(self._spinners) - {r.change.key for r in rows}:
                del self._spinners[gone]
            return grid

    def close(self) -> None:
        with self._printing:
            self._closed = True
            if self.live is not None:
                self.live.stop()


def make_reporter(color: bool | None) -> Any:
    """The live display on a colour terminal, plain lines otherwise (pipes, NO_COLOR)."""
    import os

    from decl.render.console import make_console

    console = make_console(color=color)
    live = console.is_terminal and console.color_system is not None and \
        os.environ.get("TERM") != "dumb"
    return LiveReporter(console) if live else PlainReporter(console)
