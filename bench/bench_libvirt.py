"""`decl plan` over 20 libvirt domains against the same virsh calls made by hand.

    python3 bench/bench_libvirt.py [--domains 20] [--runs 5]

Defines N small stopped domains through `decl apply` (domain type qemu, 64MiB, a 16MiB
disk each, no network), then measures, median of --runs:

- `decl plan` end to end (a new Python process each time, as a user runs it), with a
  `virsh` shim on PATH that counts the calls decl makes;
- decl's discovery alone, in-process (no interpreter start-up, no manifest loading);
- by hand from a shell: the calls decl makes (version, list, domstats, and every domain's
  XML from one virsh process), and the per-domain way (one dumpxml per domain) one after
  another and 8 at a time (`xargs -P 8`).

Needs root and libvirt (it starts libvirtd like the tests do). Prints a table and writes
bench/results/libvirt.json. Removes its domains at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.libvirt_daemon import shared_dir, start_libvirtd  # noqa: E402

PROJECT = "benchlv"
SHIM = """#!/bin/sh
for arg in "$@"; do printf '%s\\037' "$arg"; done >> "{log}"
printf '\\n' >> "{log}"
exec {virsh} "$@"
"""


def decl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, check=False)


def timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    daemon = start_libvirtd()
    pool = shared_dir("decl-bench-")
    work = tempfile.mkdtemp(prefix="decl-bench-")
    manifest = os.path.join(work, "decl.yaml")
    names = [f"bench{i:02d}" for i in range(args.domains)]
    vms = {name: {"provider": "libvirt", "state": "stopped", "memory": "64MiB",
                  "disks": [{"size": "16MiB"}], "network": {"mode": "none"},
                  "options": {"domain_type": "qemu", "pool_dir": pool}} for name in names}
    with open(manifest, "w") as handle:
        json.dump({"version": 1, "project": PROJECT, "vms": vms}, handle)
    env = {"DECL_STATE_DIR": os.path.join(work, "state")}
    try:
        start = time.perf_counter()
        done = decl("apply", "-y", "-f", manifest, "--parallelism", "8", env=env)
        create_seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stdout, done.stderr)
            return 1
        check = decl("plan", "-f", manifest, "--detailed-exitcode", env=env)
        assert check.returncode == 0, check.stdout + check.stderr

        # decl plan end to end, counting its virsh calls through a shim.
        shim_dir = os.path.join(work, "bin")
        os.makedirs(shim_dir)
        log = os.path.join(work, "virsh.log")
        with open(os.path.join(shim_dir, "virsh"), "w") as handle:
            handle.write(SHIM.format(log=log, virsh=shutil.which("virsh")))
        os.chmod(os.path.join(shim_dir, "virsh"), 0o755)
        shim_env = {**env, "PATH": shim_dir + os.pathsep + os.environ["PATH"]}
        decl("plan", "-f", manifest, env=shim_env)
        calls = [line.split("\x1f")[:-1] for line in open(log).read().splitlines()]
        plan_seconds = timed(lambda: decl("plan", "-f", manifest, env=env), args.runs)

        # Discovery alone, in-process.
        from decl.connections.local import LocalConnection
        from decl.core.resource import Desired
        from decl.manifest.model import Vm
        from decl.providers.base import DesiredContext
        from decl.providers.libvirt import LibvirtProvider

        provider = LibvirtProvider()
        conn = LocalConnection()
        wanted = []
        for name, fields in vms.items():
            model = Vm(**fields)
            spec = provider.spec("vm", name, model, DesiredContext(PROJECT, work))
            wanted.append(Desired(address=f"vm.{name}", kind="vm", name=name,
                                  provider="libvirt", host="local", state="stopped",
                                  spec=spec, model=model))
        provider.discover(conn, PROJECT, wanted)  # warm the host facts
        discover_seconds = timed(lambda: (provider.check(conn),
                                          provider.discover(conn, PROJECT, wanted)), args.runs)

        # The same virsh calls by hand.
        virsh = shutil.which("virsh")
        script = "\n".join(f"{virsh} {shlex.join(call)} >/dev/null" for call in calls)
        by_hand_seq = timed(lambda: subprocess.run(["sh", "-c", script], check=True), args.runs)
        # For reference: the listings, then one dumpxml per domain, 8 at a time.
        listings = [c for c in calls if not any("dumpxml" in part for part in c)]
        per_domain = [c for c in calls if any("dumpxml" in part for part in c)]
        parallel = (
            "\n".join(f"{virsh} {shlex.join(call)} >/dev/null" for call in listings)
            + f"\nprintf '%s\\n' {' '.join(names)} | "
            f"xargs -P 8 -I NAME {virsh} -c qemu:///system dumpxml --inactive NAME >/dev/null"
        )
        by_hand_par = timed(lambda: subprocess.run(["sh", "-c", parallel], check=True),
                            args.runs)
        # The model: the listings plus one dumpxml per domain, one after another.
        one_by_one = "\n".join(
            [f"{virsh} {shlex.join(call)} >/dev/null" for call in listings]
            + [f"{virsh} -c qemu:///system dumpxml --inactive {shlex.quote(name)} >/dev/null"
               for name in names])
        by_hand_per_domain = timed(lambda: subprocess.run(["sh", "-c", one_by_one],
                                                          check=True), args.runs)
        python_start = timed(lambda: subprocess.run([sys.executable, "-c", "pass"]), args.runs)
        decl_version = timed(lambda: decl("--version"), args.runs)

        results = {
            "domains": args.domains,
            "virsh_calls_per_plan": len(calls),
            "virsh_calls": sorted({c[2].split()[0] for c in calls}),
            "per_domain_calls": len(per_domain),
            "create_seconds": round(create_seconds, 3),
            "decl_plan_seconds": round(plan_seconds, 3),
            "decl_discover_in_process_seconds": round(discover_seconds, 3),
            "by_hand_decl_calls_seconds": round(by_hand_seq, 3),
            "by_hand_per_domain_sequential_seconds": round(by_hand_per_domain, 3),
            "by_hand_per_domain_parallel_seconds": round(by_hand_par, 3),
            "python_startup_seconds": round(python_start, 3),
            "decl_version_seconds": round(decl_version, 3),
        }
        results["plan_vs_per_domain_calls_by_hand"] = round(plan_seconds / by_hand_per_domain, 2)
        results["discover_vs_per_domain_parallel"] = round(discover_seconds / by_hand_par, 2)
        results["discover_vs_decl_calls_by_hand"] = round(discover_seconds / by_hand_seq, 2)
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench", "results", "libvirt.json"), "w") as handle:
            json.dump(results, handle, indent=2)
        for key, value in results.items():
            print(f"{key:36} {value}")
        return 0
    finally:
        decl("destroy", "-y", "-f", manifest, "--parallelism", "8", env=env)
        shutil.rmtree(pool, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
