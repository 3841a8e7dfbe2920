"""Compiled training steps: no retracing, BP is plain backprop, IL learns."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
import pcn._engine
import pcn.algorithms

SIZES = (3, 4, 5, 2)


def batches(n: int, batch: int, seed: int = 0, dtype=np.float32):
    """`n` random batches for an MLP of `SIZES` (numpy draws: no jax compilation)."""
    rng = np.random.default_rng(seed)
    return [
        {
            "x": jnp.asarray(rng.normal(size=(batch, SIZES[0])).astype(dtype)),
            "y": jnp.asarray(rng.normal(size=(batch, SIZES[-1])).astype(dtype)),
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("algorithm", [pcn.IL(stop=3, gamma=0.1), pcn.BP()], ids=["IL", "BP"])
def test_the_compiled_step_is_traced_once_for_batches_of_the_same_shape(monkeypatch, algorithm):
    traces = []
    original = type(algorithm).step

    def counting_step(self, *args, **kwargs):
        traces.append(1)  # runs only while jax traces the step
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(algorithm), "step", counting_step)
    graph = pcn.mlp(SIZES, key=jax.random.key(0))
    step = pcn.make_train_step(graph, algorithm, optax.sgd(0.01))
    state = step.init(graph)

    losses = []
    for batch in batches(3, 4, seed=1):
        state, info = step(state, batch)
        losses.append(float(info.loss))

    assert len(traces) == 1
    assert len(set(losses)) == 3  # three different batches really went through


def test_a_new_random_key_does_not_retrace_the_step(monkeypatch):
    traces = []
    original = pcn.algorithms.IL.step

    def counting_step(self, *args, **kwargs):
        traces.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pcn.algorithms.IL, "step", counting_step)
    graph = pcn.mlp(SIZES, key=jax.random.key(0))
    algorithm = pcn.IL(stop=2, gamma=0.1, init=pcn.normal_init)
    step = pcn.make_train_step(graph, algorithm, optax.sgd(0.01))
    state = step.init(graph)
    (batch,) = batches(1, 4, seed=2)
    for seed in range(3):
        state, _ = step(state, batch, jax.random.key(seed))
    assert len(traces) == 1


def test_the_train_state_round_trips_the_graph_and_optimizer_state():
    graph = pcn.mlp(SIZES, key=jax.random.key(3))
    optimizer = optax.adam(1e-3)
    step = pcn.make_train_step(graph, pcn.BP(), optimizer)
    state = step.init(graph)
    rebuilt = step.graph(state)
    for a, b in zip(jax.tree.leaves(graph), jax.tree.leaves(rebuilt), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert jax.tree.structure(step.opt_state(state)) == jax.tree.structure(
        optimizer.init(pcn.parameters(graph))
    )


def mlp_params(graph: pcn.PCGraph) -> list[tuple[jax.Array, jax.Array]]:
    """(W, b) of the edges of an mlp, input to output."""
    out = []
    for name in ("h1", "h2", "y"):
        (edge,) = graph.incoming(name)
        module = edge.module
        linear = module.layers[-1] if hasattr(module, "layers") else module
        out.append((linear.weight, linear.bias))
    return out


def forward(params, x, site):
    """The plain MLP the graph describes (Eq. 2.6), written without the library."""
    (w1, b1), (w2, b2), (w3, b3) = params
    if site == "prediction":  # h = tanh(W x + b)
        h1 = jnp.tanh(x @ w1.T + b1[None])
        h2 = jnp.tanh(h1 @ w2.T + b2[None])
        return h2 @ w3.T + b3[None]
    # parent: pre-activations are the values, the next layer reads tanh of them
    h1 = x @ w1.T + b1[None]
    h2 = jnp.tanh(h1) @ w2.T + b2[None]
    return jnp.tanh(h2) @ w3.T + b3[None]


def squared_error(params, x, y, site):
    """Eq. 2.7, F = 1/2 ||s_out - y^0||^2, averaged over the batch."""
    return jnp.mean(0.5 * jnp.sum((y - forward(params, x, site)) ** 2, axis=1))


def cross_entropy(params, x, labels, site):
    return jnp.mean(optax.softmax_cross_entropy(forward(params, x, site), labels))


def sgd_by_hand(loss, params, lr, *args):
    """One step of plain gradient descent on `loss` (jitted only to keep the test fast)."""

    @jax.jit
    def step(params):
        value, grads = jax.value_and_grad(loss)(params, *args)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), value

    return step(params)


@pytest.mark.parametrize("site", ["prediction", "parent"])
def test_a_bp_step_is_plain_backprop_of_the_squared_error(x64, site):
    graph = pcn.mlp(SIZES, key=jax.random.key(4), activation_site=site)
    (batch,) = batches(1, 6, seed=5, dtype=np.float64)
    lr = 0.3

    expected, expected_loss = sgd_by_hand(
        squared_error, mlp_params(graph), lr, batch["x"], batch["y"], site
    )
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(lr))
    state, info = step(step.init(graph), batch)

    np.testing.assert_allclose(float(info.loss), float(expected_loss), rtol=1e-12)
    assert info.energy_trace.shape == (0,)
    for got, want in zip(mlp_params(step.graph(state)), expected, strict=True):
        np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), atol=1e-12)


def test_bp_with_several_weight_updates_is_that_many_plain_backprop_steps_on_the_batch(x64):
    graph = pcn.mlp(SIZES, key=jax.random.key(4))
    (batch,) = batches(1, 6, seed=5, dtype=np.float64)
    params, first_loss = mlp_params(graph), None
    for _ in range(3):
        params, loss = sgd_by_hand(squared_error, params, 0.3, batch["x"], batch["y"], "prediction")
        first_loss = loss if first_loss is None else first_loss
    step = pcn.make_train_step(graph, pcn.BP(weight_updates=3), optax.sgd(0.3))
    state, info = step(step.init(graph), batch)
    np.testing.assert_allclose(float(info.loss), float(first_loss), rtol=1e-12)
    for got, want in zip(mlp_params(step.graph(state)), params, strict=True):
        np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), atol=1e-12)
    with pytest.raises(ValueError, match="`weight_updates`"):
        pcn.BP(weight_updates=0)
    with pytest.raises(ValueError, match="Unknown `loss`"):
        pcn.BP(loss="energy")
        np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), atol=1e-12)


def test_a_bp_step_with_a_categorical_output_is_softmax_cross_entropy(x64):
    graph = pcn.mlp(SIZES, key=jax.random.key(6), output="categorical")
    x = jnp.asarray(np.random.default_rng(7).normal(size=(6, 3)))
    labels = jnp.asarray(np.eye(2)[[0, 1, 1, 0, 1, 0]])
    lr = 0.3

    expected, expected_loss = sgd_by_hand(
        cross_entropy, mlp_params(graph), lr, x, labels, "prediction"
    )
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(lr))
    state, info = step(step.init(graph), {"x": x, "y": labels})

    np.testing.assert_allclose(float(info.loss), float(expected_loss), rtol=1e-12)
    for got, want in zip(mlp_params(step.graph(state)), expected, strict=True):
        np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), atol=1e-12)
        np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), atol=1e-12)


def test_bp_loss_is_the_squared_error_of_the_forward_pass():
    graph = pcn.mlp(SIZES, key=jax.random.key(8))
    (batch,) = batches(1, 6, seed=9)
    np.testing.assert_allclose(
        eqx.filter_jit(pcn.bp_loss)(graph, batch),
        squared_error(mlp_params(graph), batch["x"], batch["y"], "prediction"),
        rtol=1e-6,
    )


def test_a_generative_mlp_trained_with_il_lowers_its_energy_on_a_tiny_dataset():
    # eight 6-pixel "images" in [0, 1] built from two prototypes
    rng = np.random.default_rng(10)
    prototypes = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 1]], dtype=np.float32)
    images = prototypes[rng.integers(0, 2, size=8)]
    images = np.clip(images + 0.05 * rng.normal(size=images.shape), 0, 1).astype(np.float32)
    batch = {"x": jnp.asarray(images)}

    graph = pcn.generative_mlp([2, 8, 6], key=jax.random.key(11))
    step = pcn.make_train_step(graph, pcn.IL(stop=20, gamma=0.1), optax.adam(0.02))
    state = step.init(graph)
    losses = []
    for _ in range(300):
        state, info = step(state, batch)
        losses.append(float(info.loss))

    assert np.all(np.isfinite(losses))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.1 * first, (first, last)


@pytest.mark.usefixtures("x64")
def test_several_weight_updates_are_that_many_optimiser_steps_at_the_same_relaxed_values():
    graph = pcn.mlp(SIZES, key=jax.random.key(3))
    batch = batches(1, 5, seed=2, dtype=np.float64)[0]
    optimizer = optax.adam(1e-2)
    step = pcn.make_train_step(graph, pcn.IL(stop=4, gamma=0.1, weight_updates=3), optimizer)
    state, info = step(step.init(graph), batch)

    relaxed = pcn.infer(graph, pcn.forward_init(graph, batch), clamp=batch, stop=4, gamma=0.1)
    expected, opt_state = graph, optimizer.init(eqx.filter(graph, eqx.is_inexact_array))
    for _ in range(3):
        expected, opt_state, _, _ = pcn.algorithms.update_weights(
            expected,
            opt_state,
            lambda g: pcn._engine.mean_energy(g, relaxed.values),
            optimizer,
        )
    got = jax.tree.leaves(eqx.filter(step.graph(state), eqx.is_inexact_array))
    want = jax.tree.leaves(eqx.filter(expected, eqx.is_inexact_array))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    one = pcn.make_train_step(graph, pcn.IL(stop=4, gamma=0.1), optimizer)
    once = jax.tree.leaves(
        eqx.filter(one.graph(one(one.init(graph), batch)[0]), eqx.is_inexact_array)
    )
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(got, once, strict=True)) > 1e-4


def test_weight_updates_below_one_is_refused():
    with pytest.raises(ValueError, match="weight_updates"):
        pcn.IL(stop=3, weight_updates=0)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_a_step_that_records_no_energy_trace_trains_exactly_the_same(fuse):
    graph = pcn.mlp(SIZES, activation="tanh", key=jax.random.key(4))
    results = []
    for record in (True, False):
        algorithm = pcn.IL(stop=5, gamma=0.1, fuse=fuse, record_energy=record)
        step = pcn.make_train_step(graph, algorithm, optax.adam(1e-2))
        state = step.init(graph)
        for batch in batches(2, 6, seed=7):
            state, info = step(state, batch)
        results.append((step.graph(state), info))
    (recorded, info_recorded), (unrecorded, info_unrecorded) = results
    assert info_recorded.energy_trace.shape == (5,)
    assert info_unrecorded.energy_trace.shape == (0,)
    np.testing.assert_allclose(info_recorded.loss, info_unrecorded.loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(recorded), jax.tree.leaves(unrecorded), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_train_epoch_shows_progress_only_through_the_callers_wrapper():
    graph = pcn.mlp(SIZES, key=jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, SIZES[0])).astype(np.float32)
    y = rng.normal(size=(12, SIZES[-1])).astype(np.float32)
    make = lambda xb, yb: {"x": jnp.asarray(xb), "y": jnp.asarray(yb)}
    seen = []

    def wrapper(pieces):
        seen.append(len(pieces))
        return iter(pieces)

    _, plain = pcn.train_epoch(step, step.init(graph), make, x, y, batch_size=4, seed=0)
    _, shown = pcn.train_epoch(
        step, step.init(graph), make, x, y, batch_size=4, seed=0, progress=wrapper
    )
    assert seen == [3] and shown.loss == plain.loss and shown.steps == plain.steps == 3
    with pytest.raises(TypeError, match="progress"):
        pcn.train_epoch(step, step.init(graph), make, x, y, batch_size=4, seed=0, progress=True)
