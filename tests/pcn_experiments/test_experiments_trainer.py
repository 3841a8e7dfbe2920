"""`fit` with a step that carries values between batches (a carrying initialiser): the
carry starts from the first batch, lives in the checkpoint, and a resumed run continues
it to the uninterrupted run's state; every evaluation is recorded with its step and
training seconds and passed to the run's monitor."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcn
from pcn_experiments.registry import RunContext
from pcn_experiments.trainer import Learner, fit, shuffled_batches, train_step_learner


def _fit(tmp_path, epochs: int, resume: bool):
    rng = np.random.default_rng(0)
    x = rng.random((48, 5)).astype(np.float32)
    y = np.arange(48) % 3
    graph = pcn.mlp([5, 8, 3], key=jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.IL(3, init=pcn.AverageInit()), optax.adam(1e-2))
    learner = train_step_learner(
        step,
        graph,
        shuffled_batches(x, y, 12, seed=1),
        lambda b: {"x": jnp.asarray(b[0]), "y": jax.nn.one_hot(b[1], 3)},
    )
    ctx = RunContext(out=tmp_path, progress=False, resume=resume)
    return step, fit(learner, epochs=epochs, ctx=ctx, label="avg").state


def test_a_carrying_initialiser_trains_through_fit_and_resumes_its_carry(tmp_path):
    step, straight = _fit(tmp_path / "straight", 3, resume=False)
    _fit(tmp_path / "resumed", 1, resume=False)  # interrupted after one epoch
    resumed_step, resumed = _fit(tmp_path / "resumed", 3, resume=True)
    assert (step._calls, resumed_step._calls) == (12, 8)  # it went on from epoch 1
    carry = step.carry(straight)
    assert set(carry[0]) == {"h1"} and carry[1].shape == (12,)  # values and classes
    assert len(straight.leaves) == len(resumed.leaves)
    for a, b in zip(straight.leaves, resumed.leaves, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_every_evaluation_reaches_the_monitor_with_its_step_and_training_seconds(tmp_path):
    seen = []
    learner = Learner(
        init=lambda: jnp.zeros(()),
        step=lambda state, batch: (state + batch, None),
        batches=lambda epoch: [1.0, 2.0, 3.0, 4.0],
        evaluate=lambda state: {"total": float(state)},
    )
    ctx = RunContext(out=tmp_path, progress=False, monitor=lambda s, v: seen.append((s, v)))
    history = fit(learner, epochs=2, ctx=ctx, label="sum", evals_per_epoch=2).history
    assert seen == [(2, {"total": 3.0}), (4, {"total": 10.0}), (6, {"total": 13.0}),
                    (8, {"total": 20.0})]  # fmt: skip
    assert history["step"] == [2, 4, 6, 8]
    assert len(history["seconds"]) == 4 and history["seconds"] == sorted(history["seconds"])


def test_fits_rising_energy_warning_gives_the_algorithms_advice():
    """PPC's weights move between value steps, so `fit`'s epoch warning names their
    learning rate as PPC's own step warning does; IL's names gamma only."""
    graph = pcn.mlp([5, 8, 3], key=jax.random.key(0))
    for algorithm in (pcn.PPC(4), pcn.IL(4)):
        step = pcn.make_train_step(graph, algorithm, optax.adam(1e-2))
        learner = train_step_learner(step, graph, lambda epoch: [], lambda b: b)
        assert learner.energy_hint == algorithm.rising_energy_hint
    assert "learning rate" in pcn.PPC(4).rising_energy_hint
    assert "learning rate" not in pcn.IL(4).rising_energy_hint
