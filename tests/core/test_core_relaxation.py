"""Inference (relaxation of the free values): descent, clamping, initialisation, cycles."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn

# One shape and one relaxation setting for most tests, and data drawn with numpy: every
# new array shape costs jax a compilation (random weights, eager ops, `infer`).
SIZES = (3, 4, 5, 2)
BATCH = 4
RELAX = dict(stop=8, gamma=0.1)
BOTH = {"x": True, "y": True}


def normal(seed: int, *shape: int, scale: float = 1.0) -> jax.Array:
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def setting(seed: int, **mlp_kwargs) -> tuple[pcn.PCGraph, dict[str, jax.Array]]:
    """A random MLP and random starting values for every node."""
    graph = pcn.mlp(SIZES, key=jax.random.key(seed), **mlp_kwargs)
    names = ("x", "h1", "h2", "y")
    values = {
        n: normal(seed + i, BATCH, size)
        for i, (n, size) in enumerate(zip(names, SIZES, strict=True))
    }
    return graph, values


node_energies = eqx.filter_jit(lambda graph, values: graph.node_energies(values))


@pytest.mark.parametrize("site", ["parent", "prediction"])
def test_energy_decreases_monotonically_during_relaxation_with_a_small_gamma(x64, site):
    graph = pcn.mlp(SIZES, key=jax.random.key(0), activation_site=site)
    rng = np.random.default_rng(1)
    values = {
        n: jnp.asarray(rng.normal(size=(8, k)))
        for n, k in zip(("x", "h1", "h2", "y"), SIZES, strict=True)
    }

    result = pcn.infer(graph, values, clamp=BOTH, stop=50, gamma=0.05)

    trace = np.asarray(result.energy_trace)
    assert trace.shape == (51,)
    # gradient descent with a step below 2 / Lipschitz never increases the energy
    assert np.all(np.diff(trace) <= 1e-12 * trace[0]), np.diff(trace).max()
    assert trace[-1] < 0.5 * trace[0]


def test_the_energy_trace_starts_and_ends_at_the_energy_of_the_start_and_final_values():
    graph, values = setting(3)

    result = pcn.infer(graph, values, clamp=BOTH, **RELAX)

    start, final = node_energies(graph, values), node_energies(graph, result.values)
    assert result.energy_trace.shape == (RELAX["stop"] + 1,)
    np.testing.assert_allclose(
        result.energy_trace[0], sum(map(jnp.mean, start.values())), rtol=1e-6
    )
    np.testing.assert_allclose(
        result.energy_trace[-1], sum(map(jnp.mean, final.values())), rtol=1e-6
    )
    assert set(result.node_energy) == {"h1", "h2", "y"}  # the root "x" has no prediction
    for name, e in final.items():
        np.testing.assert_allclose(result.node_energy[name], jnp.mean(e), rtol=1e-6)


@pytest.mark.parametrize("site", ["parent", "prediction"])
def test_forward_init_gives_exactly_zero_energy_when_only_the_input_is_given(site):
    graph, given = setting(6, activation_site=site)

    values = pcn.forward_init(graph, {"x": given["x"]})

    assert set(values) == {"x", "h1", "h2", "y"}
    assert values["x"] is given["x"]
    # computed the same way (here eagerly) the prediction is the value, bit for bit
    for name, energy in graph.node_energies(values).items():
        np.testing.assert_array_equal(np.asarray(energy), 0.0, err_msg=name)

    @eqx.filter_jit
    def energies_after_forward_init(graph, x):
        return graph.node_energies(pcn.forward_init(graph, {"x": x}))

    # ... and so it is inside one compiled program
    for name, energy in energies_after_forward_init(graph, given["x"]).items():
        np.testing.assert_array_equal(np.asarray(energy), 0.0, err_msg=name)


def test_forward_init_starts_a_root_with_a_prior_at_its_prior_mean():
    # a decoder whose latent "z" has a learned prior (a `Bias` edge, no parents): "z"
    # comes first in the order, before any value exists to give the batch size
    decoder = pcn.generative_mlp([2, 3], key=jax.random.key(0))
    mean = jnp.asarray([0.5, -1.0])
    graph = pcn.PCGraph(
        decoder.nodes, [pcn.Edge(pcn.Bias(mean), (), "z"), *decoder.edges], decoder.shared
    )
    x = normal(9, BATCH, 3)

    values = pcn.forward_init(graph, {"x": x})

    np.testing.assert_array_equal(np.asarray(values["z"]), np.tile(mean, (BATCH, 1)))
    assert values["x"] is x


def test_forward_init_with_a_categorical_output_sits_at_the_softmax_with_zero_energy():
    graph, given = setting(8, output="categorical")

    values = pcn.forward_init(graph, {"x": given["x"]})

    np.testing.assert_allclose(np.asarray(values["y"]).sum(axis=1), 1.0, rtol=1e-6)
    for name, energy in node_energies(graph, values).items():
        np.testing.assert_allclose(np.asarray(energy), 0.0, atol=1e-6, err_msg=name)


def test_with_the_label_provided_only_the_output_node_has_energy():
    graph, given = setting(10)
    x, y = given["x"], given["y"]

    values = pcn.forward_init(graph, {"x": x, "y": y})
    energies = graph.node_energies(values)  # eagerly, like forward_init

    assert values["y"] is y
    np.testing.assert_array_equal(np.asarray(energies["h1"]), 0.0)
    np.testing.assert_array_equal(np.asarray(energies["h2"]), 0.0)
    assert np.all(np.asarray(energies["y"]) > 0)
    # and that energy is Eq. 2.3 of the output error: 1/2 ||y - mu_y||^2
    mu_y = graph.predict(values, "y")
    np.testing.assert_allclose(energies["y"], 0.5 * jnp.sum((y - mu_y) ** 2, axis=1), rtol=1e-6)


def test_zeros_and_normal_init_keep_provided_values_and_fill_the_rest():
    graph, given = setting(12)
    x = given["x"]

    zeros = pcn.zeros_init(graph, {"x": x})
    normal_values = pcn.NormalInit(std=0.5)(graph, {"x": x}, key=jax.random.key(14))

    assert zeros["x"] is x and normal_values["x"] is x
    np.testing.assert_array_equal(np.asarray(zeros["h1"]), np.zeros((BATCH, 4)))
    assert zeros["y"].shape == normal_values["y"].shape == (BATCH, 2)
    spread = float(jnp.std(jnp.concatenate([normal_values["h2"], normal_values["y"]], axis=1)))
    assert 0.2 < spread < 1.0


def test_clamped_values_do_not_move_during_inference():
    graph, values = setting(15)
    before = {n: np.asarray(v).copy() for n, v in values.items()}

    result = pcn.infer(graph, values, clamp=BOTH, **RELAX)

    np.testing.assert_array_equal(np.asarray(result.values["x"]), before["x"])
    np.testing.assert_array_equal(np.asarray(result.values["y"]), before["y"])
    assert not np.allclose(np.asarray(result.values["h1"]), before["h1"])
    assert not np.allclose(np.asarray(result.values["h2"]), before["h2"])


@pytest.mark.parametrize("mask_kind", ["per_element", "broadcast_over_batch"])
def test_masked_elements_stay_bit_for_bit_and_unmasked_ones_move(mask_kind):
    graph, values = setting(18)
    if mask_kind == "per_element":
        mask = np.array([[True, False], [False, False], [True, True], [False, True]])
    else:
        mask = np.array([False, True])
    full_mask = np.broadcast_to(mask, (BATCH, 2))

    result = pcn.infer(graph, values, clamp={"x": True, "y": jnp.asarray(mask)}, **RELAX)

    before, after = np.asarray(values["y"]), np.asarray(result.values["y"])
    np.testing.assert_array_equal(after[full_mask], before[full_mask])
    assert np.all(after[~full_mask] != before[~full_mask])
    np.testing.assert_array_equal(np.asarray(result.values["x"]), np.asarray(values["x"]))


def test_clamp_false_leaves_the_node_free():
    graph, values = setting(22)

    a = pcn.infer(graph, values, clamp={"x": True, "y": False}, **RELAX)
    b = pcn.infer(graph, values, clamp={"x": True}, **RELAX)

    for name in values:
        np.testing.assert_array_equal(np.asarray(a.values[name]), np.asarray(b.values[name]))
    assert not np.allclose(np.asarray(a.values["y"]), np.asarray(values["y"]))


def test_gamma_is_shorthand_for_plain_sgd_on_the_values():
    graph, values = setting(25)

    a = pcn.infer(graph, values, clamp=BOTH, **RELAX)
    b = pcn.infer(graph, values, clamp=BOTH, stop=RELAX["stop"], value_optimizer=optax.sgd(0.1))

    for name in values:
        np.testing.assert_allclose(a.values[name], b.values[name], rtol=1e-6, atol=1e-7)


def test_infer_under_jit_equals_infer_without_jit():
    graph, values = setting(28)
    kwargs = dict(clamp={"x": True, "y": jnp.array([True, False])}, stop=3, gamma=0.1)

    jitted = pcn.infer(graph, values, **kwargs)
    with jax.disable_jit():
        eager = pcn.infer(graph, values, **kwargs)

    for name in values:
        np.testing.assert_allclose(jitted.values[name], eager.values[name], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jitted.energy_trace, eager.energy_trace, rtol=1e-6, atol=1e-6)


def cyclic_graph(key: jax.Array) -> pcn.PCGraph:
    """a and b predict each other; c (clamped) also predicts a."""
    k1, k2, k3 = jax.random.split(key, 3)
    nodes = [pcn.Node("a", 4, activation="tanh"), pcn.Node("b", 4, activation="tanh")]
    nodes.append(pcn.Node("c", 3))
    edges = [
        pcn.Edge(eqx.nn.Linear(4, 4, key=k1), "a", "b"),
        pcn.Edge(eqx.nn.Linear(4, 4, key=k2), "b", "a"),
        pcn.Edge(eqx.nn.Linear(3, 4, key=k3), "c", "a"),
    ]
    return pcn.PCGraph(nodes, edges)


def test_a_cyclic_graph_relaxes_from_zeros_and_its_energy_decreases():
    graph = cyclic_graph(jax.random.key(31))
    assert graph.order is None  # it really has a cycle
    c = normal(32, 6, 3, scale=2.0)
    values = pcn.zeros_init(graph, {"c": c})

    result = pcn.infer(graph, values, clamp={"c": True}, stop=40, gamma=0.1)

    trace = np.asarray(result.energy_trace)
    assert trace[0] > 0
    assert np.all(np.diff(trace) <= 1e-6 * trace[0]), np.diff(trace).max()
    assert trace[-1] < 0.5 * trace[0]
    np.testing.assert_array_equal(np.asarray(result.values["c"]), np.asarray(c))
    # both nodes on the cycle carry an energy: a has two incoming edges, b one
    assert set(result.node_energy) == {"a", "b"}


def test_a_bias_edge_gives_a_root_a_prior_that_relaxation_pulls_it_toward():
    prior = jnp.array([1.0, -2.0])
    graph = pcn.PCGraph([pcn.Node("z", 2)], [pcn.Edge(pcn.Bias(prior), (), "z")])
    values = {"z": jnp.zeros((3, 2))}
    # E = 1/2 ||z - prior||^2, so each step moves z by gamma (prior - z): after T steps
    # z = prior (1 - (1 - gamma)^T)
    result = pcn.infer(graph, values, clamp={}, stop=10, gamma=0.3)
    expected = prior * (1 - 0.7**10)
    np.testing.assert_allclose(result.values["z"], jnp.broadcast_to(expected, (3, 2)), rtol=1e-5)


@pytest.mark.parametrize(
    "value_optimizer", [pcn.SGD(0.1), pcn.SGD(0.1, momentum=0.5)], ids=["fused", "momentum"]
)
def test_an_unrolled_fixed_step_relaxation_equals_the_loop(x64, value_optimizer):
    # plain SGD takes the fused engine, momentum the plain one: both honour `unroll`
    graph, values = setting(4)
    values = {n: v.astype(jnp.float64) for n, v in values.items()}

    def relaxed(unroll: bool) -> pcn.Inference:
        stop = pcn.FixedSteps(6, unroll=unroll)
        return pcn.infer(graph, values, clamp=BOTH, stop=stop, value_optimizer=value_optimizer)

    looped, unrolled = relaxed(False), relaxed(True)
    for name in looped.values:
        np.testing.assert_allclose(unrolled.values[name], looped.values[name], rtol=1e-12)
    np.testing.assert_allclose(unrolled.energy_trace, looped.energy_trace, rtol=1e-12)
