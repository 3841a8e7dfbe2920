"""Z-IL on PC graphs performs exactly backprop's update (thesis Theorems 1 and 5)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import pcn


def _max_abs_diff(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _bp_grads(graph, batch):
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    return jax.grad(lambda p: pcn.bp_loss(eqx.combine(p, static), batch))(params)


def _batch(n_in, n_out, size=8):
    x = jax.random.normal(jax.random.key(1), (size, n_in))
    return {"x": x, "y": jax.nn.one_hot(jnp.arange(size) % n_out, n_out)}


def _skip_graph():
    """x -> h1 -> h2 -> y plus a skip edge h1 -> y: not levelled."""
    k = jax.random.split(jax.random.key(0), 4)
    nodes = [
        pcn.Node("x", 5),
        pcn.Node("h1", 6, activation="tanh"),
        pcn.Node("h2", 6, activation="tanh"),
        pcn.Node("y", 3),
    ]
    edges = [
        pcn.Edge(eqx.nn.Linear(5, 6, key=k[0]), "x", "h1"),
        pcn.Edge(eqx.nn.Linear(6, 6, key=k[1]), "h1", "h2"),
        pcn.Edge(eqx.nn.Linear(6, 3, key=k[2]), "h2", "y"),
        pcn.Edge(eqx.nn.Linear(6, 3, key=k[3]), "h1", "y"),
    ]
    return pcn.PCGraph(nodes, edges)


@pytest.mark.parametrize("site", ["prediction", "parent"])
@pytest.mark.parametrize("output", ["gaussian", "categorical"])
@pytest.mark.parametrize("faithful", [False, True])
def test_zil_gradient_equals_backprop_on_mlps_in_float64(site, output, faithful):
    with jax.enable_x64(True):
        graph = pcn.mlp([5, 7, 6, 4, 3], activation_site=site, output=output, key=jax.random.key(0))
        batch = _batch(5, 3)
        zil, _, trace = pcn.zil_gradients(graph, batch, faithful=faithful)
        assert _max_abs_diff(zil, _bp_grads(graph, batch)) < 1e-12
        assert trace.shape == (4,)  # T = number of levels below the input


def test_skip_connection_diverges_unlevelled_and_is_exact_once_levelled():
    with jax.enable_x64(True):
        graph = _skip_graph()
        batch = _batch(5, 3)
        bp = _bp_grads(graph, batch)
        assert not pcn.is_levelled(graph, ["y"])
        unlevelled, _, _ = pcn.zil_gradients(graph, batch, faithful=True)
        assert _max_abs_diff(unlevelled, bp) > 1e-4
        levelled = pcn.level_graph(graph, ["y"])
        assert pcn.is_levelled(levelled, ["y"])
        assert len(levelled.nodes) == len(graph.nodes) + 1  # one identity node
        for faithful in (False, True):
            zil, _, _ = pcn.zil_gradients(levelled, batch, faithful=faithful)
            # the levelled graph computes the same function, with the same parameters
            bp_levelled = _bp_grads(levelled, batch)
            assert _max_abs_diff(bp_levelled, bp) < 1e-12
            assert _max_abs_diff(zil, bp_levelled) < 1e-12


@pytest.mark.parametrize(
    "ablation", [{"gamma": 0.5}, {"forward_init": False}, {"level_scheduled": False}]
)
def test_each_ablation_of_zil_diverges_from_backprop(ablation):
    with jax.enable_x64(True):
        graph = pcn.mlp([5, 7, 6, 3], key=jax.random.key(0))
        batch = _batch(5, 3)
        step = pcn.make_train_step(graph, pcn.ZIL(faithful=True, **ablation), optax.sgd(0.1))
        bp = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
        a = step.graph(step(step.init(graph), batch)[0])
        b = bp.graph(bp(bp.init(graph), batch)[0])
        assert (
            _max_abs_diff(eqx.filter(a, eqx.is_inexact_array), eqx.filter(b, eqx.is_inexact_array))
            > 1e-4
        )


def test_zil_training_follows_backprop_with_adam_for_many_steps():
    with jax.enable_x64(True):
        graph = pcn.mlp([5, 7, 6, 3], key=jax.random.key(0))
        zil = pcn.make_train_step(graph, pcn.ZIL(), optax.adam(1e-2))
        bp = pcn.make_train_step(graph, pcn.BP(), optax.adam(1e-2))
        sz, sb = zil.init(graph), bp.init(graph)
        for i in range(20):
            batch = _batch(5, 3, size=4 + i % 3)
            sz, iz = zil(sz, batch)
            sb, ib = bp(sb, batch)
            assert abs(float(iz.loss) - float(ib.loss)) < 1e-12
        assert _max_abs_diff(sz.leaves, sb.leaves) < 1e-10


def test_exact_schedule_refuses_an_unlevelled_graph_and_ablations_need_faithful():
    graph = _skip_graph()
    with pytest.raises(ValueError, match="level_graph"):
        pcn.zil_gradients(graph, _batch(5, 3))
    with pytest.raises(ValueError, match="faithful=True"):
        pcn.ZIL(gamma=0.5)
