"""bench/RESULTS.md from a results document: tables per case, ratios, targets, the machine.

    python3 bench/report.py [bench/results.json] [bench/RESULTS.md]

The analysis written by hand (bench/analysis.md) is appended as it is.
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Iterable

HERE = pathlib.Path(__file__).resolve().parent

PEERS = {"venvs": ["ansible", "pyinfra"], "containers": ["compose", "ansible"]}
EXTRA = {"venvs": ["decl-uv"], "containers": []}
TITLES = {
    "venvs": "N venvs, 3 packages each from a local wheelhouse (stdlib venv with pip)",
    "containers": "N containers and one network on the bench's own dockerd",
}


class Table:
    """Index of results by (case, tool, n, phase)."""

    def __init__(self, results: Iterable[dict]) -> None:
        self.by_key = {(r["case"], r["tool"], r["n"], r["phase"]): r for r in results}

    def get(self, case: str, tool: str, n: int, phase: str) -> dict | None:
        return self.by_key.get((case, tool, n, phase))

    def sizes(self, case: str) -> list[int]:
        return sorted({k[2] for k in self.by_key if k[0] == case})

    def median(self, case: str, tool: str, n: int, phase: str) -> float | None:
        found = self.get(case, tool, n, phase)
        return found["median"] if found else None


def cell(result: dict | None) -> str:
    """`median (min-max, runs)` in seconds."""
    if result is None:
        return "—"
    samples = result["samples"]
    if len(samples) == 1:
        return f"{result['median']:.2f} (1 run)"
    return f"{result['median']:.2f} ({min(samples):.2f}–{max(samples):.2f}, {len(samples)})"


def ratio(decl: float | None, peer: float | None) -> str:
    """decl / peer, with the speed-up in words."""
    if decl is None or peer is None or peer == 0:
        return "—"
    value = decl / peer
    words = f"{1 / value:.1f}x faster" if value < 1 else f"{value:.1f}x slower"
    return f"{value:.2f} ({words})"


def case_table(table: Table, case: str) -> list[str]:
    """The markdown table of one tool-against-peers case."""
    peers = [p for p in PEERS[case] if any(k[0] == case and k[1] == p for k in table.by_key)]
    extra = [p for p in EXTRA[case] if any(k[0] == case and k[1] == p for k in table.by_key)]
    tools = ["decl", *peers, *extra]
    head = ["N", "run", *tools, *[f"decl / {p}" for p in peers]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in table.sizes(case):
        for phase, label in (("create", "create"), ("noop", "no-op re-run")):
            if table.get(case, "decl", n, phase) is None:
                continue
            row = [str(n), label, *[cell(table.get(case, t, n, phase)) for t in tools]]
            decl = table.median(case, "decl", n, phase)
            row += [ratio(decl, table.median(case, p, n, phase)) for p in peers]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def plan_table(table: Table) -> tuple[list[str], dict[str, float]]:
    """`decl plan` against N for each manifest, and the slope in ms per resource."""
    phases = sorted({k[3] for k in table.by_key if k[0] == "plan"},
                    key=lambda p: (p.startswith("validate"), p))
    sizes = table.sizes("plan")
    lines = ["| manifest | resources per N | " + " | ".join(f"N = {n}" for n in sizes) +
             " | ms per added resource |", "|" + "---|" * (len(sizes) + 3)]
    slopes: dict[str, float] = {}
    for phase in phases:
        per_n = 2 if "containers" in phase and "venvs" in phase else 1
        medians = [table.median("plan", "decl", n, phase) for n in sizes]
        slope = "—"
        known = [(n, m) for n, m in zip(sizes, medians, strict=True) if m is not None]
        if len(known) >= 2 and known[-1][0] > known[0][0]:
            value = (known[-1][1] - known[0][1]) / ((known[-1][0] - known[0][0]) * per_n) * 1000
            slopes[phase] = value
            slope = f"{value:.1f}"
        label = phase if phase.startswith("validate") else f"plan {phase}"
        lines.append(f"| `decl {label}` | {per_n}N{' + 1' if per_n == 2 else ''} | " +
                     " | ".join(cell(table.get("plan", "decl", n, phase)) for n in sizes) +
                     f" | {slope} |")
    return lines, slopes


def targets(table: Table, slopes: dict[str, float]) -> list[str]:
    """Each target of the issue, met or missed, with the figures that decide it."""
    out: list[str] = []

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("**met**" if ok else "**missed**")

    for case, peer, limit, what in (("venvs", "ansible", 0.2, "≥ 5x faster than Ansible"),
                                    ("venvs", "pyinfra", 0.5, "≥ 2x faster than pyinfra"),
                                    ("containers", "ansible", 0.2, "≥ 5x faster than Ansible"),
                                    ("containers", "compose", 1.0, "no slower than Compose")):
        for n in table.sizes(case):
            decl = table.median(case, "decl", n, "noop")
            other = table.median(case, peer, n, "noop")
            if decl is None or other is None:
                continue
            out.append(f"| no-op re-run, {case}, N = {n}: {what} | {decl / other:.2f} "
                       f"(need ≤ {limit}) | {verdict(decl / other <= limit)} |")
    for case in ("venvs", "containers"):
        for n in (n for n in table.sizes(case) if n >= 10):
            decl = table.median(case, "decl", n, "create")
            others = {p: table.median(case, p, n, "create") for p in PEERS[case]}
            others = {p: v for p, v in others.items() if v is not None}
            if decl is None or not others:
                continue
            worst = max(decl / v for v in others.values())
            names = ", ".join(f"{p} {decl / v:.2f}" for p, v in others.items())
            out.append(f"| create, {case}, N = {n}: faster than every peer | {names} "
                       f"(need < 1) | {verdict(worst < 1)} |")
    for phase, slope in slopes.items():
        if phase.startswith("validate"):
            continue
        out.append(f"| `decl plan` ({phase}): no per-resource process start-up | "
                   f"{slope:.1f} ms per resource (need < 10) | {verdict(slope < 10)} |")
    if not out:
        return []
    return ["| target | decl / peer | verdict |", "|---|---|---|", *out]


def machine_lines(document: dict) -> list[str]:
    """The machine, the load during each case, and every tool's version."""
    machine = document["machine"]
    lines = [f"- CPU: {machine['cpu']}, `nproc` = {machine['nproc']}",
             f"- OS: {machine['os']}, kernel {machine['kernel']}",
             "- `free -h`:", "", "```", machine["memory"], "```", "",
             "- Load average (1 min) during each case: " + "; ".join(
                 f"{case} {v['min']:.1f}–{v['max']:.1f} (mean {v['mean']:.1f})"
                 for case, v in document.get("load", {}).items()) +
             " — the machine is shared with other engineers' test runs, so the absolute "
             "figures carry their load; the ratios are taken in the same run, tool after "
             "tool, repetition after repetition.",
             "- Versions:"]
    lines += [f"  - {tool}: `{version}`" for tool, version in machine["versions"].items()]
    return lines


def render(document: dict, analysis: str = "", out_dir: pathlib.Path = HERE) -> str:
    """The whole RESULTS.md (the plot is shown when OUT_DIR holds results.png)."""
    table = Table(document["results"])
    settings = document["settings"]
    runs = document.get("runs") or [{k: document.get(k) for k in ("date", "command", "seconds")}]
    lines = ["# Benchmarks: decl against Ansible, pyinfra and Docker Compose", "",
             "Reproduce (as root, Debian 12, with docker.io, busybox-static, docker-compose; "
             "the peers are installed into `bench/.venv-peers` by the command itself):", "",
             "    python3 bench/run.py", "",
             "Cells are the median in seconds, then (fastest–slowest, runs). `decl / peer` is "
             "the ratio of medians (below 1: decl is faster). Each case runs its tools in turn "
             "within each repetition, in one run of the bench on one machine. Each "
             f"measurement runs {settings['repeat']} times, or fewer once its runs took "
             f"{settings.get('time_budget', 0):g} s (a long run has a small spread: creates at "
             "N = 10 and 50, Ansible's and pyinfra's no-op runs at N = 50). decl runs with "
             f"`--parallelism {settings['parallelism']}`.",
             "", "Runs that produced these figures: " + "; ".join(
                 f"`{r['command']}` ({r['date']}, {r['seconds']} s)" for r in runs), ""]
    for case in ("venvs", "containers"):
        if not table.sizes(case):
            continue
        lines += [f"## {TITLES[case]}", "", *case_table(table, case), ""]
        if case == "venvs" and table.get("venvs", "decl-uv", table.sizes(case)[0], "create"):
            lines += ["`decl-uv` is decl with `backend: uv` (uv's venvs carry no pip): not "
                      "the same work as the others, shown for what a user with uv gets.", ""]
    plan_lines, slopes = plan_table(table)
    if table.sizes("plan"):
        lines += ["## `decl plan` as N grows", "",
                  "On converged machines. `validate` parses the manifest and renders its "
                  "templates without discovering anything: the floor of every command. "
                  "The last column is the cost of one more resource between the smallest "
                  "and the largest N.", "", *plan_lines, ""]
    startup = [r for r in document["results"] if r["case"] == "startup"]
    if startup:
        lines += ["## Start-up", "", "| command | seconds |", "|---|---|"]
        names = {"decl": "decl --version", "ansible": "ansible-playbook --version",
                 "pyinfra": "pyinfra --version", "compose": "docker-compose version"}
        lines += [f"| `{names.get(r['tool'], r['tool'])}` | {cell(r)} |" for r in startup]
        lines.append("")
    target_lines = targets(table, slopes)
    if target_lines:
        lines += ["## Targets of the issue", "", *target_lines, ""]
    if document.get("skipped"):
        lines += ["## Not measured", ""]
        lines += [f"- {what}: {why}" for what, why in document["skipped"].items()]
        lines.append("")
    lines += ["## The machine", "", *machine_lines(document), ""]
    if (out_dir / "results.png").exists():
        lines += ["## Plot", "", "![time against N for each tool](results.png)", ""]
    if analysis.strip():
        lines += [analysis.strip(), ""]
    return "\n".join(lines)


def write_report(document: dict, path: pathlib.Path) -> None:
    """Write RESULTS.md (with bench/analysis.md appended when it exists)."""
    analysis_file = HERE / "analysis.md"
    analysis = analysis_file.read_text() if analysis_file.exists() and \
        path.parent.resolve() == HERE else ""
    path.write_text(render(document, analysis, path.parent))


if __name__ == "__main__":
    source = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json"
    target = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "RESULTS.md"
    write_report(json.loads(source.read_text()), target)
