"""`decl graph`: the manifest's resources and what each needs, as DOT or Mermaid text.

Edges point from a resource to what it needs first: `depends_on` (explicit), the networks
and volumes a container names (implied) and the host a resource lives on. With a plan, each
node carries its planned action's glyph and colour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from decl.core.plan import Action, Plan

# Graphviz fill colours per planned action (the plan text's colours, lightened).
FILL = {
    Action.CREATE: "#d9f2d9", Action.DELETE: "#f7d4d4", Action.REPLACE: "#ecd5f2",
    Action.UPDATE: "#fbf0c8", Action.UPDATE_RESTART: "#fbf0c8", Action.START: "#d3f0f5",
    Action.STOP: "#d3f0f5", Action.ADOPT: "#d6e4fa", Action.CONFLICT: "#f2a7a7",
    Action.NOOP: "#ffffff",
}
STROKE = {
    Action.CREATE: "#2e8b2e", Action.DELETE: "#b22222", Action.REPLACE: "#8b2e9e",
    Action.UPDATE: "#b08800", Action.UPDATE_RESTART: "#b08800", Action.START: "#1b8a9a",
    Action.STOP: "#1b8a9a", Action.ADOPT: "#2a5db0", Action.CONFLICT: "#b22222",
    Action.NOOP: "#555555",
}


@dataclass(frozen=True)
class Edge:
    """`source` needs `target` first; `kind` is depends_on, network, volume or host."""

    source: str
    target: str
    kind: str

    @property
    def implied(self) -> bool:
        """Not written as depends_on: read from the resource's fields."""
        return self.kind != "depends_on"


@dataclass
class Graph:
    """Nodes (addresses, plus host.NAME for hosts) and edges."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)


def manifest_graph(manifest: Any, plan: Plan | None = None) -> Graph:
    """The graph of a validated Manifest; with a plan, each node's planned action."""
    actions = {c.address: c.action for c in plan.changes} if plan is not None else {}
    graph = Graph()
    addresses = {f"{kind}.{name}" for kind, name, _ in manifest.resources()}
    for kind, name, model in manifest.resources():
        address = f"{kind}.{name}"
        host = manifest.host_name(model)
        node = {"kind": kind, "provider": manifest.provider_name(kind, model), "host": host}
        if address in actions:
            node["action"] = actions[address].value
        graph.nodes[address] = node
        for dep in sorted(model.depends_on):
            graph.edges.append(Edge(address, dep, "depends_on"))
        explicit = set(model.depends_on)
        for ref in model.references():
            if ref in addresses and ref not in explicit:
                graph.edges.append(Edge(address, ref, ref.split(".", 1)[0]))
        graph.nodes.setdefault(f"host.{host}", {"kind": "host"})
        graph.edges.append(Edge(address, f"host.{host}", "host"))
    # Hosts last, in name order, so that resources keep the manifest's order.
    hosts = sorted(n for n in graph.nodes if n.startswith("host."))
    graph.nodes = {**{n: v for n, v in graph.nodes.items() if not n.startswith("host.")},
                   **{n: graph.nodes[n] for n in hosts}}
    return graph


def _label(address: str, node: dict[str, str]) -> str:
    if node.get("kind") == "host":
        return address
    action = node.get("action")
    glyph = Action(action).glyph.strip() if action else ""
    head = f"{glyph} {address}" if glyph else address
    return f"{head}\n{node['provider']}"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text."""
    lines = ["digraph decl {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
             'fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for address, node in graph.nodes.items():
        attrs = [f"label={_dot_quote(_label(address, node))}"]
        if node.get("kind") == "host":
            attrs += ["shape=component", 'fillcolor="#eeeeee"']
        elif "action" in node:
            action = Action(node["action"])
            attrs += [f'fillcolor="{FILL[action]}"', f'color="{STROKE[action]}"']
        lines.append(f"  {_dot_quote(address)} [{', '.join(attrs)}];")
    for edge in graph.edges:
        attrs = []
        if edge.kind == "host":
            attrs = ["style=dotted", 'color="#888888"', 'label="host"']
        elif edge.implied:
            attrs = ["style=dashed", f"label={_dot_quote(edge.kind)}"]
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", address)


def to_mermaid(graph: Graph) -> str:
    """Mermaid flowchart text (GitHub renders it in a ```mermaid block)."""
    lines = ["flowchart LR"]
    used: set[str] = set()
    for address, node in graph.nodes.items():
        label = _label(address, node).replace("\n", "<br/>").replace('"', "#quot;")
        ident = _mermaid_id(address)
        if node.get("kind") == "host":
            lines.append(f'  {ident}[("{label}")]')
        else:
            lines.append(f'  {ident}["{label}"]')
        if "action" in node:
            used.add(node["action"])
    for edge in graph.edges:
        source, target = _mermaid_id(edge.source), _mermaid_id(edge.target)
        if edge.kind == "depends_on":
            lines.append(f"  {source} --> {target}")
        else:
            lines.append(f"  {source} -.->|{edge.kind}| {target}")
    for action in Action:
        if action.value in used:
            lines.append(f"  classDef {action.value} fill:{FILL[action]},"
                         f"stroke:{STROKE[action]}")
    for address, node in graph.nodes.items():
        if "action" in node:
            lines.append(f"  class {_mermaid_id(address)} {node['action']}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(Exception):
    """Graphviz's `dot` is not on PATH."""


def render_with_dot(dot_text: str, fmt: str, dot: str | None = None) -> bytes:
    """SVG or PNG bytes from DOT text, through Graphviz's `dot` (GraphvizMissing without it)."""
    import shutil
    import subprocess

    program = dot or shutil.which("dot")
    if program is None:
        raise GraphvizMissing("dot")
    done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                          check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace").strip() or
                           f"dot exited with code {done.returncode}")
    return done.stdout
