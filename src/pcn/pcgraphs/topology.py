"""Adjacency masks of PC graphs (thesis section 5.3, Fig. 5.5) with named neuron groups.

A PC graph of `n` neurons predicts `mu_i = sum_j theta_ji f(x_j)` (Eq. 5.1) with the
weights masked entry-wise by a binary matrix `M`: `M[j, i]` is True when neuron `j`
predicts neuron `i`. The diagonal is excluded (a neuron does not predict itself); any
other mask is allowed, cycles included. Neurons are partitioned into named groups
("sensory", "label", "hidden_1", ..., "cluster_1", ...); `pc_graph` makes one value node
per group and one edge per non-empty block of `M`, so a layered mask never costs an
`n x n` product.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

SENSORY = "sensory"
LABEL = "label"


def check_mask(mask: np.ndarray | jax.Array | Sequence[Sequence[float]]) -> np.ndarray:
    """The mask as a boolean `(n, n)` array; `ValueError` unless it is square, binary
    and has an empty diagonal."""
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(
            f"An adjacency mask must be a square (n, n) matrix with n >= 1, got shape {m.shape}."
        )
    if m.dtype != bool:
        if not np.all((m == 0) | (m == 1)):
            raise ValueError("An adjacency mask must be binary: every entry 0 or 1 (or boolean).")
        m = m.astype(bool)
    if np.any(np.diag(m)):
        bad = np.flatnonzero(np.diag(m)).tolist()[:10]
        raise ValueError(
            f"An adjacency mask must have an empty diagonal (a neuron does not predict itself, "
            f"section 5.3); M[i, i] is set for i in {bad}."
        )
    return m


def check_groups(groups: Mapping[str, Iterable[int]], n: int) -> dict[str, np.ndarray]:
    """Groups as `{name: int index array}`; `ValueError` unless they partition `range(n)`."""
    out: dict[str, np.ndarray] = {}
    seen = np.zeros(n, dtype=int)
    for name, idx in groups.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"Group names must be non-empty strings, got {name!r}.")
        arr = np.asarray(list(idx) if not isinstance(idx, np.ndarray | range) else idx)
        arr = np.asarray(arr, dtype=int).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"Group {name!r} is empty; drop it or give it neurons.")
        if arr.min() < 0 or arr.max() >= n:
            raise ValueError(
                f"Group {name!r} holds neuron indices outside range(0, {n}): "
                f"{arr[(arr < 0) | (arr >= n)].tolist()[:10]}."
            )
        seen[arr] += 1
        out[name] = arr
    if np.any(seen != 1):
        missing = np.flatnonzero(seen == 0).tolist()[:10]
        repeated = np.flatnonzero(seen > 1).tolist()[:10]
        raise ValueError(
            "The groups must partition the neurons (each neuron in exactly one group); "
            f"neurons in no group: {missing}, in several: {repeated}."
        )
    return out


class Topology:
    """A binary adjacency mask `M` (`M[j, i]`: neuron j predicts neuron i) and named
    groups partitioning the neurons (in order)."""

    mask: np.ndarray
    groups: dict[str, np.ndarray]

    def __init__(self, mask, groups: Mapping[str, Iterable[int]]):
        self.mask = check_mask(mask)
        self.groups = check_groups(groups, self.mask.shape[0])

    def __repr__(self) -> str:
        sizes = {g: len(i) for g, i in self.groups.items()}
        return f"Topology(n={self.n}, connections={int(self.mask.sum())}, groups={sizes})"

    @property
    def n(self) -> int:
        """Number of neurons."""
        return self.mask.shape[0]

    def block(self, source: str, target: str) -> np.ndarray:
        """The block `M[source neurons][:, target neurons]`, shape (|source|, |target|)."""
        return self.mask[np.ix_(self.groups[source], self.groups[target])]

    def locate(self, neuron: int) -> tuple[str, int]:
        """`(group, position in the group)` of global neuron index `neuron`."""
        if not isinstance(neuron, int | np.integer) or not 0 <= neuron < self.n:
            raise IndexError(f"Neuron index {neuron!r} is out of range for {self.n} neurons.")
        for name, idx in self.groups.items():
            hit = np.flatnonzero(idx == neuron)
            if hit.size:
                return name, int(hit[0])
        raise AssertionError("groups partition the neurons")  # pragma: no cover

    def split(self, x: np.ndarray | jax.Array) -> dict[str, jax.Array]:
        """A `(batch, n)` array of all neurons as `{group: (batch, |group|)}`."""
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"Expected values of shape (batch, {self.n}), got {x.shape}.")
        x = jnp.asarray(x)
        return {name: x[:, idx] for name, idx in self.groups.items()}

    def join(self, values: Mapping[str, jax.Array]) -> jax.Array:
        """Inverse of `split`: `{group: (batch, |group|)}` to one `(batch, n)` array."""
        order = np.concatenate(list(self.groups.values()))
        stacked = jax.numpy.concatenate([values[g] for g in self.groups], axis=1)
        return stacked[:, np.argsort(order)]

    def cycles(self) -> bool:
        """Whether the directed graph of `M` has a cycle."""
        m = self.mask.copy()
        alive = np.ones(self.n, dtype=bool)
        while True:  # peel off neurons with no incoming edge from a live neuron
            sources = alive & ~np.any(m[alive], axis=0)
            if not sources.any():
                return bool(alive.any())
            alive &= ~sources


def _ranges(sizes: Sequence[tuple[str, int]]) -> dict[str, range]:
    groups, start = {}, 0
    for name, size in sizes:
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 0:
            raise ValueError(f"Group {name!r} needs a non-negative integer size, got {size!r}.")
        if size:
            groups[name] = range(start, start + int(size))
            start += int(size)
    return groups


def _connect(mask: np.ndarray, groups, source: str, target: str) -> None:
    mask[np.ix_(groups[source], groups[target])] = True


def fully_connected(n: int, *, sensory: int = 0, labels: int = 0) -> Topology:
    """All `n (n - 1)` connections (section 5.2): groups "sensory" (the first `sensory`
    neurons), "label" (the next `labels`) and "hidden" (the rest), empty ones left out."""
    if sensory + labels > n:
        raise ValueError(f"sensory + labels = {sensory + labels} exceeds n = {n}.")
    groups = _ranges([(SENSORY, sensory), (LABEL, labels), ("hidden", n - sensory - labels)])
    mask = ~np.eye(n, dtype=bool)
    return Topology(mask, groups)


def _layer_names(sizes: Sequence[int], labels: int) -> list[tuple[str, int]]:
    if len(sizes) < 1 or (len(sizes) < 2 and not labels):
        raise ValueError(f"A hierarchy needs at least two layers, got sizes {list(sizes)}.")
    layers = [(SENSORY, sizes[0])]
    layers += [(f"hidden_{i}", s) for i, s in enumerate(sizes[1:], start=1)]
    if labels:
        layers.append((LABEL, labels))
    if any(s < 1 for _, s in layers):
        raise ValueError(f"Every layer needs at least one neuron, got {layers}.")
    return layers


def _chain(layers: list[tuple[str, int]], *, upward: bool) -> Topology:
    groups = _ranges(layers)
    n = sum(s for _, s in layers)
    mask = np.zeros((n, n), dtype=bool)
    names = [name for name, _ in layers]
    for lower, upper in zip(names, names[1:], strict=False):
        _connect(mask, groups, *((lower, upper) if upward else (upper, lower)))
    return Topology(mask, groups)


def feedforward(sizes: Sequence[int], *, labels: int = 0) -> Topology:
    """Discriminative hierarchy (Fig. 5.5a): "sensory" (sizes[0]) predicts "hidden_1",
    which predicts "hidden_2", ..., and the last predicts "label" (if `labels`)."""
    return _chain(_layer_names(sizes, labels), upward=True)


def generative(sizes: Sequence[int], *, labels: int = 0) -> Topology:
    """Generative hierarchy (Fig. 5.5b), the sensory neurons at its end: "label" (if
    `labels`) predicts the last hidden layer, ..., "hidden_1" predicts "sensory"."""
    return _chain(_layer_names(sizes, labels), upward=False)


def with_lateral(topology: Topology, groups: Iterable[str] | None = None) -> Topology:
    """`topology` plus lateral (recurrent) connections within each of `groups`
    (default: every group whose name starts with "hidden"), diagonal excluded (Fig. 5.5c)."""
    names = [g for g in topology.groups if g.startswith("hidden")] if groups is None else groups
    mask = topology.mask.copy()
    for name in names:
        if name not in topology.groups:
            raise ValueError(f"No group {name!r}; groups are {list(topology.groups)}.")
        _connect(mask, topology.groups, name, name)
    np.fill_diagonal(mask, False)
    return Topology(mask, topology.groups)


def assemblies(
    n_clusters: int,
    size: int,
    p_within: float,
    p_between: float,
    key: jax.Array | int,
    *,
    connections: Iterable[tuple[int, int]] | None = None,
    names: Sequence[str] | None = None,
) -> Topology:
    """Assemblies of neurons (section 5.5, Fig. 5.5d): `n_clusters` clusters of `size`
    neurons, each an Erdős–Rényi graph (every ordered pair connected with probability
    `p_within`); for each `(a, b)` in `connections` (default the chain (0, 1), (1, 2),
    ...), every neuron of cluster a predicts every neuron of cluster b with probability
    `p_between`. Groups are "cluster_1", ... unless `names` are given."""
    if n_clusters < 1 or size < 1:
        raise ValueError(f"Need n_clusters >= 1 and size >= 1, got {n_clusters}, {size}.")
    for label, p in (("p_within", p_within), ("p_between", p_between)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`{label}` is a probability in [0, 1], got {p!r}.")
    names = [f"cluster_{i + 1}" for i in range(n_clusters)] if names is None else list(names)
    if len(names) != n_clusters:
        raise ValueError(f"Got {len(names)} names for {n_clusters} clusters.")
    pairs = (
        [(a, a + 1) for a in range(n_clusters - 1)] if connections is None else list(connections)
    )
    for a, b in pairs:
        if not (0 <= a < n_clusters and 0 <= b < n_clusters) or a == b:
            raise ValueError(
                f"Connection {(a, b)} must join two different clusters in range({n_clusters})."
            )
    seed = key if isinstance(key, int | np.integer) else jax.random.key_data(key)
    rng = np.random.default_rng(np.asarray(seed).reshape(-1))  # NumPy: no compile per shape
    n = n_clusters * size
    within = rng.random((n_clusters, size, size)) < p_within
    between = rng.random((len(pairs), size, size)) < p_between
    mask = np.zeros((n, n), dtype=bool)
    for c in range(n_clusters):
        s = slice(c * size, (c + 1) * size)
        mask[s, s] = within[c]
    for i, (a, b) in enumerate(pairs):
        mask[a * size : (a + 1) * size, b * size : (b + 1) * size] = between[i]
    np.fill_diagonal(mask, False)
    groups = {name: range(c * size, (c + 1) * size) for c, name in enumerate(names)}
    return Topology(mask, groups)


def refine(topology: Topology, *, max_groups: int | None = None) -> Topology:
    """Split the groups of `topology` until every block of the mask between two groups is
    either used or entirely empty, so `pc_graph` skips the empty ones.

    A raw mask given with coarse groups (say "sensory" and "hidden") is thus turned into
    its layered form: hidden neurons that receive from or send to different groups go to
    different groups (named "hidden_1", "hidden_2", ... in neuron order), and a layered
    mask costs block-sized products, never an `n x n` one. A group that is not split keeps
    its name. Sparse random masks may split into many small groups: `max_groups` stops
    the refinement (keeping the last partition within the bound).
    """
    mask = topology.mask
    names = list(topology.groups)
    labels = np.empty(topology.n, dtype=int)
    for g, idx in enumerate(topology.groups.values()):
        labels[idx] = g
    origin = labels.copy()  # the original group of every neuron, for naming
    while True:
        onehot = np.eye(labels.max() + 1, dtype=bool)[labels]
        receives = (mask.T.astype(int) @ onehot) > 0  # (n, k): gets input from group k
        sends = (mask.astype(int) @ onehot) > 0  # (n, k): predicts some neuron of group k
        signature = np.concatenate([labels[:, None], receives, sends], axis=1)
        _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first))  # number the new groups by first neuron
        new = rank[inverse.reshape(-1)]
        k = new.max() + 1
        if k == labels.max() + 1 or (max_groups is not None and k > max_groups):
            break
        labels = new
    groups: dict[str, np.ndarray] = {}
    for g in range(labels.max() + 1):
        idx = np.flatnonzero(labels == g)
        base = names[origin[idx[0]]]
        parts = np.unique(labels[origin == origin[idx[0]]])
        if len(parts) == 1:
            groups[base] = idx
        else:
            groups[f"{base}_{int(np.flatnonzero(parts == g)[0]) + 1}"] = idx
    return Topology(mask, groups)
