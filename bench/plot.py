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
         "compose": ("tab:purple", "D"), "by-hand": ("tab:gray", "v"),
         "loop-serial": ("tab:brown", "+"), "loop-p10": ("tab:olive", "+")}


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


def bars(ax, drawn: dict[str, list[tuple]], title: str) -> None:
    """One N only: a horizontal bar per tool (median, whiskers min-max), its value written."""
    labels = list(drawn)
    n = drawn[labels[0]][0][0]
    medians = [drawn[label][0][1] for label in labels]
    low = [m - drawn[label][0][2] for m, label in zip(medians, labels, strict=True)]
    high = [drawn[label][0][3] - m for m, label in zip(medians, labels, strict=True)]
    colours = [STYLE.get(label, ("tab:gray", "x"))[0] for label in labels]
    ax.barh(labels, medians, xerr=[low, high], color=colours, alpha=0.75, capsize=3)
    for y, (median, label) in enumerate(zip(medians, labels, strict=True)):
        ax.annotate(f"{median:.2f} s", (drawn[label][0][3], y), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_title(f"{title} (N = {n})", fontsize=10)
    ax.set_xlabel("seconds, log scale (median; whiskers: min-max)")
    ax.set_xlim(right=max(drawn[label][0][3] for label in labels) * 2.5)  # room for labels
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.grid(True, axis="x", which="both", alpha=0.3)


def main(source: pathlib.Path, target: pathlib.Path) -> None:
    """Draw the panels that have data."""
    results = json.loads(source.read_text())["results"]
    panels = [p for p in PANELS if series(results, p[0], p[1])]
    columns = 2
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(11, 3.8 * rows), squeeze=False)
    for ax, (case, phase, title) in zip(axes.flat, panels, strict=False):
        drawn = series(results, case, phase)
        if len({p[0] for pts in drawn.values() for p in pts}) == 1:
            bars(ax, drawn, title)
            continue
        for label, points in drawn.items():
            ns = [p[0] for p in points]
            colour, marker = STYLE.get(label, (None, "x"))
            ax.plot(ns, [p[1] for p in points], marker=marker, color=colour, label=label)
            ax.fill_between(ns, [p[2] for p in points], [p[3] for p in points], alpha=0.15,
                            color=colour)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("N")
        ax.set_ylabel("seconds (median; band: min-max)")
        ax.set_xscale("linear" if case == "parse" else "log")  # parse: linear in MB
        ax.set_yscale("log" if phase is not None else "linear")
        if phase is None:
            ax.set_ylim(bottom=0)
        ax.set_xticks(sorted({p[0] for pts in series(results, case, phase).values()
                              for p in pts}))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
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
