"""Bad input to the energy families: clear errors naming the node or setting and the fix."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.energies import laplace_log_prob, laplace_sample


@pytest.mark.parametrize("variance", [0.0, -1.0, float("nan"), [1.0, -0.5, 2.0]])
def test_a_variance_that_is_not_positive_is_refused(variance):
    with pytest.raises(ValueError, match=r"`variance` of DiagonalGaussian must be .*> 0"):
        pcn.DiagonalGaussian(variance)


def test_the_variance_error_points_at_the_bad_entry():
    with pytest.raises(ValueError, match=r"got -0\.5 \(at flat index 1\)"):
        pcn.DiagonalGaussian([1.0, -0.5, 2.0], learned=True)


def test_a_negative_prior_weight_and_zero_samples_are_refused():
    with pytest.raises(ValueError, match="prior_weight"):
        pcn.ReparamGaussian(prior_weight=-1.0)
    with pytest.raises(ValueError, match="`samples` must be an integer >= 1"):
        pcn.MonteCarloKL(laplace_sample, laplace_log_prob, samples=0)


def test_a_bottleneck_node_of_odd_size_is_refused_with_the_shape_to_use():
    with pytest.raises(ValueError, match=r"even size, got 5.*\(2 \* latent,\)"):
        pcn.ReparamGaussian().energy(jnp.zeros((2, 5)), jnp.zeros((2, 5)))


def _classifier(energy):
    return pcn.PCGraph(
        [pcn.Node("x", 3), pcn.Node("h", 4, activation="tanh"), pcn.Node("y", 3, energy=energy)],
        [
            pcn.Edge(pcn.layers.Linear(3, 4, key=jax.random.key(0)), "x", "h"),
            pcn.Edge(pcn.layers.Linear(4, 3, key=jax.random.key(1)), "h", "y"),
        ],
    )


BAD_LABELS = {
    "negative": ([[1.5, -0.5, 0.0], [0.0, 1.0, 0.0]], r"it has a negative entry \(-0\.5\)"),
    "not normalised": ([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]], "a row sums to 2 instead of 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_infer_refuses_a_categorical_value_that_is_not_a_distribution(case):
    labels, problem = BAD_LABELS[case]
    graph = _classifier(pcn.Categorical())
    values = pcn.forward_init(graph, {"x": jnp.ones((2, 3))})
    values["y"] = jnp.asarray(labels)
    with pytest.raises(ValueError, match=rf"Node 'y' has a categorical energy, but {problem}"):
        pcn.infer(graph, values, clamp={"x": True, "y": True}, stop=2, gamma=0.1)


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_the_train_step_refuses_a_categorical_label_that_is_not_a_distribution(case):
    labels, problem = BAD_LABELS[case]
    graph = _classifier(pcn.Categorical())
    for algorithm in (pcn.IL(2, gamma=0.1), pcn.BP()):
        step = pcn.make_train_step(graph, algorithm, optax.sgd(0.1))
        state = step.init(graph)
        batch = {"x": jnp.ones((2, 3)), "y": jnp.asarray(labels)}
        with pytest.raises(ValueError, match=rf"Node 'y'.*{problem}.*one_hot"):
            step(state, batch)
        good = {"x": jnp.ones((2, 3)), "y": jnp.eye(3)[:2]}
        state, info = step(state, good)  # valid one-hot labels pass
        assert np.isfinite(float(info.loss))


def test_bernoulli_data_outside_the_unit_interval_is_refused():
    graph = _classifier(pcn.Bernoulli())
    step = pcn.make_train_step(graph, pcn.IL(2, gamma=0.1), optax.sgd(0.1))
    batch = {"x": jnp.ones((2, 3)), "y": jnp.asarray([[0.0, 1.0, 255.0], [0.0, 0.5, 1.0]])}
    with pytest.raises(ValueError, match=r"Node 'y' has a Bernoulli energy.*\[0, 1\]"):
        step(step.init(graph), batch)
