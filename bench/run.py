"""decl against Ansible, pyinfra and Docker Compose on the same work, in one run.

    python3 bench/run.py                     # every row of the page: ~40 min on 2 cores
    python3 bench/run.py --cases venvs --sizes 10 --merge    # redo one part, keep the rest

Installs the peers into bench/.venv-peers (bench/peers.py; --no-install to skip), writes a
wheelhouse, starts a dockerd of its own (vfs, no iptables, no bridge; busybox image built by
`docker import`), runs each case at each N several times, then writes bench/results.json,
bench/RESULTS.md (tables, ratios, targets, the machine) and bench/results.png (matplotlib,
from the peers' venv). Run it as root (dockerd) on Debian 12 with docker.io,
busybox-static and docker-compose installed; without them the container cases are skipped
and say why.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import peers as peers_mod  # noqa: E402
from bench.cases import containers, fleet, parse, plan, startup, venvs  # noqa: E402
from bench.cases.common import Context, Result, clean_env, make_wheelhouse  # noqa: E402
from bench.machine import describe  # noqa: E402
from bench.report import write_report  # noqa: E402

CASES = {"startup": startup.run_case, "venvs": venvs.run_case,
         "containers": containers.run_case, "plan": plan.run_case,
         "fleet": fleet.run_case, "parse": parse.run_case}
NEEDS_DOCKER = {"containers"}
# N of each case unless --sizes says otherwise (fleet: hosts; parse: megabytes).
# The defaults are the rows issue 14 sets targets for, so that one run of `python3
# bench/run.py` gives every row of the results page (about 40 minutes on 2 cores, most of it
# Ansible over 100 hosts); larger N with --sizes, e.g. `--cases venvs --sizes 1,10,50`.
SIZES = {"startup": [1], "venvs": [10], "containers": [20],
         "plan": [1, 10, 50], "fleet": [20, 100], "parse": [1, 2, 4, 8]}


class LoadSampler:
    """Samples the one-minute load average every few seconds, per case."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: dict[str, list[float]] = {}
        self.current = "setup"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.setdefault(self.current, []).append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> dict[str, dict[str, float]]:
        """Stop; per case: min, mean, max of the load average."""
        self._stop.set()
        self._thread.join()
        return {case: {"min": min(v), "mean": sum(v) / len(v), "max": max(v)}
                for case, v in self.samples.items() if v}


def docker_unavailable() -> str | None:
    """Why the bench cannot start its own dockerd here, or None."""
    if os.geteuid() != 0:
        return "dockerd needs root"
    for tool, package in (("dockerd", "docker.io"), ("docker", "docker.io"),
                          ("busybox", "busybox-static")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated: " + ",".join(CASES))
    parser.add_argument("--sizes", default=None,
                        help="values of N for every case, comma-separated (default: per case, "
                        + "; ".join(f"{c} {','.join(map(str, n))}" for c, n in SIZES.items())
                        + ")")
    parser.add_argument("--stability-runs", type=int, default=200,
                        help="no-op `decl apply --parallelism 1` runs on the largest container "
                        "N whose exit codes are counted (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--time-budget", type=float, default=45,
                        help="seconds: a measurement whose runs took this long gets no more "
                             "runs (at least one always)")
    parser.add_argument("--parallelism", type=int, default=10,
                        help="decl apply --parallelism (decl's default: 10)")
    parser.add_argument("--peers-dir", type=pathlib.Path, default=peers_mod.DEFAULT_DIR)
    parser.add_argument("--no-install", action="store_true",
                        help="use the peers that are installed; install nothing")
    parser.add_argument("--skip-peers", action="store_true", help="measure decl alone")
    parser.add_argument("--out", type=pathlib.Path, default=HERE,
                        help="directory for results.json, RESULTS.md, results.png")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the measurements taken now in OUT/results.json")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the bench; returns the results document (also written to OUT)."""
    args = parse_args(argv)
    log = (lambda *_: None) if args.quiet else (lambda msg: print(msg, flush=True))
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    if args.skip_peers:
        peers = peers_mod.Peers(directory=args.peers_dir,
                                missing={t: "--skip-peers" for t in ("ansible", "pyinfra",
                                                                     "compose", "matplotlib")})
    elif args.no_install:
        peers = peers_mod.find_peers(args.peers_dir)
    else:
        log(f"installing the peers into {args.peers_dir} ...")
        peers = peers_mod.install(args.peers_dir)
    for tool, why in peers.missing.items():
        log(f"{tool}: not measured: {why}")

    skipped: dict[str, str] = {}
    sampler = LoadSampler()
    sampler.start()
    started = time.time()
    results: list[Result] = []
    engine = None
    with tempfile.TemporaryDirectory(prefix="decl-bench-") as tmp:
        work = pathlib.Path(tmp)
        env = clean_env(work, [str(peers.directory / "bin")] if peers.python.exists() else [])
        ctx = Context(work=work, wheels=make_wheelhouse(work / "wheels"), env=env, peers=peers,
                      sizes=[], repeat=args.repeat, time_budget=args.time_budget,
                      parallelism=args.parallelism, log=log,
                      stability_runs=args.stability_runs)
        try:
            if any(c in NEEDS_DOCKER or c == "plan" for c in cases):
                why = docker_unavailable()
                if why is None:
                    from tests.docker_engine import Engine

                    log("starting the bench's own dockerd ...")
                    engine = Engine.start()
                    ctx.engine = engine
                    env["DOCKER_HOST"] = engine.host
                else:
                    skipped["containers"] = why
            for case in cases:
                if case in NEEDS_DOCKER and ctx.engine is None:
                    log(f"{case}: skipped: {skipped.get(case)}")
                    continue
                if case == "fleet" and fleet.unavailable():
                    skipped["fleet"] = str(fleet.unavailable())
                    log(f"fleet: skipped: {skipped['fleet']}")
                    continue
                sampler.current = case
                ctx.sizes = sizes or SIZES[case]
                log(f"== {case} (N = {', '.join(map(str, ctx.sizes))})")
                results += CASES[case](ctx)
            machine = describe(peers, env)
        finally:
            if engine is not None:
                engine.stop()
    load = sampler.stop()
    document = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python3 bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "seconds": round(time.time() - started, 1),
        "settings": {"sizes": sizes or SIZES, "repeat": args.repeat,
                     "time_budget": args.time_budget, "parallelism": args.parallelism},
        "machine": machine,
        "load": load,
        "skipped": {**skipped, **{t: why for t, why in peers.missing.items()}},
        "results": [r.as_dict() for r in results],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    if args.merge and path.exists():
        document = merge(json.loads(path.read_text()), document)
    path.write_text(json.dumps(document, indent=1) + "\n")
    if peers.has("matplotlib"):
        subprocess.run([str(peers.python), str(HERE / "plot.py"), str(path),
                        str(args.out / "results.png")], check=True)
    write_report(document, args.out / "RESULTS.md")
    log(f"wrote {path}, {args.out / 'RESULTS.md'} in {time.time() - started:.0f} s")
    return document


def merge(old: dict, new: dict) -> dict:
    """Old results with the measurements of `new` replacing theirs (same case/tool/N/phase)."""
    key = lambda r: (r["case"], r["tool"], r["n"], r["phase"])  # noqa: E731
    fresh = {key(r) for r in new["results"]}
    kept = [r for r in old["results"] if key(r) not in fresh]
    merged = {**old, "results": kept + new["results"], "skipped": new["skipped"]}
    given = new["settings"]["sizes"]
    sizes = ",".join(str(n) for n in given) if isinstance(given, list) else "per case"
    merged["load"] = {**old.get("load", {}), **{
        f"{case} (rerun, N = {sizes}, repeat {new['settings']['repeat']})": value
        for case, value in new["load"].items() if case != "setup"}}
    merged["runs"] = [*old.get("runs", [{k: old.get(k) for k in ("date", "command", "seconds")}]),
                      {k: new[k] for k in ("date", "command", "seconds")}]
    return merged


if __name__ == "__main__":
    main()
