"""`decl plan` of N venvs on one host: locally vs over SSH (an sshd of the bench's own).

    python3 bench/bench_ssh.py [--venvs 20] [--runs 7] [--bashrc]

Creates N venvs on host `local` and N others on host `box` (127.0.0.1 over SSH), each set
its own project and state directory, then times `decl plan` of each set (converged, so both
plans are empty) and a `decl ping` of box for the cost of one connection set-up.
Target: SSH plan <= 2 x local plan + one set-up. The remote PATH starts with this
interpreter's bin directory, so that both sides find the same tools (uv).
`--bashrc` lets bash source the login user's ~/.bashrc for each remote command, as a host
whose rc file is not guarded for non-interactive shells would. Prints medians in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sshd import start_sshd  # noqa: E402
from tests.wheelhouse import standard_wheelhouse  # noqa: E402

PYTHON = os.path.realpath(sys.executable)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Seconds a command took, and what it did."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def median_of(argv: list[str], env: dict[str, str], runs: int, ok: tuple[int, ...]) -> float:
    """Median seconds over `runs` runs; each must exit with a code in `ok`."""
    times = []
    for _ in range(runs):
        seconds, done = run(argv, env)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}"
                             f"\n{done.stderr}")
        times.append(seconds)
    return statistics.median(times)


def main() -> None:
    """Set up, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venvs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bashrc", action="store_true",
                        help="let bash source ~/.bashrc for every remote command")
    args = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="decl-bench-ssh-"))
    projects = {"local": f"bench-local-{os.getpid()}", "box": f"bench-ssh-{os.getpid()}"}
    remote_path = f"{os.path.dirname(PYTHON)}:/usr/local/bin:/usr/bin:/bin"
    server = start_sshd(work / "sshd", source_bashrc=args.bashrc,
                        env={"PIP_CONFIG_FILE": "/dev/null", "PATH": remote_path})
    try:
        wheels = standard_wheelhouse(work / "wheels")
        base_env = {**os.environ, "NO_COLOR": "1", "PIP_CONFIG_FILE": "/dev/null",
                    "DECL_SSH_CONFIG": ""}
        base_env.pop("SSH_AUTH_SOCK", None)
        envs = {host: {**base_env, "DECL_STATE_DIR": str(work / f"state-{host}")}
                for host in projects}
        hosts = {"box": server.manifest_host(python=PYTHON)}

        def manifest(host: str) -> str:
            venvs = {f"v{i:02d}": {"path": str(work / f"venvs-{host}" / f"v{i:02d}"),
                                   "host": host,
                                   "packages": ["alpha==1.0", "beta"], "backend": "venv",
                                   "pip": False, "find_links": [str(wheels)], "no_index": True}
                     for i in range(args.venvs)}
            path = work / f"{host}.yaml"
            path.write_text(json.dumps({"version": 1, "project": projects[host],
                                        "hosts": hosts,
                                        "venvs": venvs}))
            return str(path)

        local, remote = manifest("local"), manifest("box")
        decl = [PYTHON, "-m", "decl"]
        applied = {}
        for host, path in (("local", local), ("box", remote)):
            seconds, done = run([*decl, "apply", "-y", "-f", path], envs[host])
            if done.returncode != 0:
                raise SystemExit(f"apply on {host} failed:\n{done.stdout}\n{done.stderr}")
            applied[host] = seconds
        plan_local = median_of([*decl, "plan", "--detailed-exitcode", "-f", local],
                               envs["local"], args.runs, (0,))
        plan_ssh = median_of([*decl, "plan", "--detailed-exitcode", "-f", remote],
                             envs["box"], args.runs, (0,))
        pings = []
        for _ in range(args.runs):
            _, done = run([*decl, "ping", "--json", "-f", remote, "box"], envs["box"])
            pings.append(json.loads(done.stdout)["hosts"][0])
        connect = statistics.median(p["connect_ms"] for p in pings) / 1000
        rtt = statistics.median(p["rtt_ms"] for p in pings) / 1000
        budget = 2 * plan_local + connect
        logins = server.log().count("Accepted publickey")
        runs_made = 1 + args.runs + args.runs
    finally:
        server.stop()
        for project in projects.values():
            index = pathlib.Path(os.path.expanduser(f"~/.local/state/decl/venvs/{project}.json"))
            index.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"decl plan of {args.venvs} venvs on one host (median of {args.runs} runs, seconds)"
          f"{' - login shell sources ~/.bashrc' if args.bashrc else ''}")
    rows = [
        ("apply, host local (create, once)", applied["local"]),
        ("apply, host box over SSH (once)", applied["box"]),
        ("plan, host local", plan_local),
        ("plan, host box over SSH", plan_ssh),
        ("SSH connection set-up", connect),
        ("one remote command round trip", rtt),
        ("budget: 2 x local + set-up", budget),
    ]
    for label, value in rows:
        print(f"  {label:<34} {value:8.3f}")
    verdict = "within" if plan_ssh <= budget else "OVER"
    print(f"  SSH plan is {plan_ssh / plan_local:.2f}x the local plan: {verdict} budget")
    print(f"  SSH logins: {logins} for {runs_made} decl runs (one connection per run)")


if __name__ == "__main__":
    main()
