"""A new energy family is one subclass of `pcn.AbstractEnergy`, defined here, outside the
library: it relaxes through `pcn.infer` and trains through `pcn.IL` unchanged."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn


class Laplace(pcn.AbstractEnergy):
    """E = ||value - mu||_1 / scale per example (a Laplace likelihood's negative log)."""

    scale: float = eqx.field(static=True, default=1.0)

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        return jnp.sum(jnp.abs(value - mu).reshape(value.shape[0], -1), axis=1) / self.scale


class Probability(pcn.AbstractEnergy):
    """A family whose data must be non-negative, and that refuses to relax."""

    checks_data = True

    def energy(self, value: jax.Array, mu: jax.Array) -> jax.Array:
        return jnp.sum(jnp.square(value - mu), axis=1)

    def check_free(self, name: str) -> None:
        raise ValueError(f"Node {name!r} must be clamped.")

    def check_data(self, name: str, value: np.ndarray) -> None:
        if (value < 0).any():
            raise ValueError(f"Node {name!r} got a negative value.")


def _chain(a: float, w: float, scale: float) -> pcn.PCGraph:
    """x -> h (Laplace, mu_h = a x) -> y (Gaussian, mu_y = w h), scalars, no biases."""

    def linear(weight: float) -> eqx.nn.Linear:
        layer = eqx.nn.Linear(1, 1, use_bias=False, key=jax.random.key(0))
        return eqx.tree_at(lambda m: m.weight, layer, jnp.full((1, 1), weight))

    nodes = [pcn.Node("x", 1), pcn.Node("h", 1, energy=Laplace(scale)), pcn.Node("y", 1)]
    edges = [pcn.Edge(linear(a), "x", "h"), pcn.Edge(linear(w), "h", "y")]
    return pcn.PCGraph(nodes, edges)


def test_a_laplace_node_relaxes_to_the_soft_thresholded_closed_form_optimum():
    with jax.enable_x64(True):
        a, w, scale = 0.5, 2.0, 1.0
        graph = _chain(a, w, scale)
        x, y = jnp.array([[1.0], [1.0]]), jnp.array([[5.0], [1.1]])
        values = pcn.forward_init(graph, {"x": x, "y": y})
        result = pcn.infer(
            graph, values, clamp={"x": True, "y": True}, stop=4000, gamma=1e-3, fuse=False
        )
        # min_h |h - a|/s + (y - w h)^2 / 2: h = y/w - 1/(s w^2) when that exceeds a (the
        # data pull beats the prior's constant force), else h stays at its prediction a
        expected = np.where(
            np.asarray(y) / w - 1 / (scale * w**2) > a, np.asarray(y) / w - 1 / (scale * w**2), a
        )
        np.testing.assert_allclose(result.values["h"], expected, atol=5e-3)
        assert result.energy_trace[-1] < result.energy_trace[0]


def test_il_trains_a_graph_with_the_new_family_and_lowers_its_energy():
    graph = pcn.PCGraph(
        [pcn.Node("x", 4), pcn.Node("h", 8, energy=Laplace(0.5)), pcn.Node("y", 3)],
        [
            pcn.Edge(eqx.nn.Linear(4, 8, key=jax.random.key(1)), "x", "h"),
            pcn.Edge(eqx.nn.Linear(8, 3, key=jax.random.key(2)), "h", "y"),
        ],
    )
    x = jax.random.normal(jax.random.key(3), (16, 4))
    y = jnp.tanh(x[:, :3])
    step = pcn.make_train_step(graph, pcn.IL(10, gamma=0.05), optax.adam(1e-2))
    state = step.init(graph)
    losses = []
    for _ in range(60):
        state, info = step(state, {"x": x, "y": y})
        losses.append(float(info.loss))
    assert losses[-1] < 0.5 * losses[0]


def test_a_new_family_checks_its_own_data_and_refuses_to_relax_when_it_says_so():
    graph = pcn.PCGraph(
        [pcn.Node("x", 2), pcn.Node("p", 2, energy=Probability())],
        [pcn.Edge(eqx.nn.Linear(2, 2, key=jax.random.key(0)), "x", "p")],
    )
    x = jnp.ones((3, 2))
    with pytest.raises(ValueError, match="Node 'p' must be clamped"):
        pcn.infer(graph, {"x": x, "p": x}, clamp={"x": True}, stop=2, gamma=0.1)
    with pytest.raises(ValueError, match="Node 'p' got a negative value"):
        pcn.infer(graph, {"x": x, "p": -x}, clamp={"x": True, "p": True}, stop=2, gamma=0.1)
    with pytest.raises(TypeError, match="must be a `pcn.energies.AbstractEnergy`"):
        pcn.Node("q", 2, energy=object())
