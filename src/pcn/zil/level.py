"""Level structure of a computational graph and its levelling (thesis section 3.5).

A graph is *levelled* when every path from a vertex to the output has the same
length (Eq. 3.25: every vertex lies in exactly one S_k).  Z-IL equals backprop
only on levelled graphs (Theorem 5); residual connections, parameters shared
across depths and attention break the property.  Algorithm 4 levels any DAG by
splitting every edge that skips levels with identity vertices.

Here the level of a vertex is its longest distance to a clamped output vertex;
an edge u -> w (u an input of w) then spans level(u) - level(w) >= 1 levels and
needs level(u) - level(w) - 1 identity vertices.  The vertices of the PC graph
are the *live* differentiable values: parameter leaves and op outputs that
depend on a parameter and reach an output through differentiable operations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .trace import Graph

__all__ = ["Structure", "Vertex", "VertexGraph", "structure", "vertex_graph"]


@dataclass(frozen=True)
class Structure:
    """Liveness and level structure of a traced graph (before identity insertion).

    `clamped[j]` is the value clamped to the j-th target leaf, or -1 when that
    output does not depend on the parameters.  `level` maps every live value to
    its longest distance to a clamped vertex; `depth` (K in Algorithm 5) is the
    largest level of a live parameter leaf.
    """

    graph: Graph
    live: frozenset[int]
    live_ops: tuple[int, ...]
    needed_ops: tuple[int, ...]
    clamped: tuple[int, ...]
    level: dict[int, int]
    depth: int
    is_levelled: bool
    num_identities: int


def _identity(a: Any) -> tuple[Any]:
    """Local function of a clamped output copy (op form: returns a tuple)."""
    return (a,)


def _identity_fn(a: Any) -> Any:
    """Local function of an identity vertex of Algorithm 4."""
    return a


def _liveness(g: Graph) -> tuple[set[int], list[int]]:
    """Differentiable values that reach an output, and the ops producing them."""
    live = {v for v in g.outputs if g.values[v].diff}
    live_ops = []
    for op_id in range(len(g.ops) - 1, -1, -1):
        op = g.ops[op_id]
        if op.diff and any(w in live for w in op.outputs):
            live_ops.append(op_id)
            live.update(u for u in op.inputs if g.values[u].diff)
    return live, live_ops[::-1]


def _clamp_outputs(g: Graph, live: set[int], live_ops: list[int]) -> tuple[int, ...]:
    """The vertex clamped to each target leaf.

    The output vertex itself is clamped (thesis Eq. 3.20) unless it is a
    parameter leaf, feeds another vertex, or is returned twice: then a clamped
    identity copy is added, so that the error of the inner vertex still moves.
    """
    consumed = {u for o in live_ops for u in g.ops[o].inputs}
    clamped, seen = [], set()
    for v in g.outputs:
        if not g.values[v].diff:
            clamped.append(-1)
            continue
        if g.values[v].kind == "param" or v in consumed or v in seen:
            val = g.values[v]
            (c,) = g.add_op("output", _identity, [v], [val], f"copy of output value {v}")
            live_ops.append(len(g.ops) - 1)
            live.add(c)
            clamped.append(c)
        else:
            clamped.append(v)
        seen.add(v)
    return tuple(clamped)


def _needed(g: Graph, live_ops: list[int]) -> tuple[int, ...]:
    """Ops the forward pass must run: live ops, effects, and the constants they read."""
    live_set = set(live_ops)
    wanted: set[int] = set()
    needed = []
    for op_id in range(len(g.ops) - 1, -1, -1):
        op = g.ops[op_id]
        if op_id in live_set or op.effectful or any(w in wanted for w in op.outputs):
            needed.append(op_id)
            wanted.update(op.inputs)
    return tuple(needed[::-1])


def _edges(g: Graph, live: frozenset[int], live_ops: tuple[int, ...]):
    """(u, w) for every live input u and live output w of every live op (deduplicated)."""
    for op_id in live_ops:
        op = g.ops[op_id]
        ins = dict.fromkeys(u for u in op.inputs if u in live)
        for w in op.outputs:
            if w in live:
                for u in ins:
                    yield op_id, u, w


def structure(g: Graph) -> Structure:
    """Liveness, clamped outputs and longest-path levels of `g` (adds output copies to `g`)."""
    live, live_ops = _liveness(g)
    for op_id in live_ops:
        op = g.ops[op_id]
        if op.refusal is not None:
            raise ValueError(
                f"pcn.zil: unsupported primitive '{op.name}' at {op.where}: {op.refusal}."
            )
    clamped = _clamp_outputs(g, live, live_ops)
    level = {c: 0 for c in clamped if c >= 0}
    for op_id in reversed(live_ops):
        op = g.ops[op_id]
        top = max(level[w] for w in op.outputs if w in live)
        for u in op.inputs:
            if u in live:
                level[u] = max(level.get(u, 0), top + 1)
    frozen = frozenset(live)
    lops = tuple(live_ops)
    gaps = [level[u] - level[w] - 1 for _, u, w in _edges(g, frozen, lops)]
    depth = max((level[p] for p in g.params if p in live), default=0)
    return Structure(
        g,
        frozen,
        lops,
        _needed(g, live_ops),
        clamped,
        level,
        depth,
        all(d == 0 for d in gaps),
        sum(gaps),
    )


@dataclass(frozen=True)
class Vertex:
    """One vertex of the PC graph with a single output: mu = fn(*slots[inputs])."""

    fn: Callable[..., Any]
    inputs: tuple[int, ...]
    level: int
    source: int  # value id it computes (for an identity: the value it copies)
    name: str


@dataclass(frozen=True)
class VertexGraph:
    """Single-output vertices for the full dynamics, with identities if levelled.

    Slots: the vertices come first (0 .. len(vertices) - 1), then the live
    parameter leaves (`params`: value ids), then the fixed values (`fixed`:
    constants, inputs and other non-differentiable values read by vertices).
    """

    vertices: tuple[Vertex, ...]
    params: tuple[int, ...]
    fixed: tuple[int, ...]
    clamped: tuple[int, ...]  # vertex slot per target leaf, -1 if none
    param_level: tuple[int, ...]


def _output_fn(fn: Callable[..., tuple[Any, ...]], k: int) -> Callable[..., Any]:
    return lambda *ins: fn(*ins)[k]


def vertex_graph(s: Structure, levelled: bool) -> VertexGraph:
    """The PC graph of Eqs. 3.17-3.18, levelled by Algorithm 4 when `levelled`.

    Every live output of an op is its own vertex (thesis: one elementary
    function per vertex).  With `levelled`, every edge u -> w that skips levels
    is replaced by u -> Id -> ... -> Id -> w (Eq. 3.26), one chain per edge.
    """
    g = s.graph
    params = tuple(p for p in g.params if p in s.live)
    fixed = sorted({u for o in s.live_ops for u in g.ops[o].inputs if u not in s.live})
    outs = [(o, k, w) for o in s.live_ops for k, w in enumerate(g.ops[o].outputs) if w in s.live]
    slot: dict[Any, int] = {w: i for i, (_, _, w) in enumerate(outs)}
    n_main = len(outs)
    vertices: list[Vertex] = []
    extra: list[Vertex] = []
    chains: dict[tuple[int, int], Any] = {}
    for op_id, k, w in outs:
        op = g.ops[op_id]
        ins = []
        for u in op.inputs:
            if u not in s.live or not levelled:
                ins.append(u)
                continue
            if (u, w) not in chains:  # one chain per edge, shared by repeated operands
                prev: Any = u
                for lv in range(s.level[u] - 1, s.level[w], -1):  # Id vertices between u, w
                    extra.append(Vertex(_identity_fn, (prev,), lv, u, "identity"))
                    prev = ("id", len(extra) - 1)
                chains[(u, w)] = prev
            ins.append(chains[(u, w)])
        vertices.append(Vertex(_output_fn(op.fn, k), tuple(ins), s.level[w], w, op.name))
    n_vertices = n_main + len(extra)
    slot.update({("id", i): n_main + i for i in range(len(extra))})
    slot.update({p: n_vertices + i for i, p in enumerate(params)})
    slot.update({c: n_vertices + len(params) + i for i, c in enumerate(fixed)})

    def remap(v: Vertex) -> Vertex:
        return Vertex(v.fn, tuple(slot[u] for u in v.inputs), v.level, v.source, v.name)

    return VertexGraph(
        vertices=tuple(remap(v) for v in vertices + extra),
        params=params,
        fixed=tuple(fixed),
        clamped=tuple(slot[c] if c >= 0 else -1 for c in s.clamped),
        param_level=tuple(s.level[p] for p in params),
    )
