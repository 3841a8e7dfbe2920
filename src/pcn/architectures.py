"""Builders of the architectures of thesis chapter 3 as `PCGraph`s: a CNN, a many-to-one
RNN with one shared cell, a residual MLP and a transformer block. The same graphs train
by IL, by Z-IL (level them first where they have skips) and by BP.

Residual connections are two edges into one node (an identity edge and the branch), so
the skip crosses more levels than the branch: `pcn.level_graph` inserts the identity
nodes that make Z-IL exact (thesis section 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import layers
from ._validation import check_at_least
from .graph import Edge, Node, PCGraph


def cnn(
    in_shape: Sequence[int] = (1, 28, 28),
    *,
    channels: Sequence[int] = (8, 16),
    hidden: int = 64,
    classes: int = 10,
    activation: str = "relu",
    key: jax.Array,
) -> PCGraph:
    """Conv (3x3, same) per entry of `channels`, each after the first preceded by 2x2 max
    pooling on its edge, then pool + flatten + linear to `hidden`, then linear to the
    classes. Nodes: `"x"`, `"c1"`, `"c2"`, ..., `"h"`, `"y"`."""
    check_at_least("len(channels)", len(channels), 1)
    c, height, width = in_shape
    keys = jax.random.split(key, len(channels) + 2)
    nodes = [Node("x", in_shape)]
    edges = []
    previous, size = "x", (height, width)
    for i, out_c in enumerate(channels):
        conv = layers.Conv2d(c, out_c, 3, padding="SAME", key=keys[i])
        module = conv if i == 0 else eqx.nn.Sequential([layers.MaxPool2d(2), conv])
        if i:
            size = (size[0] // 2, size[1] // 2)
        name = f"c{i + 1}"
        nodes.append(Node(name, (out_c, *size), activation=activation))
        edges.append(Edge(module, previous, name))
        previous, c = name, out_c
    flat = c * (size[0] // 2) * (size[1] // 2)
    to_hidden = eqx.nn.Sequential(
        [layers.MaxPool2d(2), layers.Flatten(), layers.Linear(flat, hidden, key=keys[-2])]
    )
    nodes += [Node("h", hidden, activation=activation), Node("y", classes)]
    edges += [
        Edge(to_hidden, previous, "h"),
        Edge(layers.Linear(hidden, classes, key=keys[-1]), "h", "y"),
    ]
    return PCGraph(nodes, edges)


def rnn(
    input_size: int,
    hidden: int,
    classes: int,
    *,
    steps: int,
    activation: str = "tanh",
    key: jax.Array,
) -> PCGraph:
    """A many-to-one RNN unrolled over `steps` (thesis Eq. 3.5): nodes `"h0"` (provide
    zeros), inputs `"x1"`..`"x<steps>"`, hidden `"h1"`.., output `"y"`; every recurrent
    edge uses the ONE shared module `"cell"`. Feed it with `rnn_batch`."""
    check_at_least("steps", steps, 1)
    k_cell, k_out = jax.random.split(key)
    cell = layers.RNNCell(input_size, hidden, activation=activation, key=k_cell)
    nodes = [Node("h0", hidden)]
    nodes += [Node(f"x{t}", input_size) for t in range(1, steps + 1)]
    nodes += [Node(f"h{t}", hidden) for t in range(1, steps + 1)]
    nodes.append(Node("y", classes))
    edges = [Edge("cell", (f"h{t - 1}", f"x{t}"), f"h{t}") for t in range(1, steps + 1)]
    edges.append(Edge(layers.Linear(hidden, classes, key=k_out), f"h{steps}", "y"))
    return PCGraph(nodes, edges, shared={"cell": cell})


def rnn_batch(
    graph: PCGraph, xs: np.ndarray | jax.Array, y: np.ndarray | jax.Array | None = None
) -> dict[str, jax.Array]:
    """Node values of an `rnn` graph for sequences `xs` of shape (batch, steps, input):
    `"x<t>"` per step, `"h0"` zeros, and `"y"` if given."""
    xs = jnp.asarray(xs)
    steps = sum(1 for n in graph.names if n.startswith("x"))
    if xs.ndim != 3 or xs.shape[1] != steps:
        raise ValueError(
            f"`xs` must have shape (batch, {steps}, input_size) for this graph, got {xs.shape}."
        )
    batch = {f"x{t + 1}": xs[:, t] for t in range(steps)}
    batch["h0"] = jnp.zeros((xs.shape[0], *graph.node("h0").shape), xs.dtype)
    if y is not None:
        batch["y"] = jnp.asarray(y)
    return batch


def resnet(
    sizes: Sequence[int],
    *,
    blocks: int = 2,
    activation: str = "relu",
    key: jax.Array,
) -> PCGraph:
    """A residual MLP: `"x"` -> `"h0"` = f(W x), then `blocks` blocks
    `"a<k>"` = f(W1 h_{k-1}), `"h<k>"` = W2 a_k + h_{k-1} (identity skip edge), then
    `"y"` = W h_blocks. `sizes` is (input, width, classes)."""
    n_in, width, classes = sizes
    keys = jax.random.split(key, 2 * blocks + 2)
    nodes = [Node("x", n_in), Node("h0", width, activation=activation)]
    edges = [Edge(layers.Linear(n_in, width, key=keys[0]), "x", "h0")]
    for k in range(1, blocks + 1):
        nodes += [Node(f"a{k}", width, activation=activation), Node(f"h{k}", width)]
        edges += [
            Edge(layers.Linear(width, width, key=keys[2 * k - 1]), f"h{k - 1}", f"a{k}"),
            Edge(layers.Linear(width, width, key=keys[2 * k]), f"a{k}", f"h{k}"),
            Edge(layers.Identity(), f"h{k - 1}", f"h{k}"),
        ]
    nodes.append(Node("y", classes))
    edges.append(Edge(layers.Linear(width, classes, key=keys[-1]), f"h{blocks}", "y"))
    return PCGraph(nodes, edges)


class _MeanOverTokens(eqx.Module):
    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        return jnp.mean(x, axis=0)


def transformer(
    seq: int,
    dim: int,
    classes: int,
    *,
    heads: int = 2,
    hidden: int | None = None,
    causal: bool = True,
    key: jax.Array,
) -> PCGraph:
    """One pre-norm transformer block on `"x"` (seq, dim) with a node after each branch
    and each residual sum: `"att"` = MHSA(LN(x)), `"h"` = att + x, `"mlp"` = MLP(LN(h)),
    `"z"` = mlp + h; then `"y"` = W mean_t(z)."""
    hidden = hidden or 2 * dim
    k1, k2, k3 = jax.random.split(key, 3)
    shape = (seq, dim)
    nodes = [
        Node("x", shape),
        Node("att", shape),
        Node("h", shape),
        Node("mlp", shape),
        Node("z", shape),
        Node("y", classes),
    ]
    readout = eqx.nn.Sequential([_MeanOverTokens(), layers.Linear(dim, classes, key=k3)])
    edges = [
        Edge(layers.AttentionSublayer(dim, heads, causal=causal, key=k1), "x", "att"),
        Edge(layers.Identity(), "att", "h"),
        Edge(layers.Identity(), "x", "h"),
        Edge(layers.MLPSublayer(dim, hidden, key=k2), "h", "mlp"),
        Edge(layers.Identity(), "mlp", "z"),
        Edge(layers.Identity(), "h", "z"),
        Edge(readout, "z", "y"),
    ]
    return PCGraph(nodes, edges)
