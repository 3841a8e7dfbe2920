"""Parallel / incremental PC (`pcn.PPC`, thesis Algorithm 3): with k = T it is inference
learning's step bit for bit; with k = 1 the value and weight steps run in parallel from
the same errors (checked by hand on a linear network); the step compiles once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
import pcn.ppc

SIZES = (3, 4, 5, 2)


def _batch(n: int, sizes=SIZES, seed: int = 0, dtype=np.float64) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        "x": jnp.asarray(rng.normal(size=(n, sizes[0])).astype(dtype)),
        "y": jnp.asarray(rng.normal(size=(n, sizes[-1])).astype(dtype)),
    }


@pytest.mark.parametrize("optimizer", [optax.sgd(0.05), optax.adam(1e-2)], ids=["sgd", "adam"])
def test_updating_the_weights_every_T_steps_is_inference_learning_bit_for_bit(x64, optimizer):
    graph = pcn.mlp(SIZES, activation="tanh", key=jax.random.key(1))
    results = []
    for algorithm in (pcn.IL(5, gamma=0.1, fuse=False), pcn.PPC(5, weight_every=5, gamma=0.1)):
        step = pcn.make_train_step(graph, algorithm, optimizer)
        state = step.init(graph)
        for seed in range(2):
            state, info = step(state, _batch(6, seed=seed))
        results.append((step.graph(state), info))
    (il, il_info), (ppc, ppc_info) = results
    assert il.edges[0].module.weight.dtype == jnp.float64
    for a, b in zip(jax.tree.leaves(il), jax.tree.leaves(ppc), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(il_info.loss, ppc_info.loss)
    np.testing.assert_array_equal(il_info.energy_trace, ppc_info.energy_trace)


def test_ipc_on_a_linear_network_is_the_hand_derived_parallel_update(x64):
    # x -> h -> y, no activation: E = 1/2 |h - W1 x - b1|^2 + 1/2 |y - W2 h - b2|^2 per example
    sizes, gamma, lr = (3, 4, 2), 0.2, 0.1
    graph = pcn.mlp(sizes, activation="identity", key=jax.random.key(2))
    batch = _batch(5, sizes, seed=3)
    x, y = batch["x"], batch["y"]
    w1, b1 = graph.edges[0].module.weight, graph.edges[0].module.bias
    w2, b2 = graph.edges[1].module.weight, graph.edges[1].module.bias

    def errors(w1, b1, w2, b2, h):
        return h - x @ w1.T - b1[None], y - h @ w2.T - b2[None]

    def value_step(w1, b1, w2, b2, h):
        e1, e2 = errors(w1, b1, w2, b2, h)
        return h - gamma * (e1 - e2 @ w2)

    def weight_step(w1, b1, w2, b2, h):  # the gradient of the batch-mean energy
        e1, e2 = errors(w1, b1, w2, b2, h)
        n = len(x)
        return (w1 + lr * e1.T @ x / n, b1 + lr * e1.mean(0),
                w2 + lr * e2.T @ h / n, b2 + lr * e2.mean(0))  # fmt: skip

    # T = 2, k = 1: a value step at h0 (the forward pass); at h1 a value step and a weight
    # step from the same errors (old weights); at h2 the last weight step
    h0 = x @ w1.T + b1[None]
    h1 = value_step(w1, b1, w2, b2, h0)
    h2 = value_step(w1, b1, w2, b2, h1)
    params = weight_step(w1, b1, w2, b2, h1)
    params = weight_step(*params, h2)

    step = pcn.make_train_step(graph, pcn.PPC(2, weight_every=1, gamma=gamma), optax.sgd(lr))
    state, info = step(step.init(graph), batch)
    trained = step.graph(state)
    got = (trained.edges[0].module.weight, trained.edges[0].module.bias,
           trained.edges[1].module.weight, trained.edges[1].module.bias)  # fmt: skip
    for a, b in zip(got, params, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    # the loss is the energy at the last weight step (at h2, the weights after one update)
    e1, e2 = errors(*weight_step(w1, b1, w2, b2, h1), h2)
    expected = 0.5 * jnp.mean(jnp.sum(e1**2, 1)) + 0.5 * jnp.mean(jnp.sum(e2**2, 1))
    np.testing.assert_allclose(float(info.loss), float(expected), rtol=1e-12)
    assert info.energy_trace.shape == (2,)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_unrolling_the_steps_changes_no_number(x64, k):
    # `unroll` only lays the steps out without a loop (for convolutions on XLA:CPU)
    graph = pcn.mlp(SIZES, activation="tanh", key=jax.random.key(1))
    results = []
    for unroll in (False, True):
        step = pcn.make_train_step(
            graph, pcn.PPC(4, weight_every=k, unroll=unroll), optax.adam(1e-2)
        )
        state = step.init(graph)
        for seed in range(2):
            state, info = step(state, _batch(6, seed=seed))
        results.append((step.graph(state), info.energy_trace))
    (looped, looped_trace), (unrolled, unrolled_trace) = results
    for a, b in zip(jax.tree.leaves(looped), jax.tree.leaves(unrolled), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(looped_trace, unrolled_trace, rtol=1e-12)


def test_the_schedule_compiles_once_into_one_program(monkeypatch):
    traces = []
    original = pcn.ppc.PPC._train_on

    def counting(self, *args, **kwargs):
        traces.append(1)  # runs only while jax traces the step
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pcn.ppc.PPC, "_train_on", counting)
    graph = pcn.mlp(SIZES, key=jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.PPC(6, weight_every=2), optax.sgd(0.01))
    state = step.init(graph)
    losses = []
    for seed in range(3):
        state, info = step(state, _batch(4, seed=seed, dtype=np.float32))
        losses.append(float(info.loss))
    assert len(traces) == 1 and len(set(losses)) == 3
    assert info.energy_trace.shape == (6,)


def test_ipc_learns_a_batch_it_sees_again():
    graph = pcn.mlp(SIZES, activation="tanh", key=jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.PPC(4, gamma=0.1), optax.sgd(0.05))
    state, batch = step.init(graph), _batch(8, dtype=np.float32)
    first = pcn.losses.bp_loss(graph, batch)
    for _ in range(30):
        state, _ = step(state, batch)
    assert pcn.losses.bp_loss(step.graph(state), batch) < 0.7 * first  # 0.67 -> 0.42


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 6, "weight_every": 4}, "must divide `steps`"),
        ({"steps": 3, "weight_every": 6}, "must divide `steps`"),
        ({"steps": 3, "weight_every": 0}, "`weight_every`"),
        ({"steps": 0}, "`steps`"),
    ],
)
def test_a_schedule_that_never_ends_on_a_weight_step_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pcn.PPC(**kwargs)
