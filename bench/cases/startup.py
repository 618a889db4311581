"""Start-up: `decl --version` against each peer's own version command."""

from __future__ import annotations

from bench.cases.common import DECL, Context, Result, timed


def run_case(ctx: Context) -> list[Result]:
    """Median wall time of each tool's version command (the cost of starting it)."""
    commands = {"decl": [*DECL, "--version"]}
    if ctx.peers.has("ansible"):
        commands["ansible"] = [*ctx.peers.tools["ansible"], "--version"]
    if ctx.peers.has("pyinfra"):
        commands["pyinfra"] = [*ctx.peers.tools["pyinfra"], "--version"]
    if ctx.peers.has("compose"):
        commands["compose"] = [*ctx.peers.tools["compose"], "version"]
    results = []
    for tool, argv in commands.items():
        result = Result("startup", tool, 1, "version")
        for _ in range(max(ctx.repeat, 3)):
            result.samples.append(timed(argv, ctx.env)[0])
        ctx.log(f"start-up {tool}: {result.median:.3f} s")
        results.append(result)
    return results
