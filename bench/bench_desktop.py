"""A no-op `decl plan` of N VirtualBox and N VMware VMs against the fake tools.

    python3 bench/bench_desktop.py [--vms 10] [--runs 5] [--out bench/results/desktop.json]

For each provider: makes N small VMs (64 MiB, one 16 MiB disk, running) through
`decl apply` against the stateful fakes in tests/fakes (VBoxManage; vmrun and
vmware-vdiskmanager), then measures, median of --runs:

- `decl plan` end to end (a new Python process, as a user runs it) and the number of tool
  processes it starts (from the fake's call log);
- decl's discovery alone, in-process (no interpreter start-up, no manifest loading).

The fakes are Python programs, so each tool process costs a Python start-up (~30-60 ms
here) where the real VBoxManage costs its own (and a VBoxSVC round trip); the process count
is the number to compare, the times are an upper bound on decl's own share.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FAKES_BIN = os.path.join(ROOT, "tests", "fakes", "bin")
TOOLS = {"virtualbox": ("VBoxManage",), "vmware": ("vmrun", "vmware-vdiskmanager")}


def manifest(provider: str, count: int, vm_dir: str) -> dict[str, Any]:
    """N running VMs of one provider."""
    vms = {f"vm{index:02d}": {"provider": provider, "memory": "64MiB",
                              "disks": [{"size": "16MiB"}],
                              "options": {"vm_dir": vm_dir, "shutdown_timeout": 5}}
           for index in range(count)}
    return {"version": 1, "project": "benchdesk", "vms": vms}


def calls(state_dir: str) -> list[dict[str, Any]]:
    with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
        return list(json.load(handle)["calls"])


def clear_calls(state_dir: str) -> None:
    path = os.path.join(state_dir, "state.json")
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    data["calls"] = []
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def measure(provider: str, count: int, runs: int) -> dict[str, Any]:
    """Apply N VMs, then time no-op plans and count the tool processes of one plan."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{provider}-") as work:
        state_dir = os.path.join(work, "fake")
        env = {**os.environ, "DECL_FAKE_DESKTOP_DIR": state_dir, "HOME": work,
               "DECL_STATE_DIR": os.path.join(work, "state"), "PYTHONPATH": ROOT,
               "PATH": FAKES_BIN + os.pathsep + os.environ.get("PATH", "")}
        path = os.path.join(work, "decl.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(manifest(provider, count, os.path.join(work, "vms")), handle)

        def decl(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "decl", *args, "-f", path],
                                  capture_output=True, text=True, env=env, cwd=ROOT,
                                  check=False)

        done = decl("apply", "-y")
        if done.returncode != 0:
            raise SystemExit(f"apply failed:\n{done.stdout}{done.stderr}")
        plan_times, processes = [], []
        for _ in range(runs):
            clear_calls(state_dir)
            start = time.perf_counter()
            done = decl("plan", "--detailed-exitcode")
            plan_times.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"the plan is not a no-op:\n{done.stdout}{done.stderr}")
            processes.append(len([c for c in calls(state_dir)
                                  if c["tool"] in TOOLS[provider]]))
        discovery = discovery_time(provider, count, env, runs)
        decl("destroy", "-y")
        by_command: dict[str, int] = {}
        for call in calls(state_dir):
            key = f"{call['tool']} {call['argv'][0] if call['argv'] else ''}"
            by_command[key] = by_command.get(key, 0) + 1
    return {"provider": provider, "vms": count, "runs": runs,
            "plan_seconds": round(statistics.median(plan_times), 3),
            "tool_processes": processes[0], "discovery_seconds": round(discovery, 3)}


def discovery_time(provider: str, count: int, env: dict[str, str], runs: int) -> float:
    """Median seconds of one in-process discovery pass (run in a child with the fake's
    environment, so this process's environment stays as it was)."""
    script = f"""
import statistics, time
from decl.connections.local import LocalConnection
from decl.providers.registry import Registry
from decl.core.resource import Desired
provider = Registry().get({provider!r})
conn = LocalConnection()
samples = []
for _ in range({runs}):
    start = time.perf_counter()
    provider.discover(conn, "benchdesk", [])
    samples.append(time.perf_counter() - start)
print(statistics.median(samples))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"discovery failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "desktop.json"))
    args = parser.parse_args()
    results = [measure(provider, args.vms, args.runs) for provider in TOOLS]
    print(f"no-op `decl plan` of {args.vms} VMs against the fakes (median of {args.runs})")
    print(f"{'provider':<12}{'plan s':>9}{'tool processes':>16}{'discovery s':>13}")
    for row in results:
        print(f"{row['provider']:<12}{row['plan_seconds']:>9.3f}{row['tool_processes']:>16}"
              f"{row['discovery_seconds']:>13.3f}")
    if args.out != "-":
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"results": results}, handle, indent=1)
            handle.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
