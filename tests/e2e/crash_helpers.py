"""Kill decl mid-apply with SIGKILL, then check that what it left behind converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field


@dataclass
class CrashStats:
    """Kills tried and what the next apply had to do, for the closing note."""

    kills: int = 0
    converged: int = 0
    finished_in_flight: int = 0
    incomplete_finished: int = 0
    leftover_tools: int = 0
    delays: list[float] = field(default_factory=list)

    def line(self, provider: str) -> str:
        """One line for the test log."""
        return (f"crash[{provider}]: {self.kills} kills, {self.converged} converged, "
                f"{self.finished_in_flight} half-made objects re-made (in flight), "
                f"{self.incomplete_finished} unfinished objects finished, "
                f"{self.leftover_tools} tools outlived decl; delays "
                f"{', '.join(f'{d:.2f}' for d in self.delays)} s")


def kill_apply_after(argv: list[str], env: dict[str, str], delay: float) -> int:
    """Start `decl apply`, SIGKILL it after `delay` seconds; its exit code (or -9)."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (a temp dir of the test)."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def wait_for_no_tools(text: str, timeout: float = 15.0) -> list[str]:
    """Wait until no process mentions `text`; what is still there after `timeout`."""
    deadline = time.monotonic() + timeout
    left = processes_mentioning(text)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_mentioning(text)
    return left


def decl_argv(*args: str) -> list[str]:
    """This checkout's decl."""
    return [sys.executable, "-m", "decl", *args]


def plan_actions(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """(address, action, in_flight, origin) of an `apply --json` document's plan."""
    document = json.loads(done.stdout)
    return [{"address": c["address"], "action": c["action"], "in_flight": c.get("in_flight"),
             "origin": c.get("origin")} for c in document["plan"]["changes"]]


def processes_with_env(name: str, value: str) -> list[str]:
    """Command lines of live processes whose environment has NAME=VALUE (fake CLIs)."""
    found = []
    wanted = f"{name}={value}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if wanted in environ and state != "Z" and b"pytest" not in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def kill_then_converge(env: dict[str, str], manifest: str, delay: float, stats: CrashStats,
                       tool_env: tuple[str, str]) -> list[dict[str, object]]:
    """Kill `decl apply` after `delay` s; check that no fake tool it started (a process with
    the fake's state variable `tool_env` in its environment) outlives it, that the next
    apply succeeds with no conflict and that a third plan is empty. The second apply's
    plan changes (address, action, in_flight, origin)."""
    stats.kills += 1
    stats.delays.append(delay)
    kill_apply_after(decl_argv("apply", "-y", "-f", manifest), env, delay)
    deadline = time.monotonic() + 15
    left = processes_with_env(*tool_env)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_with_env(*tool_env)
    stats.leftover_tools += len(left)
    assert left == [], left

    done = subprocess.run(decl_argv("apply", "-y", "--json", "-f", manifest), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    actions = plan_actions(done)
    assert all(a["action"] != "conflict" for a in actions), actions
    stats.finished_in_flight += sum(1 for a in actions if a["in_flight"]
                                    and a["action"] != "create")
    stats.incomplete_finished += sum(1 for a in actions if a["origin"] == "interrupted"
                                     and not a["in_flight"])
    again = subprocess.run(decl_argv("plan", "--detailed-exitcode", "-f", manifest), env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    return actions
