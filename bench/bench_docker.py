"""decl vs docker-compose on 20 containers, on a dockerd of the bench's own.

Measures, in one run and on the same engine:
- create 20 containers (and their network) from nothing: `decl apply -y` (at its default
  parallelism and at `--parallelism 1`) vs `docker-compose up -d` (its own parallelism)
- a converged project: `decl plan`, a no-op `decl apply -y`, and `docker-compose up -d`
  doing nothing.

Run as root on a machine with docker.io, busybox-static and docker-compose installed:
    python3 bench/bench_docker.py [--runs 5] [--containers 20]
It prints a table of medians (seconds). Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.docker_engine import TEST_IMAGE, Engine  # noqa: E402


def timed(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Seconds one command took; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n"
                         f"{done.stderr}")
    return seconds


def write_files(directory: str, count: int) -> tuple[str, str]:
    """The same services as a decl manifest and as a compose file (JSON is YAML)."""
    names = [f"svc{i:02d}" for i in range(count)]
    manifest = {
        "version": 1, "project": "bench",
        "networks": {"benchnet": {}},
        "containers": {name: {"image": TEST_IMAGE, "pull": "never", "init": True,
                              "command": ["sleep", "3600"], "networks": ["benchnet"]}
                       for name in names},
    }
    compose = {
        "version": "2.4",
        "services": {name: {"image": TEST_IMAGE, "init": True, "container_name": f"c-{name}",
                            "command": ["sleep", "3600"]} for name in names},
    }
    decl_file = os.path.join(directory, "decl.yaml")
    compose_file = os.path.join(directory, "docker-compose.yml")
    with open(decl_file, "w") as handle:
        json.dump(manifest, handle, indent=1)
    with open(compose_file, "w") as handle:
        json.dump(compose, handle, indent=1)
    return decl_file, compose_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--containers", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("docker-compose") is None:
        raise SystemExit("docker-compose is not installed (apt-get install docker-compose)")

    engine = Engine.start()
    work = tempfile.mkdtemp(prefix="decl-bench-")
    try:
        env = {**os.environ, "DOCKER_HOST": engine.host, "DECL_STATE_DIR": f"{work}/state",
               "NO_COLOR": "1", "COMPOSE_PROJECT_NAME": "benchc", "PYTHONPATH": ROOT}
        decl_file, compose_file = write_files(work, args.containers)
        decl = [sys.executable, "-m", "decl"]
        compose = ["docker-compose", "-f", compose_file]
        rows: dict[str, list[float]] = {k: [] for k in (
            "decl apply (create)", "decl apply -p1 (create)", "compose up -d (create)",
            "decl plan (converged)",
            "decl apply (no-op)", "compose up -d (no-op)", "compose ps")}
        create_runs = max(1, min(args.runs, 3))
        for _ in range(create_runs):
            rows["compose up -d (create)"].append(timed([*compose, "up", "-d"], env, work))
            timed([*compose, "down"], env, work)
            rows["decl apply (create)"].append(timed([*decl, "apply", "-y", "-f", decl_file],
                                                     env, work))
            timed([*decl, "destroy", "-y", "-f", decl_file], env, work)
            rows["decl apply -p1 (create)"].append(timed(
                [*decl, "apply", "-y", "--parallelism", "1", "-f", decl_file], env, work))
            timed([*decl, "destroy", "-y", "-f", decl_file], env, work)
        timed([*compose, "up", "-d"], env, work)
        timed([*decl, "apply", "-y", "-f", decl_file], env, work)
        for _ in range(args.runs):
            rows["decl plan (converged)"].append(timed([*decl, "plan", "-f", decl_file], env,
                                                       work))
            rows["decl apply (no-op)"].append(timed([*decl, "apply", "-y", "-f", decl_file],
                                                    env, work))
            rows["compose up -d (no-op)"].append(timed([*compose, "up", "-d"], env, work))
            rows["compose ps"].append(timed([*compose, "ps"], env, work))
        timed([*compose, "down"], env, work)
        timed([*decl, "destroy", "-y", "-f", decl_file], env, work)

        print(f"{args.containers} containers, own dockerd (vfs), python {sys.version.split()[0]}"
              f" ({sys.executable}); medians of {args.runs} runs ({create_runs} for create)")
        print(f"| {'step':<26} | {'median s':>8} | {'min s':>6} | {'max s':>6} |")
        print(f"|{'-' * 28}|{'-' * 10}|{'-' * 8}|{'-' * 8}|")
        for step, values in rows.items():
            print(f"| {step:<26} | {statistics.median(values):8.3f} | {min(values):6.3f} | "
                  f"{max(values):6.3f} |")
        compose_create = statistics.median(rows["compose up -d (create)"])
        for step in ("decl apply (create)", "decl apply -p1 (create)"):
            print(f"{step} / compose: {statistics.median(rows[step]) / compose_create:.2f}")
    finally:
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
