"""The many-to-one RNN of thesis ch. 3 (Eqs. 3.5/3.9): the cell's equation, and an
unrolled chain of nodes h1..hT whose edges all hold the same cell reproduces
`rnn_forward`."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn import layers as L

STEPS, IN, HIDDEN, OUT, BATCH = 4, 3, 5, 2, 3
RNG = np.random.default_rng(0)
XS = jnp.asarray(RNG.normal(size=(BATCH, STEPS, IN)), jnp.float32)
Y = jnp.asarray(RNG.normal(size=(BATCH, OUT)), jnp.float32)


def cell_and_readout(site: str) -> tuple[L.RNNCell, eqx.Module]:
    k1, k2 = jax.random.split(jax.random.key(0))
    cell = L.RNNCell(IN, HIDDEN, activation="tanh", activation_site=site, key=k1)
    readout = L.Linear(HIDDEN, OUT, key=k2)
    if site == "parent":  # y = W_hy f(h_T) (Eq. 3.5)
        readout = eqx.nn.Sequential([eqx.nn.Lambda(jnp.tanh), readout])
    return cell, readout


def unrolled(cell: L.RNNCell, readout: eqx.Module, *, h0_node: bool = False) -> pcn.PCGraph:
    """x1..xT and h1..hT, the SAME cell object on every recurrent edge, y = readout(hT)."""
    nodes = [pcn.Node(f"x{t}", IN) for t in range(1, STEPS + 1)]
    nodes += [pcn.Node(f"h{t}", HIDDEN) for t in range(1, STEPS + 1)]
    nodes.append(pcn.Node("y", OUT))
    if h0_node:
        nodes.append(pcn.Node("h0", HIDDEN))
        edges = [pcn.Edge(cell, ("h0", "x1"), "h1")]
    else:
        edges = [pcn.Edge(L.RNNFirstStep(cell), "x1", "h1")]
    edges += [pcn.Edge(cell, (f"h{t - 1}", f"x{t}"), f"h{t}") for t in range(2, STEPS + 1)]
    edges.append(pcn.Edge(readout, f"h{STEPS}", "y"))
    return pcn.PCGraph(nodes, edges)


def inputs(h0_node: bool = False) -> dict[str, jax.Array]:
    provided = {f"x{t}": XS[:, t - 1] for t in range(1, STEPS + 1)}
    if h0_node:
        provided["h0"] = jnp.zeros((BATCH, HIDDEN))
    return provided


@pytest.mark.parametrize("site", ["prediction", "parent"])
def test_the_cell_computes_its_documented_equation(site):
    cell, _ = cell_and_readout(site)
    h, x = RNG.normal(size=HIDDEN), np.asarray(XS[0, 0])
    w_hh, w_xh, b = (
        np.asarray(a, np.float64) for a in (cell.hh.weight, cell.xh.weight, cell.xh.bias)
    )
    if site == "prediction":  # h_t = f(W_hh h_{t-1} + W_xh x_t + b)
        expected = np.tanh(w_hh @ h + w_xh @ x + b)
    else:  # h_t = W_hh f(h_{t-1}) + W_xh x_t + b
        expected = w_hh @ np.tanh(h) + w_xh @ x + b
    got = eqx.filter_jit(lambda c, h, x: c(h, x))(cell, jnp.asarray(h, jnp.float32), x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@eqx.filter_jit
def chain_and_reference(graphs, cell, readout):
    results = [
        (pcn.forward_init(g, inputs(h0)), g.energy(pcn.forward_init(g, inputs(h0))))
        for g, h0 in graphs
    ]
    hidden = jax.vmap(lambda xs: L.rnn_hidden_states(cell, xs))(XS)
    output = jax.vmap(lambda xs: L.rnn_forward(cell, readout, xs))(XS)
    return results, hidden, output


@pytest.mark.parametrize("site", ["prediction", "parent"])
def test_an_unrolled_chain_sharing_one_cell_object_matches_rnn_forward(site):
    cell, readout = cell_and_readout(site)
    graphs = [(unrolled(cell, readout), False), (unrolled(cell, readout, h0_node=True), True)]
    results, hidden, output = chain_and_reference(graphs, cell, readout)
    for values, energy in results:
        for t in range(1, STEPS + 1):
            np.testing.assert_allclose(values[f"h{t}"], hidden[:, t - 1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values["y"], output, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(energy, np.zeros(BATCH))


def test_backprop_through_the_chain_gives_each_edge_one_term_of_backprop_through_time():
    # Reusing one OBJECT on several edges (rather than naming it in `shared`) makes separate
    # copies of its arrays in the graph, trained apart: the BPTT gradient is the SUM of theirs.
    cell, readout = cell_and_readout("prediction")
    graph = unrolled(cell, readout)

    def reference_loss(cell):
        out = jax.vmap(lambda xs: L.rnn_forward(cell, readout, xs))(XS)
        return jnp.mean(0.5 * jnp.sum(jnp.square(Y - out), axis=1))

    @eqx.filter_jit
    def gradients(graph, cell):
        batch = {**inputs(), "y": Y}
        return eqx.filter_grad(pcn.bp_loss)(graph, batch), eqx.filter_grad(reference_loss)(cell)

    graph_grads, bptt = gradients(graph, cell)
    per_edge = [e.module for e in graph_grads.edges[:STEPS]]
    per_edge[0] = per_edge[0].cell  # the first edge wraps the cell in RNNFirstStep
    summed = jax.tree.map(lambda *g: sum(g), *per_edge)
    for got, want in zip(jax.tree.leaves(summed), jax.tree.leaves(bptt), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # each step contributes a different term
    assert not np.allclose(per_edge[0].hh.weight, per_edge[-1].hh.weight)


def test_a_cell_shared_by_name_gets_exactly_the_backprop_through_time_gradient():
    # With `PCGraph(shared=...)` every recurrent edge names one cell: one parameter. The
    # first edge takes a provided h0 = 0 node (RNNFirstStep would hold its own copy).
    cell, readout = cell_and_readout("prediction")
    nodes = [pcn.Node(f"x{t}", IN) for t in range(1, STEPS + 1)]
    nodes += [pcn.Node(f"h{t}", HIDDEN) for t in range(STEPS + 1)] + [pcn.Node("y", OUT)]
    edges = [pcn.Edge("cell", (f"h{t - 1}", f"x{t}"), f"h{t}") for t in range(1, STEPS + 1)]
    edges.append(pcn.Edge(readout, f"h{STEPS}", "y"))
    graph = pcn.PCGraph(nodes, edges, shared={"cell": cell})

    def reference_loss(cell):
        out = jax.vmap(lambda xs: L.rnn_forward(cell, readout, xs))(XS)
        return jnp.mean(0.5 * jnp.sum(jnp.square(Y - out), axis=1))

    @eqx.filter_jit
    def gradients(graph, cell):
        batch = {**inputs(h0_node=True), "y": Y}
        return eqx.filter_grad(pcn.bp_loss)(graph, batch), eqx.filter_grad(reference_loss)(cell)

    graph_grads, bptt = gradients(graph, cell)
    got = jax.tree.leaves(graph_grads.shared["cell"])
    for g, want in zip(got, jax.tree.leaves(bptt), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-6)


def test_rnn_forward_rejects_a_batch_instead_of_one_sequence():
    cell, readout = cell_and_readout("prediction")
    with pytest.raises(ValueError, match=r"`xs` must be one sequence of shape \(T, 3\)"):
        L.rnn_forward(cell, readout, XS)
