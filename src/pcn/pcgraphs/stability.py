"""A value step that relaxing a PC graph (Eq. 5.3) cannot blow up with."""

from __future__ import annotations

import numpy as np

from ..graph import PCGraph


def weight_norm(graph: PCGraph) -> float:
    """The spectral norm of all the weight blocks of `graph` as one matrix `B`
    (`B[child, parent] = W`, masked weights zero), the linear map from the values of
    all nodes to all predictions."""
    offset, start = 0, {}
    for name in graph.names:
        start[name] = offset
        offset += int(np.prod(graph.node(name).shape))
    b = np.zeros((offset, offset))
    for edge in graph.edges:
        module = graph.edge_module(edge)
        weight = np.asarray(module.weight, dtype=float)
        if getattr(module, "mask", None) is not None:
            weight = np.where(np.asarray(module.mask), weight, 0.0)
        (parent,) = edge.parents
        rows, cols = weight.shape
        c, p = start[edge.child], start[parent]
        b[c : c + rows, p : p + cols] += weight
    return float(np.linalg.norm(b, 2))


def curvature_bound(graph: PCGraph) -> float:
    """L >= the largest eigenvalue of the Hessian of the energy (Eq. 5.2) in the values
    of any set of free nodes, for identity activations (and for |f'| <= 1, of its
    Gauss-Newton part): with `eps = P^(1/2) (S x - B x)` (S selects the predicted nodes,
    P their precisions) the Hessian is `(S - B)^T P (S - B)`, of norm at most
    `L = max(P) (1 + ||B||)^2`; clamping nodes only takes a principal submatrix.
    Single-parent edges with a `weight` (and optional `mask`), as `pc_graph` builds."""
    precision = 1.0
    for edge in graph.edges:
        energy = graph.node(edge.child).energy
        precision = max(precision, float(np.max(getattr(energy, "precision", 1.0))))
    return precision * (1.0 + weight_norm(graph)) ** 2


def stable_gamma(graph: PCGraph, gamma: float) -> float:
    """`gamma`, lowered to at most 1.8 / L (L = `curvature_bound(graph)`): below 2 / L a
    plain SGD step on the values (`condition`, `initialise`) contracts along every
    direction of the energy's curvature, so the relaxation cannot oscillate or blow up.
    Trained weights grow, so a step that was safe at initialisation may not be
    afterwards: call it on the graph you query."""
    return min(gamma, 1.8 / curvature_bound(graph))
