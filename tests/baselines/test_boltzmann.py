"""The fully connected Boltzmann machine (mean-field data term, persistent chains)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pcn.baselines import boltzmann


def _noisy_prototypes(n: int, seed: int, flip: float = 0.1):
    rng = np.random.default_rng(0)
    prototypes = (rng.random((4, 16)) < 0.5).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    flips = rng.random((n, 16)) < flip
    return np.abs(prototypes[y] - flips).astype(np.float32), y


def test_a_boltzmann_machine_learns_to_classify_noisy_prototypes_and_stays_symmetric():
    x, y = _noisy_prototypes(256, seed=1)
    machine = boltzmann.boltzmann_machine(16, 4, 8, key=jax.random.key(0))
    before = boltzmann.classify(machine, jnp.asarray(x)).output
    optimizer = optax.adam(1e-2)
    state = boltzmann.init(machine, optimizer, 32, jax.random.key(1))
    step = boltzmann.make_train_step(optimizer, steps=10, gibbs_steps=5)
    key = jax.random.key(2)
    for _epoch in range(15):
        for i in range(0, 256, 32):
            key, k = jax.random.split(key)
            state, error = step(state, x[i : i + 32], y[i : i + 32], k)
    w = np.asarray(state.machine.weight)
    np.testing.assert_allclose(w, w.T, atol=1e-6)
    np.testing.assert_array_equal(np.diag(w), 0.0)
    x_test, y_test = _noisy_prototypes(200, seed=2)
    result = boltzmann.classify(state.machine, jnp.asarray(x_test))
    accuracy = np.mean(np.asarray(result.output) == y_test)
    assert accuracy > 0.8, accuracy
    assert accuracy > np.mean(np.asarray(before) == y) + 0.3
    assert np.isfinite(float(error))


def test_bad_shapes_and_settings_are_refused_with_clear_errors():
    machine = boltzmann.boltzmann_machine(16, 4, 8, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 16\)"):
        boltzmann.classify(machine, jnp.ones((3, 15)))
    with pytest.raises(ValueError, match="steps"):
        boltzmann.make_train_step(optax.adam(1e-3), steps=0)
    with pytest.raises(ValueError, match="gibbs_steps"):
        boltzmann.make_train_step(optax.adam(1e-3), steps=5, gibbs_steps=0)
    with pytest.raises(ValueError, match="chains"):
        boltzmann.init(machine, optax.adam(1e-3), 0, jax.random.key(0))
    with pytest.raises(ValueError, match="damping"):
        boltzmann.classify(machine, jnp.ones((3, 16)), damping=0.0)
