"""Start-up: `decl --version` and `decl validate` of 20 resources against `python -c pass`,
and each peer's own version command.

`python -c pass` is the same interpreter, with the same site-packages (and .pth files), as
decl runs on: the floor of any Python command here. The targets are ratios to it.
"""

from __future__ import annotations

import json

from bench.cases.common import DECL, PYTHON, Context, Result, timed_cpu


def twenty_resources(ctx: Context) -> str:
    """A manifest of 10 venvs, one network and 9 containers (two providers' models)."""
    document = {
        "version": 1, "project": "bench-startup",
        "venvs": {f"v{i}": {"path": f"~/venvs/v{i}", "packages": ["alpha==1.0", "beta"]}
                  for i in range(10)},
        "networks": {"net": {}},
        "containers": {f"c{i}": {"image": "busybox:1", "command": ["sleep", "60"],
                                 "networks": ["net"], "ports": [f"{8000 + i}:80"]}
                       for i in range(9)},
    }
    path = ctx.work / "startup.yaml"
    path.write_text(json.dumps(document, indent=1))
    return str(path)


def run_case(ctx: Context) -> list[Result]:
    """Median wall time of each command (the cost of starting it)."""
    commands = {("python", "pass"): [PYTHON, "-c", "pass"],
                ("python", "pass, no site"): [PYTHON, "-S", "-c", "pass"],
                ("decl", "version"): [*DECL, "--version"],
                ("decl", "validate20"): [*DECL, "validate", "-f", twenty_resources(ctx)]}
    if ctx.peers.has("ansible"):
        commands[("ansible", "version")] = [*ctx.peers.tools["ansible"], "--version"]
    if ctx.peers.has("pyinfra"):
        commands[("pyinfra", "version")] = [*ctx.peers.tools["pyinfra"], "--version"]
    if ctx.peers.has("compose"):
        commands[("compose", "version")] = [*ctx.peers.tools["compose"], "version"]
    results = {key: Result("startup", key[0], 1, key[1]) for key in commands}
    # interleaved, many runs: these are short and the machine is shared
    for _ in range(max(ctx.repeat, 3) * 3):
        for key, argv in commands.items():
            seconds, cpu = timed_cpu(argv, ctx.env)
            results[key].samples.append(seconds)
            results[key].cpu.append(cpu)
    for (tool, phase), result in results.items():
        ctx.log(f"start-up {tool} {phase}: {result.median:.3f} s")
    return list(results.values())
