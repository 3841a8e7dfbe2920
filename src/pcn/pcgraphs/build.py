"""A `pcn.PCGraph` from an adjacency mask: one node per neuron group, one edge per block.

The prediction of neuron i is `mu_i = sum_j theta_ji f(x_j)` (thesis Eq. 5.1) with
`theta` masked by `M`. Grouping the neurons, `mu_b = sum_a W_ab f(x_a)` over the groups
`a` with any connection into `b`, where `W_ab` is the `(|b|, |a|)` block of `theta`
masked by the transposed block of `M` (a `MaskedBlock`, as `pcn.layers.MaskedLinear`).
So a layered mask becomes a layered graph (no `n x n` product), and connections within
a group are a self-edge (a cycle: use `zeros_init` or `normal_init`, not
`forward_init`). The energy is Eq. 5.2, `E = 1/2 sum_i eps_i^2`, summed over the groups
that have an incoming edge (a group with none is a root and, as everywhere in `pcn`,
carries no energy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..activations import Activation, get_activation
from ..graph import Edge, Node, PCGraph
from .topology import Topology


class TopK(eqx.Module):
    """Top-k firing of a cluster (section 5.5): `base(x)` on the `k` neurons with the
    highest `base(x)` (k = max(1, round(fraction * size))), zero elsewhere."""

    fraction: float = eqx.field(static=True)
    base: Activation = eqx.field(static=True)

    def __init__(self, fraction: float, base: str | Activation = "identity"):
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"The top-k `fraction` must be in (0, 1], got {fraction!r}.")
        self.fraction = float(fraction)
        self.base = get_activation(base)

    def __call__(self, x: jax.Array) -> jax.Array:
        fired = self.base(x)
        k = max(1, round(self.fraction * x.shape[-1]))
        threshold = jax.lax.top_k(fired, k)[0][..., -1:]
        return jnp.where(fired >= threshold, fired, 0.0)


def top_k(fraction: float, base: str | Activation = "identity") -> TopK:
    """The top-k activation of assemblies of neurons (section 5.5), e.g. `top_k(0.2)`."""
    return TopK(fraction, base)


class MaskedBlock(eqx.Module):
    """One block of Eq. 5.1 for one example: `x_a -> (W * M) f_a(x_a) (+ b)`.

    `W` is `(|b|, |a|)`; the boolean `mask` `M` (the transposed block of the adjacency)
    is not a floating-point leaf, so it is never trained; masked weights start at zero
    and get zero gradient (as in `pcn.layers.MaskedLinear`).
    """

    f: Activation = eqx.field(static=True)
    weight: jax.Array
    mask: jax.Array | None  # None: a full block, nothing to mask
    bias: jax.Array | None

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        weight = self.weight if self.mask is None else jnp.where(self.mask, self.weight, 0)
        y = weight @ self.f(x)
        return y if self.bias is None else y + self.bias


def _activation_of(activation, group: str) -> Activation:
    if isinstance(activation, Mapping):
        return get_activation(activation.get(group, "identity"))
    return get_activation(activation)


def pc_graph(
    mask: Topology | np.ndarray | jax.Array,
    groups: Mapping[str, Iterable[int]] | None = None,
    *,
    activation: str | Activation | Mapping[str, str | Activation] = "tanh",
    key: jax.Array,
    bias: bool = False,
    weight_scale: float = 1.0,
) -> PCGraph:
    """The PC graph of adjacency `mask` (or a `Topology`) with neuron `groups`.

    Args:
        mask: `(n, n)` binary mask, `M[j, i]` True when neuron j predicts neuron i; or a
            `Topology` (then `groups` is taken from it).
        groups: `{name: neuron indices}` partitioning `range(n)`; one value node each.
        activation: `f` of Eq. 5.1, applied to a group's values on its outgoing edges;
            one for all groups, or `{group: f}` (missing groups: identity).
        key: PRNG key of the weights.
        bias: add a learned bias to every predicted group (Eq. 5.1 has none).
        weight_scale: factor on the initial weights, uniform in +-1/sqrt(|source group|)
            (`eqx.nn.Linear`'s init), drawn with NumPy seeded by `key`.

    Returns:
        A `pcn.PCGraph` whose nodes are the groups (in order) and whose edges are the
        non-empty blocks of `mask`.
    """
    if isinstance(mask, Topology):
        if groups is not None:
            raise ValueError("Pass either a `Topology` or a mask with `groups`, not both.")
        topology = mask
    else:
        if groups is None:
            raise ValueError("A bare mask needs `groups`: `{name: neuron indices}`.")
        topology = Topology(mask, groups)
    if isinstance(activation, Mapping):
        unknown = sorted(set(activation) - set(topology.groups))
        if unknown:
            raise ValueError(
                f"`activation` names groups {unknown} that are not in the topology; "
                f"groups are {list(topology.groups)}."
            )
    nodes = [Node(name, len(idx)) for name, idx in topology.groups.items()]
    pairs = [(a, b) for b in topology.groups for a in topology.groups if topology.block(a, b).any()]
    # weights drawn with NumPy from `key`: eager jax.random would compile once per shape
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).reshape(-1))
    dtype = jnp.result_type(float)
    edges, predicted = [], set()
    for a, b in pairs:
        mask_ab = topology.block(a, b).T  # (|b|, |a|)
        bound = weight_scale / np.sqrt(mask_ab.shape[1])  # eqx.nn.Linear's uniform init
        weight = np.where(mask_ab, rng.uniform(-bound, bound, mask_ab.shape), 0.0)
        b_vec = None
        if bias and b not in predicted:
            b_vec = jnp.asarray(rng.uniform(-bound, bound, mask_ab.shape[0]), dtype)
        predicted.add(b)
        block_mask = None if mask_ab.all() else jnp.asarray(mask_ab)
        module = MaskedBlock(
            _activation_of(activation, a), jnp.asarray(weight, dtype), block_mask, b_vec
        )
        edges.append(Edge(module, a, b))
    return PCGraph(nodes, edges)


def weight_matrix(graph: PCGraph, topology: Topology) -> np.ndarray:
    """The effective `(n, n)` matrix `theta` (`theta[j, i]`: weight of j predicting i) of a
    graph made by `pc_graph(topology, ...)`; for inspection and tests, not for compute."""
    theta = np.zeros((topology.n, topology.n))
    for edge in graph.edges:
        module = graph.edge_module(edge)
        (a,), b = edge.parents, edge.child
        rows, cols = topology.groups[a], topology.groups[b]
        mask = True if module.mask is None else np.asarray(module.mask)
        theta[np.ix_(rows, cols)] = np.where(mask, module.weight, 0).T
    return theta
