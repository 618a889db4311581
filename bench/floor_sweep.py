"""How fast can any client make N containers on this engine? A bare loop at each concurrency.

    python3 bench/floor_sweep.py                 # as root; N = 20, concurrency 1 2 3 4 6 10 20
    python3 bench/floor_sweep.py --n 20 --repeat 5 --threads 1,4,10

The containers case of bench/run.py compares decl with Docker Compose. This script asks what
the engine itself allows: on a dockerd of its own (tests/docker_engine.py: vfs, no iptables,
busybox image by `docker import`) it times the same work (a network, then N busybox
containers under an init on it, started) done by the bench's floor script (bench/cases/
containers.py: the docker SDK, create + start of each container, no plan, marks or output)
at each concurrency, interleaved with `docker-compose up -d` of the same services, and prints
the medians and each one's ratio to Compose. The lowest ratio is the best any client driving
this engine through its API can reach, whatever its concurrency.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cases import containers  # noqa: E402
from bench.cases.common import clean_env, timed  # noqa: E402
from bench.peers import find_peers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", default="1,2,3,4,6,10,20")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    from tests.docker_engine import TEST_IMAGE, Engine

    peers = find_peers()
    engine = Engine.start()
    try:
        engine.import_image(TEST_IMAGE)
        with tempfile.TemporaryDirectory(prefix="decl-floor-") as tmp:
            work = pathlib.Path(tmp)
            env = clean_env(work, [str(peers.directory / "bin")])
            env["DOCKER_HOST"] = engine.host
            samples: dict[str, list[float]] = {}
            runs: dict[str, tuple[list[str], str]] = {}
            for t in threads:
                root = work / f"loop{t}"
                root.mkdir()
                prefix = f"x{t}x"
                runs[f"loop, {t} at once"] = (
                    containers.loop_files(None, root, args.n, prefix, t),
                    prefix)
            if "compose" in peers.tools:
                root = work / "compose"
                root.mkdir()
                ctx = type("Ctx", (), {"peers": peers})()
                runs["compose"] = (containers.compose_files(ctx, root, args.n), "c")
            for _ in range(args.repeat):
                for name, (argv, prefix) in runs.items():
                    remove(engine, prefix, args.n, compose=name == "compose")
                    seconds, _ = timed(argv, env)
                    samples.setdefault(name, []).append(seconds)
                    print(f"{name}: {seconds:.2f} s", file=sys.stderr, flush=True)
            for _, prefix in runs.values():
                remove(engine, prefix, args.n, compose=prefix == "c")
    finally:
        engine.stop()
    compose = statistics.median(samples["compose"]) if "compose" in samples else None
    print(f"| {args.n} containers and a network | median s (runs) | / Compose |")
    print("|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        share = f"{median / compose:.2f}" if compose else "—"
        print(f"| {name} | {median:.2f} ({len(values)}) | {share} |")


def remove(engine, prefix: str, n: int, compose: bool) -> None:
    """Remove one run's containers and network (not timed)."""
    start = f"{prefix}{n}-"
    ids = engine.docker("ps", "-aq", "--filter", f"name=^{start}").stdout.decode().split()
    if ids:
        engine.docker("rm", "-f", *ids, check=True)
    engine.docker("network", "rm", f"benchc{n}_net" if compose else f"{prefix}-net-{n}")


if __name__ == "__main__":
    main()
