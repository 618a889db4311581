"""decl's own timings: start-up, validate, plan and apply of N venvs. Prints a table.

    python3 bench/core.py [--n 50] [--repeat 5]

Runs decl with the interpreter that runs this script (its real path, not a pyenv shim), in a
temporary directory with its own state directory and a wheelhouse it writes itself (no
network). "by hand" is the same work done one venv after another with the same tools: a
venv without pip (`pip: false`), filled by uv when it is on PATH (as decl does), else by
the host's pip with `--python`.
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

from tests.wheelhouse import make_wheel  # noqa: E402

CLEAN = {"PIP_CONFIG_FILE": "/dev/null", "UV_NO_CONFIG": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def env(state: pathlib.Path) -> dict[str, str]:
    out = {**os.environ, **CLEAN, "DECL_STATE_DIR": str(state), "NO_COLOR": "1"}
    for key in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        out.pop(key, None)
    return out


def timed(argv: list[str], environ: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=environ, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n"
                         f"{done.stdout.decode()}\n{done.stderr.decode()}")
    return elapsed


def stats(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), (max(samples) - min(samples))


def manifest(path: pathlib.Path, root: pathlib.Path, wheels: pathlib.Path, n: int,
             backend: str) -> str:
    venvs = {f"v{i:02d}": {"path": str(root / f"v{i:02d}"), "backend": backend, "pip": False,
                           "packages": ["alpha", "beta", "gamma"], "find_links": [str(wheels)],
                           "no_index": True} for i in range(n)}
    path.write_text(json.dumps({"version": 1, "project": "bench", "venvs": venvs}, indent=1))
    return str(path)


def by_hand(root: pathlib.Path, wheels: pathlib.Path, n: int, backend: str,
            environ: dict[str, str]) -> float:
    uv = shutil.which("uv")
    started = time.perf_counter()
    for i in range(n):
        venv = root / f"h{i:02d}"
        python = str(venv / "bin" / "python")
        if backend == "uv":
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)],
                           check=True, env=environ)
            subprocess.run([uv, "pip", "install", "-q", "--python", python, "--no-index",
                            "--find-links", str(wheels), "alpha", "beta", "gamma"],
                           check=True, env=environ)
        else:
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                           check=True, env=environ)
            # the installer decl picks for a venv without pip: uv when it is there
            installer = [uv, "pip", "install", "-q", "--python", python] if uv else \
                [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
            subprocess.run([*installer, "--no-index", "--find-links", str(wheels), "alpha",
                            "beta", "gamma"], check=True, env=environ)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--backends", default="venv,uv")
    args = parser.parse_args()
    decl = [os.path.realpath(sys.executable), "-m", "decl"]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="decl-bench-") as tmp:
        base = pathlib.Path(tmp)
        wheels = base / "wheels"
        for name, requires in (("alpha", []), ("beta", ["gamma"]), ("gamma", [])):
            make_wheel(wheels, name, "1.0", requires)
        environ = env(base / "state")
        samples = [timed([*decl, "--version"], environ) for _ in range(args.repeat)]
        rows.append(("decl --version", *fmt(samples)))

        for backend in args.backends.split(","):
            if backend == "uv" and not shutil.which("uv"):
                rows.append((f"[{backend}] skipped", "uv not installed", ""))
                continue
            work = base / backend
            work.mkdir()
            mf = manifest(work / "decl.yaml", work / "venvs", wheels, args.n, backend)
            validate = [timed([*decl, "validate", "-f", mf], environ) for _ in range(args.repeat)]
            rows.append((f"[{backend}] validate, {args.n} venvs", *fmt(validate)))
            create = timed([*decl, "apply", "-y", "--parallelism", str(args.parallelism), "-f",
                            mf], environ)
            rows.append((f"[{backend}] apply: create {args.n} venvs x 3 packages "
                         f"(parallelism {args.parallelism})", f"{create:.2f}", ""))
            hand = by_hand(work / "hand", wheels, args.n, backend, environ)
            rows.append((f"[{backend}] the same {args.n}, one after another by hand",
                         f"{hand:.2f}", f"decl/hand {create / hand:.2f}"))
            plan = [timed([*decl, "plan", "--detailed-exitcode", "-f", mf], environ)
                    for _ in range(args.repeat)]
            rows.append((f"[{backend}] plan, {args.n} converged venvs", *fmt(plan)))
            ratio = statistics.median(plan) / statistics.median(validate)
            rows.append((f"[{backend}] plan / validate", f"{ratio:.2f}x", "target < 3x"))
            noop = [timed([*decl, "apply", "-y", "-f", mf], environ) for _ in range(args.repeat)]
            rows.append((f"[{backend}] no-op apply, {args.n} venvs", *fmt(noop)))
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'median s':>9}  spread / note")
    print("-" * (width + 30))
    for case, median, note in rows:
        print(f"{case:<{width}}  {median:>9}  {note}")


def fmt(samples: list[float]) -> tuple[str, str]:
    median, spread = stats(samples)
    return f"{median:.3f}", f"±{spread / 2:.3f} over {len(samples)} runs"


if __name__ == "__main__":
    main()
