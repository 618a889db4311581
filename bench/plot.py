"""bench/results.png: time against N for each tool, one panel per case and run.

    bench/.venv-peers/bin/python bench/plot.py [bench/results.json] [bench/results.png]

matplotlib comes from the bench's own venv (bench/peers.py), never from decl's dependencies.
"""

from __future__ import annotations

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PANELS = [("venvs", "create", "venvs: create from nothing"),
          ("venvs", "noop", "venvs: no-op re-run"),
          ("containers", "create", "containers: create from nothing"),
          ("containers", "noop", "containers: no-op re-run"),
          ("fleet", "noop plan", "N SSH hosts x 3 venvs: no-op plan"),
          ("fleet", "noop apply", "N SSH hosts x 3 venvs: no-op apply"),
          ("parse", None, "decl validate of an N MB manifest"),
          ("plan", None, "decl plan / validate on converged machines")]
STYLE = {"decl": ("tab:blue", "o"), "decl-p1": ("tab:blue", "x"), "decl-uv": ("tab:cyan", "o"),
         "ansible": ("tab:red", "s"), "ansible-f5": ("tab:orange", "s"),
         "ansible-f20": ("tab:red", "s"), "pyinfra": ("tab:green", "^"),
         "compose": ("tab:purple", "D"), "by-hand": ("tab:gray", "v")}


def series(results: list[dict], case: str, phase: str | None) -> dict[str, list[tuple]]:
    """label -> [(n, median, min, max)] sorted by n."""
    out: dict[str, list[tuple]] = {}
    for r in results:
        if r["case"] != case or (phase is not None and r["phase"] != phase):
            continue
        label = r["tool"] if phase is not None else r["phase"]
        out.setdefault(label, []).append((r["n"], r["median"], min(r["samples"]),
                                          max(r["samples"])))
    return {k: sorted(v) for k, v in out.items()}


def main(source: pathlib.Path, target: pathlib.Path) -> None:
    """Draw the panels that have data."""
    results = json.loads(source.read_text())["results"]
    panels = [p for p in PANELS if series(results, p[0], p[1])]
    columns = 2
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(11, 3.8 * rows), squeeze=False)
    for ax, (case, phase, title) in zip(axes.flat, panels, strict=False):
        for label, points in series(results, case, phase).items():
            ns = [p[0] for p in points]
            colour, marker = STYLE.get(label, (None, "x"))
            ax.plot(ns, [p[1] for p in points], marker=marker, color=colour, label=label)
            ax.fill_between(ns, [p[2] for p in points], [p[3] for p in points], alpha=0.15,
                            color=colour)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("N")
        ax.set_ylabel("seconds (median; band: min-max)")
        ax.set_xscale("log")
        ax.set_yscale("log" if phase is not None else "linear")
        if phase is None:
            ax.set_ylim(bottom=0)
        ax.set_xticks(sorted({p[0] for pts in series(results, case, phase).values()
                              for p in pts}))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json",
         pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "results.png")
