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

PEERS = {"venvs": ["ansible", "pyinfra", "by-hand"], "containers": ["compose", "ansible"],
         "fleet": ["ansible-f5", "ansible-f20", "pyinfra"]}
DECLS = {"venvs": ["decl", "decl-p1"], "containers": ["decl", "decl-p1"], "fleet": ["decl"]}
EXTRA = {"venvs": ["decl-uv"], "containers": ["loop-serial", "loop-p10"], "fleet": []}
PHASES = {"venvs": [("create", "create"), ("noop", "no-op re-run")],
          "containers": [("create", "create"), ("noop", "no-op re-run")],
          "fleet": [("noop plan", "no-op plan"), ("noop apply", "no-op apply")]}
TITLES = {
    "venvs": "N venvs, 3 packages each from a local wheelhouse (stdlib venv with pip)",
    "containers": "N containers and one network on the bench's own dockerd",
    "fleet": "N SSH hosts x 3 venvs (one loopback sshd, N host names), converged",
}
# Who does what at once: the ratios of a parallel tool to a serial one say so.
PARALLEL = {
    "venvs": {"decl": "parallel: `--parallelism 10`, venvs capped at 4 at once per host",
              "decl-p1": "serial: `--parallelism 1`",
              "ansible": "serial: one host, one looped task",
              "pyinfra": "serial: one host, operations in order",
              "by-hand": "serial: a shell loop (`python -m venv`, then the venv's pip)",
              "decl-uv": "parallel as decl; `backend: uv`, no pip in the venvs (not the same "
                         "work)"},
    "containers": {"decl": "parallel: `--parallelism 10`",
                   "decl-p1": "serial: `--parallelism 1`",
                   "compose": "parallel: Compose's own (up to 64 at once)",
                   "ansible": "serial: one looped task",
                   "loop-serial": "serial: a floor, not a peer (a bare docker SDK script: "
                                  "network, then create + start each container; no plan, "
                                  "marks or output)",
                   "loop-p10": "parallel: the same floor script, 10 containers at once"},
    "fleet": {"decl": "parallel: 16 hosts discovered at once (`--discovery-parallelism`), "
                      "10 changes at once",
              "ansible-f5": "parallel: 5 forks", "ansible-f20": "parallel: 20 forks",
              "pyinfra": "parallel: its default (every host at once, gevent)"},
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


def cpu_median(result: dict | None) -> float | None:
    """Median CPU seconds of a result that recorded them."""
    if not result or not result.get("cpu"):
        return None
    values = sorted(result["cpu"])
    return values[len(values) // 2] if len(values) % 2 else \
        (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def cpu_cell(result: dict | None) -> str:
    """Median CPU seconds, or — when not recorded."""
    value = cpu_median(result)
    return "—" if value is None else f"{value:.3f}"


def ratio(decl: float | None, peer: float | None) -> str:
    """decl / peer, with the speed-up in words."""
    if decl is None or peer is None or peer == 0:
        return "—"
    value = decl / peer
    words = f"{1 / value:.1f}x faster" if value < 1 else f"{value:.1f}x slower"
    return f"{value:.2f} ({words})"


def case_table(table: Table, case: str) -> list[str]:
    """The markdown table of one tool-against-peers case, and who runs in parallel."""
    def present(tools: list[str]) -> list[str]:
        return [t for t in tools if any(k[0] == case and k[1] == t for k in table.by_key)]

    decls, peers, extra = present(DECLS[case]), present(PEERS[case]), present(EXTRA[case])
    tools = [*decls, *peers, *extra]
    head = ["N", "run", *tools, *[f"{d} / {p}" for d in decls for p in peers]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in table.sizes(case):
        for phase, label in PHASES[case]:
            if table.get(case, "decl", n, phase) is None:
                continue
            row = [str(n), label, *[cell(table.get(case, t, n, phase)) for t in tools]]
            row += [ratio(table.median(case, d, n, phase), table.median(case, p, n, phase))
                    for d in decls for p in peers]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| tool | runs in parallel? |", "|---|---|"]
    lines += [f"| {t} | {PARALLEL[case].get(t, '?')} |" for t in tools]
    return lines


def slope_lines(table: Table, case: str, tools: list[str], phases: list[str],
                unit: str) -> list[str]:
    """Seconds per added N between the smallest and largest N, per tool and phase."""
    sizes = table.sizes(case)
    if len(sizes) < 2:
        return []
    low, high = sizes[0], sizes[-1]
    lines = [f"| tool | run | seconds per added {unit} (N = {low} → {high}) |", "|---|---|---|"]
    for tool in tools:
        for phase in phases:
            a, b = table.median(case, tool, low, phase), table.median(case, tool, high, phase)
            if a is None or b is None:
                continue
            lines.append(f"| {tool} | {phase} | {(b - a) / (high - low):.3f} |")
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


def verdict(ok: bool | None) -> str:
    """met / missed / — (not measured)."""
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def targets(table: Table, slopes: dict[str, float]) -> list[str]:
    """Each target, met or missed, with the figures that decide it (computed here)."""
    out: list[str] = []

    def row(what: str, figure: str, ok: bool | None) -> None:
        out.append(f"| {what} | {figure} | {verdict(ok)} |")

    def limit_row(what: str, value: float | None, limit: float, unit: str = "s",
                  strict: bool = False) -> None:
        if value is None:
            return
        ok = value < limit if strict else value <= limit
        row(what, f"{value:.2f} {unit} (need {'<' if strict else '≤'} {limit:g} {unit})", ok)

    def ratio_row(what: str, value: float | None, other: float | None, limit: float,
                  strict: bool = False) -> None:
        if value is None or other is None or other == 0:
            return
        r = value / other
        row(what, f"{value:.2f} / {other:.2f} = {r:.2f} (need {'<' if strict else '≤'} "
                  f"{limit:g})", r < limit if strict else r <= limit)

    # venvs with pip, like for like (issue 14, 1)
    limit_row("create 10 venvs x 3 packages with pip, `--parallelism 1`",
              table.median("venvs", "decl-p1", 10, "create"), 8)
    limit_row("create 10 venvs x 3 packages with pip, default parallelism",
              table.median("venvs", "decl", 10, "create"), 5)
    limit_row("create 10 venvs x 3 packages, `backend: uv`",
              table.median("venvs", "decl-uv", 10, "create"), 1, strict=True)
    # start-up (3)
    floor = table.median("startup", "python", 1, "pass")
    ratio_row("`decl validate` of 20 resources / `python -c pass`",
              table.median("startup", "decl", 1, "validate20"), floor, 8)
    ratio_row("`decl --version` / `python -c pass`",
              table.median("startup", "decl", 1, "version"), floor, 4, strict=True)
    floor_cpu = cpu_median(table.get("startup", "python", 1, "pass"))
    ratio_row("the same in CPU time: `decl validate` of 20 resources",
              cpu_median(table.get("startup", "decl", 1, "validate20")), floor_cpu, 8)
    ratio_row("the same in CPU time: `decl --version`",
              cpu_median(table.get("startup", "decl", 1, "version")), floor_cpu, 4, strict=True)
    # containers (4)
    ratio_row("create 20 containers, default parallelism / Compose",
              table.median("containers", "decl", 20, "create"),
              table.median("containers", "compose", 20, "create"), 0.8)
    ratio_row("create 20 containers, `--parallelism 1` / Compose",
              table.median("containers", "decl-p1", 20, "create"),
              table.median("containers", "compose", 20, "create"), 1.0)
    compose20 = table.median("containers", "compose", 20, "create")
    for floor_tool, what in (("loop-p10", "10 at once"), ("loop-serial", "one at a time")):
        floor20 = table.median("containers", floor_tool, 20, "create")
        if floor20 is not None and compose20:
            row(f"(reference, not a target) a bare docker SDK create + start loop, {what} / "
                "Compose: what the engine gives a client working that way (bench/floor_sweep.py "
                "tries every concurrency)",
                f"{floor20:.2f} / {compose20:.2f} = {floor20 / compose20:.2f}", None)
    for result in table.by_key.values():
        if result["case"] == "containers" and result["phase"].startswith("noop x"):
            codes = result.get("note", "")
            row(f"no-op `decl apply -y --parallelism 1` on {result['n']} containers, "
                f"{len(result['samples'])} runs: every exit 0 (never 134)", codes,
                codes.strip() == f"exit codes: 0 x{len(result['samples'])}")
    # fleet (5)
    ratio_row("no-op plan, 100 hosts x 3 venvs / Ansible 20 forks `--check`",
              table.median("fleet", "decl", 100, "noop plan"),
              table.median("fleet", "ansible-f20", 100, "noop plan"), 0.1)
    # the earlier targets, kept
    for case, peer, limit, what in (("venvs", "ansible", 0.2, "≥ 5x faster than Ansible"),
                                    ("venvs", "pyinfra", 0.5, "≥ 2x faster than pyinfra"),
                                    ("containers", "ansible", 0.2, "≥ 5x faster than Ansible"),
                                    ("containers", "compose", 1.0, "no slower than Compose")):
        for n in table.sizes(case):
            ratio_row(f"no-op re-run, {case}, N = {n}: {what}",
                      table.median(case, "decl", n, "noop"), table.median(case, peer, n, "noop"),
                      limit)
    for phase, slope in slopes.items():
        if phase.startswith("validate"):
            continue
        limit_row(f"`decl plan` ({phase}): no per-resource process start-up", slope, 10,
                  unit="ms per resource", strict=True)
    if not out:
        return []
    return ["| target | figures | verdict |", "|---|---|---|", *out]


def not_ahead(table: Table) -> list[str]:
    """Every row where decl (at either parallelism) is not faster than a peer."""
    out = []
    for case, decls in DECLS.items():
        for n in table.sizes(case):
            for phase, label in PHASES[case]:
                for tool in decls:
                    mine = table.median(case, tool, n, phase)
                    for peer in PEERS[case]:
                        other = table.median(case, peer, n, phase)
                        if mine is not None and other is not None and mine >= other:
                            out.append(f"- {case}, N = {n}, {label}: {tool} {mine:.2f} s, "
                                       f"{peer} {other:.2f} s ({mine / other:.2f}x)")
    return out or ["- none: decl is ahead of every peer in every row measured."]


def machine_lines(document: dict) -> list[str]:
    """The machine, the load during each case, and every tool's version."""
    machine = document["machine"]
    lines = [f"- CPU: {machine['cpu']}, `nproc` = {machine['nproc']}",
             f"- OS: {machine['os']}, kernel {machine['kernel']}",
             "- `free -h`:", "", "```", machine["memory"], "```", "",
             "- Load average (1 min) during each case: " + "; ".join(
                 f"{case} {v['min']:.1f}–{v['max']:.1f} (mean {v['mean']:.1f})"
                 for case, v in document.get("load", {}).items()) +
             " — the bench's own work counts in it (dockerd and containerd, the fleet's sshd "
             "and remote Pythons, the peers' forks) beside whatever else ran on the machine, "
             "so the absolute figures carry it; the ratios are taken in the same run, tool "
             "after tool, repetition after repetition.",
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
             "N = 10 and 50, Ansible's and pyinfra's no-op runs at N = 50). `decl` runs at "
             f"`--parallelism {settings['parallelism']}` (its default), `decl-p1` at "
             "`--parallelism 1`: the serial peers are compared with both, and each table says "
             "which tools work in parallel. Verdicts are computed by bench/report.py from "
             "these figures.",
             "", "Runs that produced these figures: " + "; ".join(
                 f"`{str(r['command']).strip()}` ({r['date']}, {r['seconds']} s)" for r in runs),
             ""]
    for case in ("venvs", "containers", "fleet"):
        if not table.sizes(case):
            continue
        lines += [f"## {TITLES[case]}", "", *case_table(table, case), ""]
        if case == "fleet":
            lines += ["Time per added host:", "",
                      *slope_lines(table, "fleet", [*DECLS["fleet"], *PEERS["fleet"]],
                                   ["noop plan", "noop apply"], "host"), ""]
            created = [r for r in document["results"]
                       if r["case"] == "fleet" and r["phase"] == "create"]
            lines += [f"Set-up (information): decl created the fleet's venvs at N = {r['n']} "
                      f"in {r['median']:.1f} s ({r['note']})." for r in created] + [""]
        if case == "containers":
            lines += [f"Stability: `decl apply -y --parallelism 1`, no-op, N = {r['n']}, "
                      f"{len(r['samples'])} runs: {r['note']}; median {r['median']:.2f} s."
                      for r in document["results"]
                      if r["case"] == "containers" and r["phase"].startswith("noop x")] + [""]
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
    parse_rows = sorted((r for r in document["results"] if r["case"] == "parse"),
                        key=lambda r: (r["phase"], r["n"]))
    if parse_rows:
        lines += ["## Parse time of large manifests", "",
                  "`decl validate` of a block-style YAML manifest of N MB of venvs: read, "
                  "render, check; nothing discovered. `plain`: literal values; `templated`: "
                  "a Jinja template in every path.", "",
                  "| MB | variant | manifest | seconds | seconds per MB | CPU seconds |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['n']} | {r['phase'].replace('validate', '').strip() or '—'} | "
                  f"{r['note']} | {cell(r)} | {r['median'] / r['n']:.2f} | "
                  f"{cpu_cell(r)} |" for r in parse_rows]
        lines.append("")
    startup = [r for r in document["results"] if r["case"] == "startup"]
    if startup:
        floor = table.median("startup", "python", 1, "pass")
        floor_cpu = cpu_median(table.get("startup", "python", 1, "pass"))
        lines += ["## Start-up", "",
                  "| command | seconds | / `python -c pass` | CPU seconds | CPU / `python -c "
                  "pass` |", "|---|---|---|---|---|"]
        names = {("decl", "version"): "decl --version",
                 ("decl", "validate20"): "decl validate (20 resources, 2 providers)",
                 ("python", "pass"): "python -c pass (the same interpreter and site)",
                 ("python", "pass, no site"): "python -S -c pass (no site-packages, no .pth "
                                              "files: not a floor decl can reach)",
                 ("ansible", "version"): "ansible-playbook --version",
                 ("pyinfra", "version"): "pyinfra --version",
                 ("compose", "version"): "docker-compose version"}
        for r in startup:
            name = names.get((r["tool"], r["phase"]), f"{r['tool']} {r['phase']}")
            times = f"{r['median'] / floor:.1f}x" if floor else "—"
            mine = cpu_median(r)
            cpu_times = f"{mine / floor_cpu:.1f}x" if mine and floor_cpu else "—"
            lines.append(f"| `{name}` | {cell(r)} | {times} | {cpu_cell(r)} | {cpu_times} |")
        lines.append("")
    target_lines = targets(table, slopes)
    if target_lines:
        lines += ["## Targets and verdicts", "",
                  "Written by bench/report.py from the medians above.", "", *target_lines, ""]
    lines += ["## Where decl is not ahead", "", *not_ahead(table), ""]
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
