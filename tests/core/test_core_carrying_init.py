"""Initialisers that carry values from batch to batch (Faster-PC paper, Section 4):
I_null and I_avg (Eq. 7), their carry in the training state, and their refusals."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.cost import step_smm

SIZES = (5, 6, 6, 3)
T = 4


def _batch(seed: int, labels=(0, 1, 2, 0, 1, 2)) -> dict[str, jax.Array]:
    x = np.random.default_rng(seed).normal(size=(len(labels), SIZES[0]))
    return {"x": jnp.asarray(x), "y": jax.nn.one_hot(jnp.asarray(labels), 3, dtype=x.dtype)}


def _graph():
    return pcn.mlp(SIZES, key=jax.random.key(0))


def _relaxed(graph, values, batch):
    """The relaxation IL runs, by `pcn.infer`: T SGD steps with the batch clamped."""
    clamp = {name: True for name in batch}
    return pcn.infer(graph, values, clamp=clamp, stop=T, gamma=0.1).values


def test_null_init_starts_each_batch_at_the_last_batchs_relaxed_values(x64):
    graph, first, second = _graph(), _batch(1), _batch(2)
    step = pcn.make_train_step(graph, pcn.IL(T, gamma=0.1, fuse=False, init=pcn.NullInit()),
                               optax.sgd(0.1))  # fmt: skip
    state = step.init(graph, batch=first)
    # the first batch starts at its forward pass ...
    start = pcn.forward_init(graph, first)
    for name in ("h1", "h2"):
        np.testing.assert_allclose(step.carry(state)[name], start[name], rtol=0, atol=0)
    state, _ = step(state, first)
    relaxed = _relaxed(graph, start, first)
    for name in ("h1", "h2"):  # ... and the next at the values it relaxed to
        np.testing.assert_allclose(step.carry(state)[name], relaxed[name], atol=1e-12)
    # so the second batch's step is IL started from them by hand
    trained = step.graph(state)
    by_hand = _relaxed(trained, {**relaxed, **second}, second)
    state, _ = step(state, second)
    for name in ("h1", "h2"):
        np.testing.assert_allclose(step.carry(state)[name], by_hand[name], atol=1e-12)


def test_average_init_starts_each_example_at_its_class_mean_of_the_last_batch(x64):
    init = pcn.AverageInit()
    graph = _graph()
    h = jnp.arange(6.0 * 6).reshape(6, 6)
    carry = ({"h1": h, "h2": 2 * h}, jnp.asarray([0, 1, 0, 1, 0, 1]))  # no class 2
    batch = _batch(3, labels=(1, 0, 2, 1, 0, 2))
    values = init.initialise(carry, graph, batch)
    mean0, mean1, overall = h[::2].mean(0), h[1::2].mean(0), h.mean(0)
    expected = jnp.stack([mean1, mean0, overall, mean1, mean0, overall])
    np.testing.assert_allclose(values["h1"], expected)
    np.testing.assert_allclose(values["h2"], 2 * expected)
    assert values["x"] is batch["x"]


def test_average_init_trains_and_adds_no_sequential_product():
    graph, first = _graph(), _batch(1)
    average = pcn.IL(T, gamma=0.1, fuse=False, init=pcn.AverageInit())
    zero = pcn.IL(T, gamma=0.1, fuse=False, init=pcn.zeros_init)
    step = pcn.make_train_step(graph, average, optax.adam(1e-2))
    state = step.init(graph, batch=first)
    assert step_smm(step, state, first) == 2 * T + 1  # what any non-forward start costs
    zero_step = pcn.make_train_step(graph, zero, optax.adam(1e-2))
    assert step_smm(zero_step, zero_step.init(graph), first) == 2 * T + 1
    losses = []
    for i in range(30):
        state, info = step(state, _batch(i % 3))
        losses.append(float(info.loss))
    assert losses[-1] < 0.5 * losses[0]


def test_carrying_initialisers_refuse_what_they_cannot_start_from():
    graph, batch = _graph(), _batch(1)
    step = pcn.make_train_step(graph, pcn.IL(T, init=pcn.NullInit()), optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"step\.init\(graph, batch=first_batch\)"):
        step.init(graph)
    state = step.init(graph, batch=batch)
    short = {name: value[:4] for name, value in batch.items()}
    with pytest.raises(ValueError, match="carries batches of 6 examples, but this batch has 4"):
        step(state, short)
    with pytest.raises(TypeError, match="trains through `make_train_step`"):
        pcn.IL(T, init=pcn.NullInit()).step(graph, (), batch, optimizer=optax.sgd(0.1))
    average = pcn.make_train_step(graph, pcn.IL(T, init=pcn.AverageInit()), optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"node 'y'.*AverageInit\(labels=\.\.\.\)"):
        average.init(graph, batch={"x": batch["x"]})


def test_outside_training_a_carrying_initialiser_is_forward_initialisation():
    graph, batch = _graph(), _batch(1)
    x = {"x": batch["x"]}
    for init in (pcn.NullInit(), pcn.AverageInit()):
        values = init(graph, x)
        np.testing.assert_array_equal(values["y"], pcn.forward_init(graph, x)["y"])


@pytest.mark.parametrize("m", [0, 1, 2])
def test_the_hybrid_of_eq_10_starts_the_first_m_layers_at_their_forward_pass(m):
    graph, first = _graph(), _batch(1)
    init = pcn.AverageInit(forward_layers=m)
    carry = init.start(graph, first)
    carry = ({name: value + 1.0 for name, value in carry[0].items()}, carry[1])
    values = init.initialise(carry, graph, first)
    forward = pcn.forward_init(graph, first)
    for i, name in enumerate(("h1", "h2")):
        if i < m:  # the forward prediction from the layers below, as they were set
            np.testing.assert_allclose(values[name], forward[name], rtol=1e-6)
        else:  # the class mean of the carried values
            assert not np.allclose(values[name], forward[name])
    step = pcn.make_train_step(graph, pcn.IL(T, gamma=0.1, fuse=False, init=init), optax.sgd(0.1))
    assert step_smm(step, step.init(graph, batch=first), first) == 2 * T + 1 + m
    with pytest.raises(ValueError, match="L = 2 free nodes, got m = 3"):
        pcn.AverageInit(forward_layers=3).initialise(carry, graph, first)
    with pytest.raises(ValueError, match=r"must lie in \[0, L\], got -1"):
        pcn.AverageInit(forward_layers=-1)


def _decoder_batch():
    x = np.random.default_rng(5).random((6, 12))
    return pcn.generative_mlp([3, 8, 12], key=jax.random.key(1)), {"x": jnp.asarray(x)}


def test_memory_init_starts_where_forward_init_does(x64):
    graph, batch = _decoder_batch()
    init = pcn.MemoryInit(patterns=16, key_width=4)
    carry = init.start(graph, batch, key=jax.random.key(2))
    values, forward = init.initialise(carry, graph, batch), pcn.forward_init(graph, batch)
    for name in ("z", "h1"):  # V = A^+ h_fw: exact with more patterns than examples
        np.testing.assert_allclose(values[name], forward[name], atol=1e-10)


def _start_energies(graph, data, init, **init_kwargs) -> list[float]:
    """The energy where each of 150 steps' relaxation starts, on one batch."""
    step = pcn.make_train_step(graph, pcn.IL(T, gamma=0.1, fuse=False, init=init),
                               optax.adam(1e-2))  # fmt: skip
    state, starts = step.init(graph, **init_kwargs), []
    for _ in range(150):
        state, info = step(state, data)
        starts.append(float(info.energy_trace[0]))
    return starts


def test_memory_init_learns_to_start_near_the_relaxed_values():
    graph, batch = _decoder_batch()
    init = pcn.MemoryInit(patterns=16, key_width=4, optimizer=optax.adam(3e-2))
    step = pcn.make_train_step(graph, pcn.IL(T, gamma=0.1, fuse=False, init=init),
                               optax.sgd(0.1))  # fmt: skip
    state = step.init(graph, batch=batch, key=jax.random.key(2))
    # 3 products to answer before the relaxation, 2 more for Eq. 9's gradient after it
    assert step_smm(step, state, batch) == 2 * T + 1 + 3 + 1
    memory = _start_energies(graph, batch, init, batch=batch, key=jax.random.key(2))
    zero = _start_energies(graph, batch, pcn.zeros_init)
    # the energy where relaxation starts falls as the memory learns where it ends (when
    # written: 0.53 at the first step, 0.083 after 150; from zero 0.98, then 0.44)
    assert memory[-1] < 0.25 * memory[0]
    assert memory[-1] < 0.5 * zero[-1]
    with pytest.raises(ValueError, match=r"pass a key, `step\.init\(graph, batch=first_batch"):
        step.init(graph, batch=batch)


def test_memory_init_with_heads_starts_where_forward_init_does(x64):
    graph, batch = _decoder_batch()
    init = pcn.MemoryInit(patterns=4, key_width=3, heads=4)  # 16 columns of A
    carry = init.start(graph, batch, key=jax.random.key(2))
    assert carry[0]["h1"].query.shape == (12, 4, 3) and carry[0]["h1"].values.shape == (16, 8)
    values, forward = init.initialise(carry, graph, batch), pcn.forward_init(graph, batch)
    for name in ("z", "h1"):
        np.testing.assert_allclose(values[name], forward[name], atol=1e-10)


def test_memory_init_on_some_nodes_starts_the_rest_by_their_predictions(x64):
    # the paper's generative decoder: one memory for the latent, a forward pass below it
    graph, batch = _decoder_batch()
    init = pcn.MemoryInit(nodes=("z",), patterns=16, key_width=4, heads=2,
                          optimizer=optax.adam(3e-2))  # fmt: skip
    step = pcn.make_train_step(graph, pcn.IL(T, gamma=0.1, fuse=False, init=init),
                               optax.sgd(0.1))  # fmt: skip
    state = step.init(graph, batch=batch, key=jax.random.key(2))
    assert set(step.carry(state)[0]) == {"z"}
    for _ in range(20):
        state, _ = step(state, batch)
    values = init.initialise(step.carry(state), step.graph(state), batch)
    assert float(jnp.abs(values["z"]).max()) > 0.0  # it has learnt a latent
    below = pcn.forward_init(step.graph(state), {"z": values["z"], "x": batch["x"]})
    np.testing.assert_allclose(values["h1"], below["h1"], atol=1e-12)
    np.testing.assert_array_equal(values["x"], batch["x"])


@pytest.mark.parametrize(
    ("nodes", "match"),
    [
        (("x",), r"names \['x'\], which are not free nodes of this batch; the free nodes are"),
        (("w",), r"names \['w'\], which are not free"),
    ],
)
def test_memory_init_names_a_node_it_cannot_remember(nodes, match):
    graph, batch = _decoder_batch()
    with pytest.raises(ValueError, match=match):
        pcn.MemoryInit(nodes=nodes).start(graph, batch, key=jax.random.key(0))


def test_memory_init_rejects_a_bare_string_for_nodes():
    with pytest.raises(ValueError, match=r"as a non-empty tuple \(e\.g\. nodes=\('z',\)\)"):
        pcn.MemoryInit(nodes="z")


def test_on_a_graph_with_a_cycle_the_first_batch_starts_at_zero():
    keys = jax.random.split(jax.random.key(0), 3)
    nodes = [pcn.Node("a", 2), pcn.Node("b", 2), pcn.Node("c", 2)]
    edges = [
        pcn.Edge(eqx.nn.Linear(2, 2, key=keys[0]), "a", "b"),
        pcn.Edge(eqx.nn.Linear(2, 2, key=keys[1]), "b", "a"),
        pcn.Edge(eqx.nn.Linear(2, 2, key=keys[2]), "c", "a"),
    ]
    graph, batch = pcn.PCGraph(nodes, edges), {"c": jnp.ones((3, 2))}
    carry = pcn.NullInit().start(graph, batch)
    assert set(carry) == {"a", "b"}
    for value in carry.values():
        np.testing.assert_array_equal(value, 0.0)
