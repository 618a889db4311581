"""Dependency order over addresses (graphlib), tolerant of edges to absent nodes."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping


def topological(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes so that each comes after what it depends on (edges to unknown nodes dropped)."""
    nodes = set(graph)
    sorter = graphlib.TopologicalSorter(
        {node: {dep for dep in deps if dep in nodes} for node, deps in sorted(graph.items())}
    )
    return list(sorter.static_order())


def with_dependencies(graph: Mapping[str, Iterable[str]], targets: Iterable[str]) -> set[str]:
    """The targets plus everything they depend on, transitively."""
    chosen: set[str] = set()
    stack = list(targets)
    while stack:
        node = stack.pop()
        if node in chosen:
            continue
        chosen.add(node)
        stack.extend(graph.get(node, ()))
    return chosen
