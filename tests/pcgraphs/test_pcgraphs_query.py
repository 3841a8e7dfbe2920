"""Queries by conditioning (Eq. 5.5) and by initialisation (Eq. 5.6) on PC graphs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pcn import SGD, NonFiniteEnergyError, Tolerance
from pcn.pcgraphs import (
    Topology,
    classify,
    condition,
    fix_neurons,
    fully_connected,
    generate,
    initialise,
    one_hot,
    pc_graph,
    weight_matrix,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _conditional_optimum(theta: np.ndarray, fixed: list[int], x_fixed: np.ndarray) -> np.ndarray:
    """argmin over the free neurons of E = 1/2 ||(I - theta^T) x||^2 (Eq. 5.2, f = id)."""
    a = np.eye(theta.shape[0]) - theta.T
    free = [i for i in range(theta.shape[0]) if i not in fixed]
    a_free, a_fixed = a[:, free], a[:, fixed]
    return -np.linalg.solve(a_free.T @ a_free, a_free.T @ a_fixed @ x_fixed.T).T


def test_conditioning_a_linear_three_neuron_graph_reaches_the_closed_form_conditional_optimum(
    x64,
):
    topology = fully_connected(3, sensory=1)  # groups: sensory [0], hidden [1, 2]
    graph = pc_graph(topology, activation="identity", key=jax.random.key(1))
    theta = np.asarray(weight_matrix(graph, topology))
    stimulus = np.array([[1.0], [-0.7], [2.5]])
    result = condition(graph, {"sensory": stimulus}, stop=Tolerance(1e-16, 20_000), gamma=0.2)
    expected = _conditional_optimum(theta, [0], stimulus)
    assert result.values["hidden"].dtype == jnp.float64
    np.testing.assert_allclose(result.values["hidden"], expected, atol=1e-5)
    np.testing.assert_array_equal(result.values["sensory"], stimulus)
    assert bool(result.converged) and int(result.steps) < 20_000


def test_momentum_reaches_the_same_conditional_optimum_in_fewer_steps(x64):
    topology = fully_connected(3, sensory=1)
    graph = pc_graph(topology, activation="identity", key=jax.random.key(1))
    theta = np.asarray(weight_matrix(graph, topology))
    stimulus = np.array([[1.0], [-0.7], [2.5]])
    stop = Tolerance(1e-16, 20_000)
    plain = condition(graph, {"sensory": stimulus}, stop=stop, gamma=0.02)
    heavy = condition(graph, {"sensory": stimulus}, stop=stop, value_optimizer=SGD(0.02, 0.9))
    expected = _conditional_optimum(theta, [0], stimulus)
    np.testing.assert_allclose(heavy.values["hidden"], expected, atol=1e-5)
    np.testing.assert_array_equal(heavy.values["sensory"], stimulus)
    assert bool(heavy.converged) and bool(plain.converged)
    assert int(heavy.steps) < int(plain.steps) / 2  # 334 against 739 steps
    with pytest.raises(ValueError, match="`momentum` must be in"):
        SGD(0.02, momentum=1.0)


def test_conditioning_on_an_element_mask_fixes_only_those_neurons_and_matches_the_closed_form(
    x64,
):
    topology = Topology(~np.eye(3, dtype=bool), {"all": range(3)})
    graph = pc_graph(topology, activation="identity", key=jax.random.key(2))
    theta = np.asarray(weight_matrix(graph, topology))
    stimulus = np.array([[0.0, 0.8, 0.0], [0.0, -1.5, 0.0]])
    clamp = {"all": np.array([False, True, False])}
    result = condition(
        graph, {"all": stimulus}, clamp=clamp, stop=Tolerance(1e-16, 20_000), gamma=0.2
    )
    expected = _conditional_optimum(theta, [1], stimulus[:, [1]])
    np.testing.assert_allclose(result.values["all"][:, [0, 2]], expected, atol=1e-5)
    np.testing.assert_array_equal(result.values["all"][:, 1], stimulus[:, 1])
    provided, clamp = fix_neurons(topology, [1], stimulus[:, [1]])
    again = condition(graph, provided, clamp=clamp, stop=Tolerance(1e-16, 20_000), gamma=0.2)
    np.testing.assert_allclose(again.values["all"], result.values["all"], atol=1e-12)


def test_querying_by_initialisation_moves_every_neuron_and_lowers_the_energy():
    graph = pc_graph(fully_connected(6, sensory=4), key=jax.random.key(3))
    start = {"sensory": jax.random.normal(jax.random.key(4), (5, 4))}
    before = graph.energy({"sensory": start["sensory"], "hidden": jnp.zeros((5, 2))})
    result = initialise(graph, start, stop=Tolerance(0.0, 50), gamma=0.1)
    assert not np.allclose(result.values["sensory"], start["sensory"])
    assert not np.allclose(result.values["hidden"], 0.0)
    assert np.all(np.asarray(result.final_energy) < np.asarray(before))
    np.testing.assert_allclose(result.final_energy, graph.energy(result.values), rtol=1e-5)


def test_the_tolerance_stops_early_and_reports_converged_while_the_cap_reports_not_converged():
    graph = pc_graph(fully_connected(6, sensory=4), key=jax.random.key(5))
    x = {"sensory": jax.random.normal(jax.random.key(6), (3, 4))}
    loose = condition(graph, x, stop=Tolerance(1e-3, 5000), gamma=0.1)
    assert bool(loose.converged) and 1 <= int(loose.steps) < 5000
    capped = condition(graph, x, stop=Tolerance(1e-12, 3), gamma=0.1)
    assert not bool(capped.converged) and int(capped.steps) == 3
    unchecked = condition(graph, x, stop=Tolerance(1e-3, 5000), gamma=50.0, check_finite=False)
    assert not bool(unchecked.converged) and int(unchecked.steps) < 5000
    assert not np.isfinite(np.asarray(unchecked.final_energy)).all()


def test_a_query_whose_energy_becomes_non_finite_raises_naming_the_node_and_gamma():
    graph = pc_graph(fully_connected(6, sensory=4), key=jax.random.key(5))
    x = {"sensory": jax.random.normal(jax.random.key(6), (3, 4))}
    with pytest.raises(NonFiniteEnergyError, match=r"node '(sensory|hidden)'.*lower .*`gamma`"):
        condition(graph, x, stop=Tolerance(1e-3, 5000), gamma=50.0)
    with pytest.raises(NonFiniteEnergyError, match="became non-finite"):
        initialise(graph, x, stop=Tolerance(1e-3, 5000), gamma=50.0)


def test_each_example_reports_its_own_steps_and_convergence_and_stops_moving_once_converged():
    graph = pc_graph(fully_connected(6, sensory=4), key=jax.random.key(5))
    stimulus = jax.random.normal(jax.random.key(6), (4, 4))
    stimulus = stimulus.at[0].set(0.0)  # all zeros: the start is already the minimum
    result = condition(graph, {"sensory": stimulus}, stop=Tolerance(1e-6, 5000), gamma=0.1)
    steps = np.asarray(result.example_steps)
    assert steps.shape == (4,) and np.asarray(result.example_converged).all()
    assert steps[0] == 1 and steps[1:].min() > 1
    assert int(result.steps) == steps.max() and bool(result.converged)
    # an example relaxed on its own takes the same steps and reaches the same values
    alone = condition(graph, {"sensory": stimulus[2:3]}, stop=Tolerance(1e-6, 5000), gamma=0.1)
    assert int(alone.example_steps[0]) == steps[2]
    np.testing.assert_allclose(alone.values["hidden"][0], result.values["hidden"][2], atol=1e-6)
    capped = condition(graph, {"sensory": stimulus}, stop=Tolerance(1e-12, 3), gamma=0.1)
    np.testing.assert_array_equal(capped.example_converged, [True, False, False, False])
    np.testing.assert_array_equal(capped.example_steps, [1, 3, 3, 3])


def test_bad_queries_and_label_counts_are_refused_with_clear_errors():
    topology = fully_connected(6, sensory=3, labels=2)
    graph = pc_graph(topology, key=jax.random.key(7))
    x = jnp.ones((2, 3))
    everything = {"sensory": x, "label": jnp.ones((2, 2)), "hidden": jnp.ones((2, 1))}
    with pytest.raises(ValueError, match="clamps every node"):
        condition(graph, everything)
    with pytest.raises(ValueError, match="clamps every node"):
        condition(graph, everything, clamp={"hidden": True})
    with pytest.raises(ValueError, match="not in the graph"):
        condition(graph, {"pixels": x})
    with pytest.raises(ValueError, match="expects values of shape"):
        condition(graph, {"sensory": jnp.ones((2, 4))})
    with pytest.raises(ValueError, match="no provided values"):
        condition(graph, {"sensory": x}, clamp={"hidden": jnp.ones((1,), bool)})
    with pytest.raises(IndexError, match="out of range"):
        fix_neurons(topology, [2, 6], jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="label count must match"):
        generate(graph, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"range\(0, 2\)"):
        one_hot(jnp.array([0, 2]), 2)
    with pytest.raises(ValueError, match="no label group"):
        classify(pc_graph(fully_connected(4, sensory=3), key=jax.random.key(0)), x)
    with pytest.raises(ValueError, match="max_steps"):
        condition(graph, {"sensory": x}, stop=Tolerance(max_steps=0))
