"""Edges can share one module by name: its weights are one parameter, trained as one."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import pcn


class _Cell(eqx.Module):
    """h_t = tanh(W_hh h_{t-1} + W_xh x_t): a two-parent recurrent edge."""

    hh: eqx.nn.Linear
    xh: eqx.nn.Linear

    def __init__(self, hidden, inputs, key):
        k1, k2 = jax.random.split(key)
        self.hh = eqx.nn.Linear(hidden, hidden, key=k1)
        self.xh = eqx.nn.Linear(inputs, hidden, use_bias=False, key=k2)

    def __call__(self, h, x):
        return jnp.tanh(self.hh(h) + self.xh(x))


def _unrolled_rnn(steps=3, hidden=4, inputs=2, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    nodes = [pcn.Node("h0", hidden)]
    nodes += [pcn.Node(f"x{t}", inputs) for t in range(1, steps + 1)]
    nodes += [pcn.Node(f"h{t}", hidden) for t in range(1, steps + 1)]
    nodes += [pcn.Node("y", 3)]
    edges = [pcn.Edge("cell", (f"h{t - 1}", f"x{t}"), f"h{t}") for t in range(1, steps + 1)]
    edges.append(pcn.Edge(eqx.nn.Linear(hidden, 3, key=k2), f"h{steps}", "y"))
    return pcn.PCGraph(nodes, edges, shared={"cell": _Cell(hidden, inputs, k1)})


def _rnn_batch(steps=3, size=5, hidden=4, inputs=2):
    keys = jax.random.split(jax.random.key(7), steps + 1)
    batch = {f"x{t}": jax.random.normal(keys[t - 1], (size, inputs)) for t in range(1, steps + 1)}
    batch["h0"] = jnp.zeros((size, hidden))
    batch["y"] = jax.random.normal(keys[-1], (size, 3))
    return batch


def _reference_loss(cell, readout, batch, steps=3):
    h = batch["h0"]
    for t in range(1, steps + 1):
        h = jax.vmap(cell)(h, batch[f"x{t}"])
    return 0.5 * jnp.mean(jnp.sum((batch["y"] - jax.vmap(readout)(h)) ** 2, axis=1))


def test_shared_module_appears_once_among_the_parameters():
    graph = _unrolled_rnn()
    # the cell's two weights and one bias, the readout's weight and bias
    assert len(jax.tree.leaves(pcn.parameters(graph))) == 5


def test_bp_through_a_shared_module_sums_its_uses_like_an_unrolled_rnn():
    with jax.enable_x64(True):
        graph = _unrolled_rnn()
        batch = _rnn_batch()
        params, static = eqx.partition(graph, eqx.is_inexact_array)
        ours = jax.grad(lambda p: pcn.bp_loss(eqx.combine(p, static), batch))(params)
        cell, readout = graph.shared["cell"], graph.edges[-1].module
        ref = jax.grad(_reference_loss, argnums=(0, 1))(cell, readout, batch)
        for a, b in zip(
            jax.tree.leaves((ours.shared["cell"], ours.edges[-1].module)),
            jax.tree.leaves(ref),
            strict=True,
        ):
            assert jnp.max(jnp.abs(a - b)) < 1e-12


def test_zil_on_an_unrolled_rnn_with_shared_weights_equals_backprop():
    with jax.enable_x64(True):
        graph = _unrolled_rnn()
        batch = _rnn_batch()
        # each input x_t feeds only h_t, so it sits one level above it: already levelled
        assert pcn.is_levelled(graph, ["y"])
        zil, _, _ = pcn.zil_gradients(graph, batch)
        params, static = eqx.partition(graph, eqx.is_inexact_array)
        bp = jax.grad(lambda p: pcn.bp_loss(eqx.combine(p, static), batch))(params)
        for a, b in zip(jax.tree.leaves(zil), jax.tree.leaves(bp), strict=True):
            assert jnp.max(jnp.abs(a - b)) < 1e-12


def test_il_training_updates_the_shared_module_once_per_step():
    graph = _unrolled_rnn()
    step = pcn.make_train_step(graph, pcn.IL(10, gamma=0.1), optax.sgd(0.1))
    state = step.init(graph)
    losses = []
    for _ in range(30):
        state, info = step(state, _rnn_batch())
        losses.append(float(info.loss))
    assert losses[-1] < 0.5 * losses[0]
    trained = step.graph(state)
    assert isinstance(trained.edges[0].module, str)  # still one module, referred to by name
    assert not jnp.allclose(trained.shared["cell"].hh.weight, graph.shared["cell"].hh.weight)


def test_an_edge_naming_a_missing_shared_module_is_refused():
    with pytest.raises(ValueError, match="uses shared module 'nope'"):
        pcn.PCGraph([pcn.Node("a", 2), pcn.Node("b", 2)], [pcn.Edge("nope", "a", "b")], shared={})
