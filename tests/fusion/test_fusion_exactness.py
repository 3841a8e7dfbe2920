"""The fused relaxation (pcn._fusion) follows the direct SGD trajectory to rounding."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

import pcn
from pcn._fusion import known_linear_output, plan_fusion


def _perturbed_forward_values(graph, fixed, key):
    values = pcn.forward_init(graph, fixed)
    keys = jax.random.split(key, len(values))
    return {
        n: v if n in fixed else v + 0.3 * jax.random.normal(k, v.shape)
        for (n, v), k in zip(values.items(), keys, strict=True)
    }


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_fused_inference_matches_direct_sgd_in_float64(activation):
    with jax.enable_x64(True):
        graph = pcn.mlp([12, 10, 10, 4], activation=activation, key=jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (6, 12))
        y = jax.random.normal(jax.random.key(2), (6, 4))
        values = _perturbed_forward_values(graph, {"x": x, "y": y}, jax.random.key(3))
        clamp = {"x": True, "y": True}
        assert [f.name for f in plan_fusion(graph, frozenset(clamp), {})] == ["h1"]
        fused = pcn.infer(graph, values, clamp=clamp, stop=40, gamma=0.2, fuse=True)
        direct = pcn.infer(graph, values, clamp=clamp, stop=40, gamma=0.2, fuse=False)
        for name in values:
            assert jnp.max(jnp.abs(fused.values[name] - direct.values[name])) < 1e-12, name
        assert jnp.max(jnp.abs(fused.energy_trace - direct.energy_trace)) < 1e-12


def test_fused_root_of_a_generative_graph_matches_direct_sgd():
    with jax.enable_x64(True):
        # a wide latent feeding a narrow layer: the fused form is cheaper, so it is used
        graph = pcn.generative_mlp([16, 4, 9], key=jax.random.key(0))
        x = jax.random.uniform(jax.random.key(1), (5, 9))
        values = _perturbed_forward_values(graph, {"x": x}, jax.random.key(2))
        assert [f.name for f in plan_fusion(graph, frozenset({"x"}), {})] == ["z"]
        fused = pcn.infer(graph, values, clamp={"x": True}, stop=25, gamma=0.1, fuse=True)
        direct = pcn.infer(graph, values, clamp={"x": True}, stop=25, gamma=0.1, fuse=False)
        for name in values:
            assert jnp.max(jnp.abs(fused.values[name] - direct.values[name])) < 1e-12, name


def test_fused_node_with_two_linear_children_uses_the_cross_gram_blocks():
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.key(0), 3)
        nodes = [pcn.Node("x", 8), pcn.Node("h", 12), pcn.Node("a", 3), pcn.Node("b", 2)]
        edges = [
            pcn.Edge(eqx.nn.Linear(8, 12, key=k[0]), "x", "h"),
            pcn.Edge(eqx.nn.Linear(12, 3, key=k[1]), "h", "a"),
            pcn.Edge(eqx.nn.Linear(12, 2, key=k[2]), "h", "b"),
        ]
        graph = pcn.PCGraph(nodes, edges)
        fixed = {
            "x": jax.random.normal(k[0], (4, 8)),
            "a": jax.random.normal(k[1], (4, 3)),
            "b": jax.random.normal(k[2], (4, 2)),
        }
        values = _perturbed_forward_values(graph, fixed, jax.random.key(5))
        clamp = dict.fromkeys(fixed, True)
        assert [f.edges for f in plan_fusion(graph, frozenset(clamp), {})] == [(1, 2)]
        fused = pcn.infer(graph, values, clamp=clamp, stop=30, gamma=0.3, fuse=True)
        direct = pcn.infer(graph, values, clamp=clamp, stop=30, gamma=0.3, fuse=False)
        assert jnp.max(jnp.abs(fused.values["h"] - direct.values["h"])) < 1e-12
        assert jnp.max(jnp.abs(fused.energy_trace - direct.energy_trace)) < 1e-12


def test_fused_and_direct_training_steps_give_the_same_weights():
    with jax.enable_x64(True):
        graph = pcn.mlp([12, 10, 10, 4], key=jax.random.key(0))
        batch = {
            "x": jax.random.normal(jax.random.key(1), (6, 12)),
            "y": jax.nn.one_hot(jnp.arange(6) % 4, 4),
        }
        finals = []
        for fuse in (True, False):
            step = pcn.make_train_step(graph, pcn.IL(15, gamma=0.1, fuse=fuse), optax.sgd(0.1))
            state = step.init(graph)
            for _ in range(3):
                state, _ = step(state, batch)
            finals.append(state.leaves)
        for a, b in zip(*finals, strict=True):
            assert jnp.max(jnp.abs(a - b)) < 1e-12


def test_nodes_are_not_fused_where_it_would_cost_more_or_is_not_exact():
    graph = pcn.mlp([12, 4, 30, 3], key=jax.random.key(0))
    # h1 (4 wide) feeding h2 (30 wide): the Gram product (30 x 30) costs more than 2 x 4 x 30
    assert plan_fusion(graph, frozenset({"x", "y"}), {}) == ()
    thesis = pcn.mlp([12, 10, 10, 3], activation_site="parent", key=jax.random.key(0))
    # mu = W f(h): the out-edge is not linear in h, so there is nothing exact to fuse
    assert plan_fusion(thesis, frozenset({"x", "y"}), {}) == ()
    wide = pcn.mlp([12, 10, 10, 3], key=jax.random.key(0))
    # a masked node keeps the direct loop (its clamped elements must not move)
    mask = jnp.zeros((2, 10), bool)
    assert plan_fusion(wide, frozenset({"x", "y"}), {"h1": mask}) == ()


def test_a_tracked_edge_output_differentiates_like_the_product_it_stands_for():
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.key(0), 3)
        weight = jax.random.normal(k[0], (3, 5))
        v = jax.random.normal(k[1], (4, 5))
        target = jax.random.normal(k[2], (4, 3))

        def loss(w, product):
            return jnp.sum(jnp.tanh(product(w)) * target)

        direct = jax.grad(loss)(weight, lambda w: v @ w.T)
        known = v @ weight.T
        tracked = jax.grad(loss)(weight, lambda w: known_linear_output(w, v, known))
        assert jnp.max(jnp.abs(direct - tracked)) < 1e-14
