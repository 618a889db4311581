"""N venvs with three packages each from a local wheelhouse: create, then a no-op re-run.

The same work for every tool: a stdlib venv *with pip* (`python -m venv`, ensurepip), then
alpha, beta (which needs gamma) and gamma installed from the wheelhouse with `--no-index`.
- decl: `decl apply -y` of a manifest of N venvs (`backend: venv`, `pip: true`), at the
  default parallelism (venvs: 4 at once per host) and, as decl-p1, at `--parallelism 1`.
- Ansible: one play on localhost, `ansible.builtin.pip` with `virtualenv` and
  `virtualenv_command: PYTHON -m venv`, looped over the N paths (facts not gathered).
- pyinfra: `pyinfra @local deploy.py --yes`, `pip.venv` + `pip.packages` per venv.
- by-hand: a shell loop, `python -m venv` then the venv's `pip install`, one venv after
  another (its no-op re-run: the same `pip install` in every venv).
- decl-uv (information only, not the same work): `backend: uv`, no pip in the venv.

Runs are interleaved (tool after tool within each repetition), so that a change of the
machine's load falls on every tool alike. decl's `plan` on the converged venvs is recorded
too (case "plan").
"""

from __future__ import annotations

import json
import pathlib
import shutil
from collections.abc import Callable

from bench.cases.common import DECL, PACKAGES, PYTHON, BenchError, Context, Result, timed

Tool = Callable[[Context, pathlib.Path, int], tuple[list[str], pathlib.Path]]


def venv_paths(root: pathlib.Path, n: int) -> list[pathlib.Path]:
    """The N venv directories under `root`."""
    return [root / "venvs" / f"v{i:02d}" for i in range(n)]


def decl_files(ctx: Context, root: pathlib.Path, n: int, backend: str = "venv",
               parallelism: int | None = None) -> list[str]:
    """A manifest of N venvs; returns the argv of `decl apply -y`."""
    venvs = {path.name: {"path": str(path), "backend": backend, "packages": PACKAGES,
                         "find_links": [str(ctx.wheels)], "no_index": True,
                         "pip": backend == "venv"}
             for path in venv_paths(root, n)}
    manifest = root / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": f"bench-{root.name}",
                                    "venvs": venvs}, indent=1))
    return [*DECL, "apply", "-y", "--parallelism", str(parallelism or ctx.parallelism), "-f",
            str(manifest)]


def by_hand_files(ctx: Context, root: pathlib.Path, n: int) -> list[str]:
    """A shell loop: `python -m venv` and the venv's pip for each venv missing; the argv."""
    script = root / "by-hand.sh"
    script.write_text(
        "set -e\n"
        f"for v in {' '.join(str(p) for p in venv_paths(root, n))}; do\n"
        f'  [ -d "$v" ] || {PYTHON} -m venv "$v"\n'
        f'  "$v/bin/pip" install --quiet --no-index --find-links {ctx.wheels} '
        f"{' '.join(PACKAGES)}\n"
        "done\n")
    return ["sh", str(script)]


def ansible_files(ctx: Context, root: pathlib.Path, n: int) -> list[str]:
    """A playbook of one looped pip task; returns the argv of ansible-playbook."""
    play = [{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{
            "name": "venvs with three packages",
            "ansible.builtin.pip": {
                "name": PACKAGES, "virtualenv": "{{ item }}",
                "virtualenv_command": f"{PYTHON} -m venv",
                "extra_args": f"--no-index --find-links {ctx.wheels}",
            },
            "loop": [str(p) for p in venv_paths(root, n)],
        }],
    }]
    playbook = root / "playbook.yml"
    playbook.write_text(json.dumps(play, indent=1))
    python = str(ctx.peers.python)
    return [*ctx.peers.tools["ansible"], "-i", "localhost,", "-e",
            f"ansible_python_interpreter={python}", str(playbook)]


def pyinfra_files(ctx: Context, root: pathlib.Path, n: int) -> list[str]:
    """A deploy file of pip.venv + pip.packages per venv; returns the argv of pyinfra."""
    deploy = root / "deploy.py"
    deploy.write_text(
        "from pyinfra.operations import pip\n\n"
        f"PATHS = {[str(p) for p in venv_paths(root, n)]!r}\n"
        "for path in PATHS:\n"
        f"    pip.venv(name='venv ' + path, path=path, python={PYTHON!r})\n"
        f"    pip.packages(name='packages ' + path, packages={PACKAGES!r}, virtualenv=path,\n"
        f"                 extra_install_args={'--no-index --find-links ' + str(ctx.wheels)!r})\n"
    )
    return [*ctx.peers.tools["pyinfra"], "@local", str(deploy), "--yes"]


def check_created(root: pathlib.Path, n: int, with_pip: bool) -> None:
    """Every venv holds the three packages (and pip when it should): the work was done."""
    for path in venv_paths(root, n):
        site = list(path.glob("lib/python*/site-packages"))
        if not site:
            raise BenchError(f"{path} is not a venv")
        names = {p.name.split("-")[0].lower() for p in site[0].glob("*.dist-info")}
        missing = [p for p in PACKAGES if p not in names]
        if missing or (with_pip and "pip" not in names):
            raise BenchError(f"{path}: missing {missing or ['pip']} after create")


def tools(ctx: Context) -> dict[str, tuple[Callable, bool]]:
    """tool name -> (files writer, whether its venvs carry pip)."""
    chosen: dict[str, tuple[Callable, bool]] = {
        "decl": (decl_files, True),
        "decl-p1": (lambda c, r, n: decl_files(c, r, n, parallelism=1), True)}
    if ctx.peers.has("ansible"):
        chosen["ansible"] = (ansible_files, True)
    if ctx.peers.has("pyinfra"):
        chosen["pyinfra"] = (pyinfra_files, True)
    chosen["by-hand"] = (by_hand_files, True)
    if shutil.which("uv", path=ctx.env["PATH"]):
        chosen["decl-uv"] = (lambda c, r, n: decl_files(c, r, n, backend="uv"), False)
    return chosen


def run_case(ctx: Context) -> list[Result]:
    """Create and no-op timings of every tool at every N, and decl plan on converged venvs."""
    results: list[Result] = []
    chosen = tools(ctx)
    for n in ctx.sizes:
        roots = {name: ctx.work / "venvs" / f"{name}-{n}" for name in chosen}
        argvs = {}
        for name, (writer, _) in chosen.items():
            roots[name].mkdir(parents=True, exist_ok=True)
            argvs[name] = writer(ctx, roots[name], n)
        create = {name: Result("venvs", name, n, "create") for name in chosen}
        noop = {name: Result("venvs", name, n, "noop") for name in chosen}
        for rep in range(ctx.repeat):
            for name, (_, with_pip) in chosen.items():
                if ctx.enough(create[name]):
                    continue
                shutil.rmtree(roots[name] / "venvs", ignore_errors=True)
                seconds, _ = timed(argvs[name], ctx.env, roots[name])
                check_created(roots[name], n, with_pip)
                create[name].samples.append(seconds)
                ctx.log(f"venvs N={n} {name} create #{rep + 1}: {seconds:.2f} s")
        for rep in range(ctx.repeat):
            for name in chosen:
                if ctx.enough(noop[name]):
                    continue
                seconds, _ = timed(argvs[name], ctx.env, roots[name])
                noop[name].samples.append(seconds)
                ctx.log(f"venvs N={n} {name} no-op #{rep + 1}: {seconds:.2f} s")
        plan = Result("plan", "decl", n, "venvs")
        manifest = argvs["decl"][-1]
        for _ in range(ctx.repeat):
            seconds, _ = timed([*DECL, "plan", "--detailed-exitcode", "-f", manifest], ctx.env)
            plan.samples.append(seconds)
        ctx.log(f"venvs N={n} decl plan: {plan.median:.2f} s")
        results += [*create.values(), *noop.values(), plan]
        for root in roots.values():
            shutil.rmtree(root / "venvs", ignore_errors=True)
    return results
