"""Parse time of big manifests: 1, 2, 4 and 8 MB, three shapes each, plus the alias bomb.

    python3 bench/bench_parse.py [--sizes 1,2,4,8]

Shapes: `comment` (one comment line of N MB, then a YAML syntax error: the case that was
quadratic in ruamel's round-trip scanner), `vars` (N MB of small variables, one in 16 a
template), and `venvs` (N MB of venv resources, validated). The size limit is raised for the run
(DECL_MAX_MANIFEST_SIZE). Prints one line per case: shape, MB, seconds, outcome; the time is
what `decl validate` spends in-process (parse, render, validate), best of three.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MB = 1024 * 1024
HEAD = "version: 1\nproject: bench\n"


def comment_case(size: int) -> str:
    return HEAD + "#" + "c" * size + "\nvenvs: {a: [1\n"


def vars_case(size: int) -> str:
    lines, total, index = [HEAD, "vars:\n"], 0, 0
    while total < size:
        line = (f"  v{index}: \"value {index} {{{{ 1 + {index % 7} }}}}\"\n" if index % 16 == 0
                else f"  v{index}: \"value {index}\"\n")
        lines.append(line)
        total += len(line)
        index += 1
    return "".join(lines)


def venvs_case(size: int) -> str:
    lines, total, index = [HEAD, "venvs:\n"], 0, 0
    while total < size:
        block = (f"  v{index}:\n    path: ./venvs/v{index}\n"
                 f"    packages: [\"ruff==0.6.{index % 9}\", \"requests>=2\"]\n")
        lines.append(block)
        total += len(block)
        index += 1
    return "".join(lines)


def billion_laughs() -> str:
    lines = [HEAD + "vars:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        lines.append(f"  a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def measure(text: str) -> tuple[float, str]:
    """Best of three `load()` runs of the text; the outcome in a few words."""
    from decl.errors import DeclError
    from decl.manifest.load import load

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(text)
        path = handle.name
    best, outcome = float("inf"), ""
    try:
        for _ in range(3):
            started = time.perf_counter()
            try:
                loaded = load(path, require_secrets=False)
                outcome = f"valid, {len(loaded.manifest.resources())} resources"
            except DeclError as exc:
                outcome = "refused: " + str(exc).splitlines()[0][:90]
            best = min(best, time.perf_counter() - started)
    finally:
        os.unlink(path)
    return best, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,8", help="MB, comma-separated")
    args = parser.parse_args()
    os.environ["DECL_MAX_MANIFEST_SIZE"] = "64MiB"
    print(f"{'case':<8} {'MB':>3} {'seconds':>8}  outcome")
    for size in [int(s) for s in args.sizes.split(",")]:
        for name, make in (("comment", comment_case), ("vars", vars_case),
                           ("venvs", venvs_case)):
            seconds, outcome = measure(make(size * MB))
            print(f"{name:<8} {size:>3} {seconds:>8.3f}  {outcome}", flush=True)
    seconds, outcome = measure(billion_laughs())
    print(f"{'laughs':<8} {'-':>3} {seconds:>8.4f}  {outcome}")


if __name__ == "__main__":
    main()
