"""Mistakes a user can make, and the one clear sentence each one gets back."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn


@pytest.fixture
def graph() -> pcn.PCGraph:
    return pcn.mlp((3, 4, 5, 2), key=jax.random.key(0))


@pytest.fixture
def batch() -> dict[str, jax.Array]:
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    return {"x": jnp.asarray(x), "y": jnp.ones((4, 2))}


def test_a_batch_array_of_the_wrong_shape_names_the_node_and_both_shapes(graph, batch):
    step = pcn.make_train_step(graph, pcn.IL(stop=2), optax.sgd(0.1))
    wrong = {**batch, "x": jnp.ones((4, 5))}
    with pytest.raises(ValueError, match=r"'x'.*\(batch, 3\).*\(4, 5\)"):
        step(step.init(graph), wrong)


def test_infer_with_a_value_of_the_wrong_shape_names_the_node_and_both_shapes(graph, batch):
    values = pcn.forward_init(graph, batch)
    values["h1"] = jnp.ones((4, 6))
    with pytest.raises(ValueError, match=r"'h1'.*\(batch, 4\).*\(4, 6\)"):
        pcn.infer(graph, values, clamp={"x": True}, stop=1, gamma=0.1)


def test_a_batch_for_an_unknown_node_or_with_mixed_batch_sizes_is_refused(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"'label'.*not in the graph"):
        step(step.init(graph), {**batch, "label": jnp.ones((4, 2))})
    with pytest.raises(ValueError, match="batch size"):
        step(step.init(graph), {**batch, "y": jnp.ones((3, 2))})


def test_missing_values_for_inference_are_named(graph, batch):
    with pytest.raises(ValueError, match=r"\['h1', 'h2'\]"):
        pcn.infer(graph, batch, clamp={"x": True}, stop=1, gamma=0.1)


def test_zero_relaxation_steps_name_steps(graph, batch):
    with pytest.raises(ValueError, match="`steps`"):
        pcn.IL(stop=0)
    values = pcn.forward_init(graph, batch)
    with pytest.raises(ValueError, match="`steps`"):
        pcn.infer(graph, values, clamp={"x": True}, stop=0, gamma=0.1)


@pytest.mark.parametrize("gamma", [0.0, -0.1])
def test_a_non_positive_gamma_names_gamma(graph, batch, gamma):
    with pytest.raises(ValueError, match="`gamma`"):
        pcn.IL(stop=2, gamma=gamma)
    values = pcn.forward_init(graph, batch)
    with pytest.raises(ValueError, match="`gamma`"):
        pcn.infer(graph, values, clamp={"x": True}, stop=1, gamma=gamma)


def test_gamma_and_an_optimizer_together_or_neither_are_refused(graph, batch):
    values = pcn.forward_init(graph, batch)
    with pytest.raises(ValueError, match="Pass `gamma`.*or `value_optimizer`"):
        pcn.infer(graph, values, clamp={"x": True}, stop=1)
    with pytest.raises(ValueError, match="one of `gamma`.*`value_optimizer`, not both"):
        pcn.infer(
            graph, values, clamp={"x": True}, stop=1, gamma=0.1, value_optimizer=optax.sgd(0.1)
        )
    with pytest.raises(TypeError, match="`value_optimizer` must be"):
        pcn.infer(graph, values, clamp={"x": True}, stop=1, value_optimizer=0.1)


def test_an_unknown_activation_names_activation_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"`activation` 'tanhh'.*'tanh'"):
        pcn.Node("h", 3, activation="tanhh")
    with pytest.raises(ValueError, match="`activation`"):
        pcn.mlp([3, 4, 2], key=jax.random.key(0), activation="softplusx")
    with pytest.raises(ValueError, match="`activation_site`"):
        pcn.mlp([3, 4, 2], key=jax.random.key(0), activation_site="edge")


def test_a_non_positive_precision_names_precision():
    with pytest.raises(ValueError, match="`precision`"):
        pcn.Gaussian(precision=0.0)


def test_an_edge_whose_output_does_not_fit_its_child_is_refused_at_construction():
    nodes = [pcn.Node("a", 3), pcn.Node("b", 5)]
    edge = pcn.Edge(eqx.nn.Linear(3, 4, key=jax.random.key(0)), "a", "b")
    with pytest.raises(ValueError, match=r"Edge 0.*\(4,\).*'b'.*\(5,\)"):
        pcn.PCGraph(nodes, [edge])


def test_an_edge_to_an_unknown_node_and_duplicate_node_names_are_refused():
    linear = eqx.nn.Linear(3, 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="'c'"):
        pcn.PCGraph([pcn.Node("a", 3), pcn.Node("b", 3)], [pcn.Edge(linear, "a", "c")])
    with pytest.raises(ValueError, match="unique"):
        pcn.PCGraph([pcn.Node("a", 3), pcn.Node("a", 3)], [])


def test_clamping_an_unknown_node_names_it(graph, batch):
    values = pcn.forward_init(graph, batch)
    with pytest.raises(ValueError, match=r"`clamp`.*'label'"):
        pcn.infer(graph, values, clamp={"x": True, "label": True}, stop=1, gamma=0.1)


def test_clamping_every_node_is_refused(graph, batch):
    values = pcn.forward_init(graph, batch)
    with pytest.raises(ValueError, match="`clamp` fixes every node"):
        pcn.infer(graph, values, clamp=dict.fromkeys(values, True), stop=1, gamma=0.1)


def test_a_clamp_mask_that_does_not_broadcast_names_the_node(graph, batch):
    values = pcn.forward_init(graph, batch)
    with pytest.raises(ValueError, match=r"'y'.*\(3,\)"):
        pcn.infer(graph, values, clamp={"x": True, "y": np.ones(3, bool)}, stop=1, gamma=0.1)


def test_forward_init_on_a_cyclic_graph_is_refused_and_suggests_another_init():
    keys = jax.random.split(jax.random.key(0), 2)
    nodes = [pcn.Node("a", 2), pcn.Node("b", 2), pcn.Node("c", 2)]
    edges = [
        pcn.Edge(eqx.nn.Linear(2, 2, key=keys[0]), "a", "b"),
        pcn.Edge(eqx.nn.Linear(2, 2, key=keys[1]), "b", "a"),
    ]
    graph = pcn.PCGraph(nodes, edges)
    with pytest.raises(ValueError, match=r"(?s)DAG.*cycle.*zeros_init"):
        pcn.forward_init(graph, {"c": jnp.ones((1, 2))})


def test_bp_on_a_generative_graph_names_the_missing_root():
    graph = pcn.generative_mlp((3, 4, 5, 2), key=jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"\['z'\]"):
        step(step.init(graph), {"x": jnp.ones((2, 2))})


def test_normal_init_without_a_key_asks_for_one(graph, batch):
    with pytest.raises(ValueError, match="key="):
        pcn.normal_init(graph, batch)


def test_a_train_state_for_a_differently_shaped_graph_is_refused(graph):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
    other = pcn.mlp((3, 4, 2), key=jax.random.key(0))
    with pytest.raises(ValueError, match="make_train_step"):
        step.init(other)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_diverging_il_step_stops_naming_a_node_and_suggesting_a_lower_gamma(graph, batch):
    step = pcn.make_train_step(graph, pcn.IL(stop=20, gamma=1e6), optax.sgd(0.01))
    _, info = step(step.init(graph), batch)
    assert np.isnan(float(info.loss))  # the failed step says so in its own info too
    with pytest.raises(
        pcn.NonFiniteEnergyError,
        match=r"energy of node '(h1|h2|y)' became non-finite.*`gamma`.*Call 1 .*skipped",
    ):
        step.check()
    step.check()  # reported once


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_failed_step_is_reported_by_a_later_call_before_it_runs_or_by_graph(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.01))
    state = step.init(graph)
    state, _ = step(state, _with(batch, "x", (0, 0), np.nan))
    with pytest.raises(pcn.NonFiniteDataError, match=r"Call 1 .* calls 2-\d+ ran on after it"):
        for _ in range(40):  # statuses are read in bursts, without waiting for the steps
            state, _ = step(state, batch)
    state, _ = step(state, _with(batch, "y", (0, 0), np.inf))
    with pytest.raises(pcn.NonFiniteDataError, match="node 'y'"):
        step.graph(state)


def test_a_rise_in_ppc_names_the_weights_learning_rate_too(graph, batch):
    # in PPC the weights move between value steps: a large weight step raises the
    # energy at a value step that is stable alone (IL with the same gamma stays quiet)
    ppc = pcn.make_train_step(graph, pcn.PPC(5, gamma=0.1), optax.adam(1.0))
    with pytest.warns(RuntimeWarning, match="energy rose.*weights' learning rate"):
        ppc(ppc.init(graph), batch)
        ppc.check()
    il = pcn.make_train_step(graph, pcn.IL(stop=5, gamma=0.1), optax.adam(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        il(il.init(graph), batch)
        il.check()


def test_a_relaxation_whose_energy_rises_warns_once_naming_gamma(graph, batch):
    step = pcn.make_train_step(graph, pcn.IL(stop=20, gamma=1.2), optax.sgd(0.01))
    state = step.init(graph)
    with pytest.warns(RuntimeWarning, match="relaxation energy rose.*`gamma`") as caught:
        for _ in range(3):
            state, info = step(state, batch)
        step.check()
    assert len([w for w in caught if "energy rose" in str(w.message)]) == 1
    stable = pcn.make_train_step(graph, pcn.IL(stop=20, gamma=0.1), optax.sgd(0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stable(stable.init(graph), batch)
        stable.check()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_diverging_relaxation_stops_naming_a_node_unless_checks_are_off(graph, batch):
    values = pcn.forward_init(graph, batch)
    kwargs = dict(clamp={"x": True, "y": True}, stop=20, gamma=1e6)
    with pytest.raises(pcn.NonFiniteEnergyError, match=r"node '(h1|h2|y)'.*`gamma`"):
        jax.block_until_ready(pcn.infer(graph, values, **kwargs))
    result = pcn.infer(graph, values, check_finite=False, **kwargs)
    assert not np.all(np.isfinite(np.asarray(result.energy_trace)))


def test_il_refuses_both_gamma_and_a_value_optimizer():
    with pytest.raises(ValueError, match="one of `gamma`.*not both"):
        pcn.IL(stop=5, gamma=0.5, value_optimizer=optax.adam(0.1))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_after_a_step_raises_its_state_is_intact_and_a_retry_with_a_smaller_step_trains(
    graph, batch
):
    diverging = pcn.make_train_step(graph, pcn.IL(stop=20, gamma=1e6), optax.sgd(0.01))
    state = diverging.init(graph)
    before = [np.asarray(leaf).copy() for leaf in state.leaves]
    returned, _ = diverging(state, batch)
    with pytest.raises(pcn.NonFiniteEnergyError):
        diverging.check()
    for leaf, back, saved in zip(state.leaves, returned.leaves, before, strict=True):
        np.testing.assert_array_equal(np.asarray(leaf), saved)  # still there, unchanged
        np.testing.assert_array_equal(np.asarray(back), saved)  # the update was skipped
    stable = pcn.make_train_step(graph, pcn.IL(stop=20, gamma=0.1), optax.sgd(0.01))
    state, info = stable(state, batch)
    assert np.isfinite(float(info.loss))


def test_a_donating_step_reuses_the_buffers_of_the_state_it_is_given(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.01), donate=True)
    state = step.init(graph)
    new, _ = step(state, batch)
    assert all(leaf.is_deleted() for leaf in state.leaves)
    assert not any(leaf.is_deleted() for leaf in new.leaves)


def test_a_donating_step_raises_an_earlier_failure_before_it_takes_the_state(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.01), donate=True)
    kept, _ = step(step.init(graph), _with(batch, "x", (0, 0), np.nan))
    jax.block_until_ready(kept)
    for _ in range(40):
        try:
            kept, _ = step(kept, batch)
        except pcn.NonFiniteDataError:
            break
    else:
        raise AssertionError("the failed step was never reported")
    assert not any(leaf.is_deleted() for leaf in kept.leaves)
    assert np.all(np.isfinite(np.asarray(kept.leaves[0])))


def _with(batch, name, index, value):
    data = np.asarray(batch[name]).copy()
    data[index] = value
    return {**batch, name: jnp.asarray(data)}


@pytest.mark.parametrize("algorithm", [pcn.BP(), pcn.IL(stop=5, gamma=0.1)], ids=["bp", "il"])
@pytest.mark.parametrize("node, bad", [("x", np.nan), ("x", np.inf), ("y", np.nan)])
def test_non_finite_data_stops_the_step_naming_the_node_and_blaming_the_data(
    graph, batch, algorithm, node, bad
):
    step = pcn.make_train_step(graph, algorithm, optax.sgd(0.01))
    state = step.init(graph)
    state, _ = step(state, _with(batch, node, (1, 0), bad))
    with pytest.raises(pcn.NonFiniteDataError, match=f"node {node!r} holds nan or inf.*batch"):
        step.check()
    state, info = step(state, batch)  # the state survived; clean data trains
    assert np.isfinite(float(info.loss))
    step.check()


def test_without_check_finite_non_finite_data_passes_through(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.01), check_finite=False)
    _, info = step(step.init(graph), _with(batch, "x", (0, 0), np.nan))
    assert np.isnan(float(info.loss))


def test_a_diverging_bp_step_stops_saying_the_weights_diverged(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(1e30))
    state = step.init(graph)
    for _ in range(5):
        state, info = step(state, batch)
    with pytest.raises(pcn.NonFiniteEnergyError, match="weights diverged.*learning rate"):
        step.check()


def test_an_empty_or_non_array_batch_is_refused_naming_the_node(graph, batch):
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.01))
    state = step.init(graph)
    with pytest.raises(ValueError, match="node 'x' holds no example"):
        step(state, {"x": jnp.zeros((0, 3)), "y": jnp.zeros((0, 2))})
    with pytest.raises(TypeError, match="node 'x' is a list.*jnp.asarray"):
        step(state, {"x": [[0.0, 1.0, 2.0]], "y": batch["y"][:1]})


def test_a_batch_without_the_label_warns_that_the_label_node_learns_nothing(graph, batch):
    step = pcn.make_train_step(graph, pcn.IL(stop=5, gamma=0.1), optax.sgd(0.01))
    with pytest.warns(UserWarning, match=r"no data for \['y'\].*teach the weights nothing"):
        step(step.init(graph), {"x": batch["x"]})


@pytest.mark.parametrize("width", [0, -3])
def test_a_layer_without_neurons_is_refused_when_the_model_is_built(width):
    with pytest.raises(ValueError, match=r"Node 'h1' needs a shape of integers >= 1"):
        pcn.mlp((3, width, 2), key=jax.random.key(0))


@pytest.mark.parametrize("gamma", ["0.1", True, [0.1]])
def test_a_value_step_that_is_not_a_real_number_is_refused_naming_it(gamma):
    with pytest.raises(TypeError, match="`gamma` must be a positive real number"):
        pcn.IL(stop=5, gamma=gamma)


def test_accuracy_checks_its_inputs_naming_the_fix(graph):
    x = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="at least one example"):
        pcn.accuracy(graph, x[:0], np.array([], int))
    with pytest.raises(ValueError, match=r"one class index per example of `x` \(3\)"):
        pcn.accuracy(graph, x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"range\(0, 2\).*node 'y'"):
        pcn.accuracy(graph, x, np.array([0, 1, 5]))
    labels = np.array([0, 1, 1])
    expected = np.mean(np.argmax(np.asarray(pcn.predict(graph, x)), axis=-1) == labels)
    assert pcn.accuracy(graph, x, labels) == expected


def test_a_relaxation_with_non_finite_clamped_data_blames_the_data_not_gamma(graph, batch):
    values = pcn.forward_init(graph, batch)
    values["x"] = values["x"].at[0, 0].set(jnp.inf)
    with pytest.raises(pcn.NonFiniteDataError, match="node 'x' holds nan or inf"):
        jax.block_until_ready(
            pcn.infer(graph, values, clamp={"x": True, "y": True}, stop=5, gamma=0.1)
        )
