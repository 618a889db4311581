"""How `decl plan` grows: with N, and with the number of providers in the manifest.

One manifest holds N venvs (stdlib venv without pip, filled by the host's pip: quick to make;
the plan reads the same files either way) and, when the bench's dockerd runs, one network
and N containers. After one `decl apply`, it measures on the converged machine:
- `decl validate` (parse, templates, model: no discovery) -- the floor of any command;
- `decl plan` of the whole manifest (two providers, 2N + 1 resources).
The one-provider plans are measured by the venvs and containers cases. A plan whose cost is
a process start-up per resource would grow by tens of milliseconds per resource; the
slope between the smallest and largest N is reported.
"""

from __future__ import annotations

import json
import shutil

from bench.cases.common import DECL, PACKAGES, Context, Result, run, timed

IMAGE = "decl-test/busybox:1"


def run_case(ctx: Context) -> list[Result]:
    """validate and plan of the two-provider manifest at every N."""
    results: list[Result] = []
    for n in ctx.sizes:
        root = ctx.work / "plan" / f"n{n}"
        root.mkdir(parents=True, exist_ok=True)
        document: dict = {"version": 1, "project": f"bench-plan-{n}", "venvs": {
            f"p{i:02d}": {"path": str(root / "venvs" / f"p{i:02d}"), "backend": "venv",
                          "pip": False, "packages": PACKAGES,
                          "find_links": [str(ctx.wheels)], "no_index": True}
            for i in range(n)}}
        phase = "venvs"
        if ctx.engine is not None:
            net = f"p-net-{n}"
            document["networks"] = {net: {}}
            document["containers"] = {
                f"p{n}-{i:02d}": {"image": IMAGE, "pull": "never", "init": True,
                                  "command": ["sleep", "3600"], "networks": [net]}
                for i in range(n)}
            phase = "venvs+containers"
        manifest = root / "decl.yaml"
        manifest.write_text(json.dumps(document, indent=1))
        run([*DECL, "apply", "-y", "--parallelism", str(ctx.parallelism), "-f", str(manifest)],
            ctx.env)
        validate = Result("plan", "decl", n, f"validate {phase}")
        plan = Result("plan", "decl", n, phase)
        for _ in range(ctx.repeat):
            validate.samples.append(timed([*DECL, "validate", "-f", str(manifest)], ctx.env)[0])
            plan.samples.append(timed([*DECL, "plan", "--detailed-exitcode", "-f",
                                       str(manifest)], ctx.env)[0])
        ctx.log(f"plan N={n} {phase}: validate {validate.median:.2f} s, "
                f"plan {plan.median:.2f} s")
        results += [validate, plan]
        run([*DECL, "destroy", "-y", "-f", str(manifest)], ctx.env)
        shutil.rmtree(root, ignore_errors=True)
    return results
