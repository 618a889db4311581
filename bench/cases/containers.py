"""N containers (and one network) on a dockerd of the bench's own: create, then a no-op re-run.

The same work for every tool: one network, then N busybox containers (`sleep 3600` under an
init, on that network), started. The image is built locally (`docker import`), never pulled.
- decl: `decl apply -y` (networks + containers in one manifest), at the default
  parallelism and, as decl-p1, at `--parallelism 1`; at the largest N, decl-p1's no-op
  apply is also run `--stability-runs` times and its exit codes counted.
- Compose: Debian's docker-compose 1.29, `up -d` of a compose file with the same services
  (`init: true`, `container_name`, one network).
- Ansible: `community.docker.docker_network` then `community.docker.docker_container`
  looped over the N names (facts not gathered).
- loop-serial and loop-p10 (floors, not peers): a bare script on the docker SDK, in decl's
  interpreter, that creates the network and then each missing container and starts it, one
  at a time or 10 at a time, with no plan, marks, checks or output. No client that makes
  these objects one at a time can be faster than loop-serial, nor one at 10 at a time
  than loop-p10: the engine's own work sets them.
Every tool's objects are named apart (d-/p-/c-/a-/s-/t- prefixes) and removed after each
create.
decl's `plan` on the converged containers is recorded too (case "plan").
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

from bench.cases.common import DECL, BenchError, Context, Result, timed

IMAGE = "decl-test/busybox:1"
COMMAND = ["sleep", "3600"]


def names(prefix: str, n: int) -> list[str]:
    """The N container names of one tool."""
    return [f"{prefix}{i:02d}" for i in range(n)]


def decl_files(ctx: Context, root: pathlib.Path, n: int, prefix: str = "d",
               parallelism: int | None = None) -> list[str]:
    """A manifest of one network and N containers; returns the argv of `decl apply -y`."""
    net = f"{prefix}-net-{n}"
    manifest = root / "decl.yaml"
    manifest.write_text(json.dumps({
        "version": 1, "project": f"bench-ct{prefix}-{n}", "networks": {net: {}},
        "containers": {name: {"image": IMAGE, "pull": "never", "init": True,
                              "command": COMMAND, "networks": [net]}
                       for name in names(f"{prefix}{n}-", n)},
    }, indent=1))
    return [*DECL, "apply", "-y", "--parallelism", str(parallelism or ctx.parallelism), "-f",
            str(manifest)]


def compose_files(ctx: Context, root: pathlib.Path, n: int) -> list[str]:
    """The same services in a compose file; returns the argv of `docker-compose up -d`."""
    compose = root / "docker-compose.yml"
    compose.write_text(json.dumps({
        "version": "2.4",
        "networks": {"net": {}},
        "services": {name: {"image": IMAGE, "init": True, "container_name": name,
                            "command": COMMAND, "networks": ["net"]}
                     for name in names(f"c{n}-", n)},
    }, indent=1))
    return [*ctx.peers.tools["compose"], "-p", f"benchc{n}", "-f", str(compose), "up", "-d"]


def ansible_files(ctx: Context, root: pathlib.Path, n: int) -> list[str]:
    """A playbook: the network, then the containers in a loop; argv of ansible-playbook."""
    net = f"a-net-{n}"
    play = [{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [
            {"name": "network", "community.docker.docker_network": {"name": net}},
            {"name": "containers", "community.docker.docker_container": {
                "name": "{{ item }}", "image": IMAGE, "command": COMMAND, "init": True,
                "state": "started", "networks": [{"name": net}],
                "networks_cli_compatible": True,
            }, "loop": names(f"a{n}-", n)},
        ],
    }]
    playbook = root / "playbook.yml"
    playbook.write_text(json.dumps(play, indent=1))
    return [*ctx.peers.tools["ansible"], "-i", "localhost,", "-e",
            f"ansible_python_interpreter={ctx.peers.python}", str(playbook)]


LOOP = """\
import sys
from concurrent.futures import ThreadPoolExecutor

import docker

threads, net, image, names = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
api = docker.from_env().api
if not api.networks(names=[net]):
    api.create_network(net)
prefix = names[0].rsplit("-", 1)[0] + "-"
running = {c["Names"][0].lstrip("/") for c in api.containers(filters={"name": "^" + prefix})}


def make(name):
    if name in running:
        return
    made = api.create_container(
        image, command=COMMAND, name=name, host_config=api.create_host_config(init=True),
        networking_config=api.create_networking_config({net: api.create_endpoint_config()}))
    api.start(made["Id"])


with ThreadPoolExecutor(threads) as pool:
    list(pool.map(make, names))
""".replace("COMMAND", repr(COMMAND))


def loop_files(ctx: Context | None, root: pathlib.Path, n: int, prefix: str,
               threads: int) -> list[str]:
    """The floor script; returns its argv (decl's interpreter, the docker SDK decl uses)."""
    script = root / "loop.py"
    script.write_text(LOOP)
    return [DECL[0], str(script), str(threads), f"{prefix}-net-{n}", IMAGE,
            *names(f"{prefix}{n}-", n)]


PREFIX = {"decl": "d", "decl-p1": "p", "compose": "c", "ansible": "a", "loop-serial": "s",
          "loop-p10": "t"}


def remove_all(ctx: Context, tool: str, n: int) -> None:
    """Remove one tool's containers and networks (by name prefix; not timed)."""
    engine = ctx.engine
    prefix = f"{PREFIX[tool]}{n}-"
    ids = engine.docker("ps", "-aq", "--filter", f"name=^{prefix}").stdout.decode().split()
    if ids:
        engine.docker("rm", "-f", *ids, check=True)
    nets = {"decl": f"d-net-{n}", "decl-p1": f"p-net-{n}", "compose": f"benchc{n}_net",
            "ansible": f"a-net-{n}", "loop-serial": f"s-net-{n}", "loop-p10": f"t-net-{n}"}
    engine.docker("network", "rm", nets[tool])


def check_created(ctx: Context, tool: str, n: int) -> None:
    """All N containers of the tool are running."""
    prefix = f"{PREFIX[tool]}{n}-"
    running = ctx.engine.docker("ps", "-q", "--filter", f"name=^{prefix}",
                                "--filter", "status=running").stdout.decode().split()
    if len(running) != n:
        raise BenchError(f"{tool}: {len(running)} of {n} containers running after create")


def tools(ctx: Context) -> dict[str, Callable]:
    """tool name -> files writer."""
    chosen: dict[str, Callable] = {
        "decl": decl_files,
        "decl-p1": lambda c, r, n: decl_files(c, r, n, prefix="p", parallelism=1)}
    if ctx.peers.has("compose"):
        chosen["compose"] = compose_files
    if ctx.peers.has("ansible"):
        chosen["ansible"] = ansible_files
    chosen["loop-serial"] = lambda c, r, n: loop_files(c, r, n, "s", 1)
    chosen["loop-p10"] = lambda c, r, n: loop_files(c, r, n, "t", 10)
    return chosen


def stability(ctx: Context, argv: list[str], root: pathlib.Path, n: int) -> Result:
    """The no-op `decl apply -y --parallelism 1` many times: every exit code is counted.

    Issue 14 saw one of them end in `FATAL: exception not rethrown` (exit 134): a thread
    still running when the interpreter shut down. The note lists the exit codes seen.
    """
    result = Result("containers", "decl-p1", n, f"noop x{ctx.stability_runs}")
    codes: dict[int, int] = {}
    for _ in range(ctx.stability_runs):
        seconds, done = timed(argv, ctx.env, root, ok=tuple(range(-64, 256)))
        codes[done.returncode] = codes.get(done.returncode, 0) + 1
        result.samples.append(seconds)
    result.note = "exit codes: " + ", ".join(f"{code} x{count}"
                                             for code, count in sorted(codes.items()))
    ctx.log(f"containers N={n} decl-p1 no-op x{ctx.stability_runs}: {result.note}")
    return result


def run_case(ctx: Context) -> list[Result]:
    """Create and no-op timings of every tool at every N, and decl plan on converged ones."""
    if ctx.engine is None:
        raise BenchError("the containers case needs the bench's dockerd")
    results: list[Result] = []
    chosen = tools(ctx)
    for n in ctx.sizes:
        roots = {name: ctx.work / "containers" / f"{name}-{n}" for name in chosen}
        argvs = {}
        for name, writer in chosen.items():
            roots[name].mkdir(parents=True, exist_ok=True)
            argvs[name] = writer(ctx, roots[name], n)
        create = {name: Result("containers", name, n, "create") for name in chosen}
        noop = {name: Result("containers", name, n, "noop") for name in chosen}
        for rep in range(ctx.repeat):
            for name in chosen:
                if ctx.enough(create[name]):
                    continue
                remove_all(ctx, name, n)
                seconds, _ = timed(argvs[name], ctx.env, roots[name])
                check_created(ctx, name, n)
                create[name].samples.append(seconds)
                ctx.log(f"containers N={n} {name} create #{rep + 1}: {seconds:.2f} s")
        for rep in range(ctx.repeat):
            for name in chosen:
                if ctx.enough(noop[name]):
                    continue
                seconds, _ = timed(argvs[name], ctx.env, roots[name])
                noop[name].samples.append(seconds)
                ctx.log(f"containers N={n} {name} no-op #{rep + 1}: {seconds:.2f} s")
        plan = Result("plan", "decl", n, "containers")
        manifest = argvs["decl"][-1]
        for _ in range(ctx.repeat):
            seconds, _ = timed([*DECL, "plan", "--detailed-exitcode", "-f", manifest], ctx.env)
            plan.samples.append(seconds)
        ctx.log(f"containers N={n} decl plan: {plan.median:.2f} s")
        results += [*create.values(), *noop.values(), plan]
        if n == max(ctx.sizes) and ctx.stability_runs:
            results.append(stability(ctx, argvs["decl-p1"], roots["decl-p1"], n))
        for name in chosen:
            remove_all(ctx, name, n)
    return results
