"""A no-op `decl plan` of N VMs per Mac desktop provider (parallels, utm), against the fakes.

    python3 bench/bench_desktop_mac.py [--vms 10] [--runs 5]

For each provider: `decl apply` makes N small VMs on a fresh fake Mac (tests/fakes/mac),
then `decl plan --detailed-exitcode` runs --runs times (a new Python process each time, as a
user runs it). Prints the median wall time and the tool processes one plan starts (from the
fakes' call log), and writes bench/results/desktop_mac.json.

The fakes are Python programs: each tool process costs a Python start-up (~30-60 ms here),
more than the real prlctl or utmctl would. The number of processes is the figure that
carries over to a real Mac; the time is an upper bound on decl's side.
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
from collections import Counter
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.fakes.mac.harness import FAKES_BIN, FakeMac  # noqa: E402

PROVIDERS = ("parallels", "utm")


def manifest(provider: str, count: int) -> dict[str, object]:
    """N small VMs of one provider."""
    vms = {f"vm{i:02d}": {"provider": provider, "memory": "512MiB", "state": "stopped",
                          "disks": [{"size": "1GiB"}]} for i in range(count)}
    return {"version": 1, "project": f"bench-{provider}", "vms": vms}


def decl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, check=False)


def bench(provider: str, count: int, runs: int) -> dict[str, object]:
    """Make the VMs, then time no-op plans and count their tool processes."""
    with tempfile.TemporaryDirectory(prefix="decl-bench-mac-") as work:
        fake = FakeMac(Path(work) / "mac.json")
        path = os.path.join(work, "decl.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(manifest(provider, count), handle)
        env = {**fake.env(), "DECL_STATE_DIR": os.path.join(work, "state"),
               "PYTHONPATH": ROOT, "NO_COLOR": "1"}
        done = decl(env, "apply", "-y", "-f", path)
        if done.returncode != 0:
            raise SystemExit(f"{provider}: apply failed:\n{done.stdout}{done.stderr}")
        samples = []
        processes: Counter[str] = Counter()
        for _ in range(runs):
            fake.clear_calls()
            start = time.perf_counter()
            done = decl(env, "plan", "--detailed-exitcode", "-f", path)
            samples.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{provider}: the plan is not a no-op:\n{done.stdout}"
                                 f"{done.stderr}")
            processes = Counter(call["tool"] for call in fake.load()["calls"])
        return {"provider": provider, "vms": count, "runs": runs,
                "median_s": round(statistics.median(samples), 3),
                "min_s": round(min(samples), 3),
                "tool_processes": dict(processes),
                "tool_processes_total": sum(processes.values())}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not os.path.isdir(FAKES_BIN):
        raise SystemExit("tests/fakes/bin is missing")
    results = [bench(p, args.vms, args.runs) for p in PROVIDERS]
    print(f"no-op decl plan of {args.vms} VMs, median of {args.runs} runs (fake tools)")
    print(f"{'provider':<10} {'median':>8} {'min':>8}  tool processes")
    for r in results:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(r["tool_processes"].items()))
        print(f"{r['provider']:<10} {r['median_s']:>7.3f}s {r['min_s']:>7.3f}s  "
              f"{r['tool_processes_total']} ({detail})")
    out = os.path.join(ROOT, "bench", "results", "desktop_mac.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
