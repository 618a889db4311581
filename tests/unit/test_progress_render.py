"""The apply reporters: plain lines with "still ..." every 10 s, the live rows, durations."""

from __future__ import annotations

import io

from rich.console import Console

from decl.core.plan import Action, Change
from decl.engine.executor import Outcome, Summary
from decl.render.progress import LiveReporter, PlainReporter, duration_text, make_reporter
from decl.render.text import summary_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def change(address: str = "venv.tools", action: Action = Action.CREATE) -> Change:
    kind, name = address.split(".")
    return Change(address, kind, name, "venv", "local", action, "cause")


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, color_system=None, force_terminal=False, width=200,
                   highlight=False), out


def test_plain_lines_say_still_running_every_ten_seconds_and_the_duration():
    console, out = plain_console()
    clock = Clock()
    report = PlainReporter(console, clock=clock, ticker=False)
    tools = change()
    report("start", tools, "", None)
    clock.now += 9.9
    report.tick()
    assert "still" not in out.getvalue()
    clock.now += 0.2
    report.tick()
    report.tick()  # the same ten seconds is said once
    clock.now += 10
    report.tick()
    clock.now += 2.5
    report("done", tools, "", None)
    lines = out.getvalue().splitlines()
    assert lines == ["venv.tools: create...",
                     "venv.tools: still creating... [10 s elapsed]",
                     "venv.tools: still creating... [20 s elapsed]",
                     "venv.tools: created in 23 s"]


def test_plain_progress_is_throttled_but_the_last_fraction_shows():
    console, out = plain_console()
    clock = Clock()
    report = PlainReporter(console, clock=clock, ticker=False)
    pull = change("container.web")
    report("start", pull, "", None)
    report("progress", pull, "pulling busybox", 0.1)
    clock.now += 0.1
    report("progress", pull, "pulling busybox", 0.5)  # within 0.5 s: dropped
    report("progress", pull, "pulled busybox", 1.0)   # the end always shows
    clock.now += 1
    report("failed", pull, "the engine said no", None)
    assert out.getvalue().splitlines() == [
        "container.web: create...", "container.web: pulling busybox 10%",
        "container.web: pulled busybox 100%",
        "container.web: failed after 1.1 s: the engine said no"]


def test_live_rows_show_spinner_action_elapsed_and_a_bar_only_when_a_fraction_is_known():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=120,
                      highlight=False)
    clock = Clock()
    report = LiveReporter(console, clock=clock, start=False)
    web, tools = change("container.web"), change("venv.tools", Action.DELETE)
    report("start", web, "", None)
    report("start", tools, "", None)
    clock.now += 3.25
    report("progress", web, "pulling busybox: 1.0 MiB of 4.0 MiB", 0.25)
    render = Console(file=io.StringIO(), width=120, color_system=None)
    with render.capture() as capture:
        render.print(report.renderable())
    rows = capture.get().splitlines()
    assert len(rows) == 2
    assert "container.web" in rows[0] and "creating" in rows[0] and "3.2 s" in rows[0]
    assert " 25%" in rows[0] and "━" in rows[0] and "1.0 MiB of 4.0 MiB" in rows[0]
    assert "venv.tools" in rows[1] and "deleting" in rows[1] and "%" not in rows[1]
    report("done", web, "", None)
    assert "container.web: created in 3.2 s" in out.getvalue()
    with render.capture() as capture:
        render.print(report.renderable())
    assert "container.web" not in capture.get()


def test_durations_read_well():
    assert duration_text(3.21) == "3.2 s"
    assert duration_text(12.4) == "12 s"
    assert duration_text(125) == "2 min 5 s"
    assert duration_text(120) == "2 min"


def test_the_summary_lists_every_change_with_its_duration():
    summary = Summary([Outcome(change("venv.tools"), "done", "", 3.2),
                       Outcome(change("container.db", Action.DELETE), "failed", "no", 1.0),
                       Outcome(change("venv.x"), "skipped", "skipped: venv.tools", 0.0)])
    lines = summary_text(summary)
    text = "\n".join(lines)
    assert "[green]  +[/] venv.tools:   [green]created[/] in 3.2 s" in text
    assert "container.db: [red]failed[/] after 1.0 s" in text
    assert lines[-1].endswith("Apply: 1 done, 1 failed, 1 skipped.[/]")


def test_no_terminal_or_no_color_gives_plain_lines_without_escape_codes(monkeypatch, capsys):
    monkeypatch.setenv("NO_COLOR", "1")
    report = make_reporter(None)
    try:
        assert isinstance(report, PlainReporter)
        report("start", change(), "", None)
        report("done", change(), "", None)
    finally:
        report.close()
    assert "\x1b" not in capsys.readouterr().out


def test_skipped_changes_get_a_line_with_the_reason():
    console, out = plain_console()
    report = PlainReporter(console, ticker=False)
    report("skipped", change("venv.late"), "skipped: venv.tools did not succeed", None)
    assert out.getvalue() == "venv.late: skipped (venv.tools did not succeed)\n"
