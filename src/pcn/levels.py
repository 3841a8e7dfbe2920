"""Levels of a DAG: each node's distance to the output, and levelling by identity nodes.

Z-IL (thesis chapter 3) needs a *levelled* graph: every path from a node to the output
has the same length, so the error front reaches each node at exactly one step. A graph
with skip connections is levelled by splitting each long edge with identity nodes
(thesis Algorithm 4), which changes neither the function nor backprop's gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import equinox as eqx

from .graph import Edge, Node, PCGraph


def node_levels(graph: PCGraph, outputs: Iterable[str]) -> dict[str, int]:
    """Longest distance (in edges) from every node to the nearest of `outputs`.

    Nodes that reach no output are left out. Raises `ValueError` on a cyclic graph.
    """
    if graph.order is None:
        raise ValueError(f"Levels need a DAG, but this graph has a cycle ({graph.cycle_hint()}).")
    outputs = set(outputs)
    levels: dict[str, int] = {}
    for name in reversed(graph.order):
        children = [
            levels[e.child] + 1 for e in graph.edges if name in e.parents and e.child in levels
        ]
        if name in outputs:
            levels[name] = 0
        elif children:
            levels[name] = max(children)
    return levels


def is_levelled(graph: PCGraph, outputs: Iterable[str]) -> bool:
    """True when every edge between nodes that reach an output spans exactly one level."""
    levels = node_levels(graph, outputs)
    return all(
        levels[p] == levels[e.child] + 1
        for e in graph.edges
        for p in e.parents
        if p in levels and e.child in levels
    )


def level_graph(graph: PCGraph, outputs: Iterable[str]) -> PCGraph:
    """An equivalent levelled graph: every edge from a node more than one level above its
    child is routed through identity nodes, one per skipped level (thesis Algorithm 4).

    Only single-parent edges can be split; identity nodes are named
    `"<parent>><child>#<k>"` and carry the parent's value (Gaussian, precision 1).

    A residual block's skip edge h0 -> h1 spans two levels (h0 -> a1 -> h1 is the other
    path); levelling routes it through one identity node:

    >>> import jax
    >>> from pcn.architectures import resnet
    >>> graph = resnet((4, 8, 3), blocks=1, key=jax.random.key(0))
    >>> node_levels(graph, ["y"])
    {'y': 0, 'h1': 1, 'a1': 2, 'h0': 3, 'x': 4}
    >>> levelled = level_graph(graph, ["y"])
    >>> is_levelled(graph, ["y"]), is_levelled(levelled, ["y"])
    (False, True)
    >>> [node.name for node in levelled.nodes[len(graph.nodes) :]]
    ['h0>h1#1']
    """
    outputs = tuple(outputs)
    levels = node_levels(graph, outputs)
    nodes, edges = list(graph.nodes), []
    for index, edge in enumerate(graph.edges):
        if edge.child not in levels or not edge.parents:
            edges.append(edge)
            continue
        gaps = {p: levels[p] - levels[edge.child] - 1 for p in edge.parents if p in levels}
        if not any(gaps.values()):
            edges.append(edge)
            continue
        if len(edge.parents) != 1:
            raise ValueError(
                f"Edge {index} ({edge.parents} -> {edge.child!r}) has several parents at "
                "different levels; split it into single-parent edges before levelling."
            )
        (parent,) = edge.parents
        shape = graph.node(parent).shape
        previous = parent
        for k in range(gaps[parent]):
            name = f"{parent}>{edge.child}#{k + 1}"
            nodes.append(Node(name, shape))
            edges.append(Edge(eqx.nn.Identity(), previous, name))
            previous = name
        edges.append(Edge(edge.module, previous, edge.child))
    return PCGraph(nodes, edges, graph.shared)
