"""`decl ping`: one line per host, reachable with timings, or the reason it is not."""

from __future__ import annotations

from typing import Any

from decl.render.text import esc


def ping_text(results: list[Any]) -> list[str]:
    """PingResults as aligned text lines (rich markup)."""
    width = max([len(r.host) for r in results] + [4])
    lines = []
    for result in results:
        name = f"{result.host:<{width}}"
        if result.reachable:
            facts = [f"connect {result.connect_ms:g} ms", f"round trip {result.rtt_ms:g} ms"]
            if result.os:
                facts.append(result.os)
            facts.append(f"python {result.python}" if result.python else "no python")
            lines.append(f"{esc(name)} [green]ok[/]  {esc(result.target)}  "
                         f"[dim]{esc(', '.join(facts))}[/]")
        else:
            lines.append(f"{esc(name)} [red]{esc(result.kind or 'failed')}[/]  "
                         f"{esc(result.target)}  {esc(result.detail)}")
    reachable = sum(1 for r in results if r.reachable)
    lines.append(f"{reachable} of {len(results)} hosts reachable")
    return lines
