"""Reading what a dead apply left behind: in-flight objects and tools still running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from decl import platforms
from decl.engine.recovery import kill_leftover_tools, leftovers, read_journal, start_token
from tests.backends import missing_backend


def rec(event, **fields):
    return {"event": event, "run": fields.pop("run", "r1"), **fields}


def test_an_intent_without_outcome_is_in_flight():
    records = [
        rec("run"),
        rec("intent", address="venv.a", host="local", action="create"),
        rec("intent", address="venv.b", host="local", action="create"),
        rec("done", address="venv.b", host="local"),
        rec("intent", address="venv.c", host="nas", action="replace"),
        rec("intent", address="venv.d", host="local", action="update"),
    ]
    assert leftovers(records).in_flight == {("venv.a", "local"): "r1", ("venv.c", "nas"): "r1"}


def test_later_outcomes_and_settled_records_close_entries():
    records = [
        rec("intent", address="venv.a", host="local", action="create"),
        rec("intent", address="venv.b", host="local", action="create"),
        rec("intent", address="venv.c", host="local", action="create"),
        rec("run", run="r2"),
        rec("settled", run="r2", resources=[["venv.b", "local"]]),
        rec("intent", run="r2", address="venv.a", host="local", action="replace"),
        rec("failed", run="r2", address="venv.a", host="local"),
        rec("done", run="r2", address="venv.c", host="other"),  # another host: still open
    ]
    assert leftovers(records).in_flight == {("venv.c", "local"): "r1"}


def test_tools_started_and_never_ended():
    records = [
        rec("process", pid=10, token="5", tool="pip"),
        rec("process", pid=11, token="6", tool="python3"),
        rec("process-end", pid=11),
        rec("process", pid=12, token="7", tool="uv"),
        rec("process-killed", pid=12),
    ]
    assert [p["pid"] for p in leftovers(records).processes] == [10]


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(rec("intent", address="venv.a", host="local", action="create"))
                    + "\n" + '{"event": "done", "addr')
    assert leftovers(read_journal(str(path))).in_flight == {("venv.a", "local"): "r1"}
    assert read_journal(str(tmp_path / "missing")) == []


def test_proc_stat_start_time_is_field_22_counted_after_the_name():
    stat = "4242 (pip (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 " \
           "1000 200"
    assert platforms.parse_proc_stat_start(stat) == "987654"
    assert platforms.parse_proc_stat_start("garbage") is None
    assert platforms.start_token_from(platforms.MACOS, " Tue Dec  1 10:52:22 2026\n") == \
        "Tue Dec 1 10:52:22 2026"
    assert platforms.process_start_probe(platforms.LINUX, 7) == ("file", "/proc/7/stat")
    assert platforms.process_start_probe(platforms.MACOS, 7) == \
        ("run", ["ps", "-o", "lstart=", "-p", "7"])
    assert platforms.process_start_probe(platforms.WINDOWS, 7) is None


def test_only_tools_whose_start_time_still_matches_are_killed():
    killed: list[int] = []
    tokens = {1: "100", 2: "200", 3: None}
    records = [{"pid": 1, "token": "100"}, {"pid": 2, "token": "999"},  # pid reused
               {"pid": 3, "token": "300"}, {"pid": 4, "token": None}]
    done = kill_leftover_tools(records, token_of=tokens.get, kill=killed.append)
    assert killed == [1]
    assert [r["pid"] for r in done] == [1]


def _need_procfs() -> None:
    if not os.path.isdir("/proc/self"):
        missing_backend("procfs", "this test reads /proc (Linux)")


def test_a_real_leftover_tool_is_killed_with_its_group():
    _need_procfs()
    tool = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)
    try:
        token = start_token(tool.pid)
        assert token
        assert kill_leftover_tools([{"pid": tool.pid, "token": token}])
        assert tool.wait(timeout=10) == -signal.SIGKILL
    finally:
        if tool.poll() is None:
            tool.kill()


WATCHED = """
import sys
from decl.connections.reaper import REAPER, run_watched
REAPER.enable()
import threading
threading.Thread(target=run_watched, args=([sys.executable, "-c",
    "import os, time; print(os.getpid(), flush=True); time.sleep(60)"],),
    kwargs=dict(input=None, timeout=None, env=dict(__import__("os").environ), cwd=None),
    daemon=True).start()
import time; time.sleep(60)
"""


def test_the_watchdog_kills_tools_when_decl_is_killed(tmp_path):
    _need_procfs()
    decl = subprocess.Popen([sys.executable, "-c", WATCHED], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        # The tool's stdout is captured by run_watched: find it through its parent instead.
        deadline = time.monotonic() + 20
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 2:
            children = _children_of(decl.pid)
            time.sleep(0.1)
        assert len(children) == 2, children  # the watchdog and the tool
        tool = next(pid for pid in children if b"time.sleep(60)" in _cmdline(pid))
    finally:
        decl.kill()
        decl.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(tool):
        time.sleep(0.1)
    assert not _alive(tool), "the tool outlived decl"


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
