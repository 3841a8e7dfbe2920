"""The RBM baseline: closed-form free energy, exact p(y | v), CD-k training that learns."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pcn.baselines import rbm


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _brute_free_energy(model: rbm.RBM, v: np.ndarray, y: np.ndarray | None) -> float:
    """-log sum_h exp(-E(v, y, h)) by enumerating every hidden configuration."""
    w, b, c = map(np.asarray, (model.weight, model.visible_bias, model.hidden_bias))
    terms = []
    for bits in itertools.product([0.0, 1.0], repeat=model.n_hidden):
        h = np.array(bits)
        if model.visible == "bernoulli":
            e = -v @ b - c @ h - v @ w @ h
        else:
            e = 0.5 * np.sum((v - b) ** 2) - c @ h - v @ w @ h
        if y is not None:
            e += -y @ np.asarray(model.label_bias) - y @ np.asarray(model.label_weight) @ h
        terms.append(-e)
    return -float(np.logaddexp.reduce(terms))


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_matches_the_sum_over_every_hidden_configuration(x64, visible):
    model = rbm.rbm(5, 4, n_labels=3, visible=visible, key=jax.random.key(0), weight_std=0.7)
    model = rbm.RBM(
        model.weight,
        jnp.linspace(-0.5, 0.5, 5),
        jnp.linspace(0.3, -0.3, 4),
        model.label_weight,
        jnp.array([0.1, -0.2, 0.3]),
        visible,
    )
    v = np.array([[1.0, 0.0, 1.0, 1.0, 0.0], [0.2, 0.9, 0.0, 0.4, 1.0]])
    y = np.eye(3)[[2, 0]]
    got = np.asarray(rbm.free_energy(model, jnp.asarray(v), jnp.asarray(y)))
    want = [_brute_free_energy(model, v[i], y[i]) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_label_logits_are_minus_the_free_energy_of_each_class(x64):
    model = rbm.rbm(6, 5, n_labels=4, key=jax.random.key(1), weight_std=0.5)
    v = jax.random.uniform(jax.random.key(2), (3, 6))
    logits = rbm.label_logits(model, v)
    for c in range(4):
        y = jax.nn.one_hot(jnp.full(3, c), 4)
        np.testing.assert_allclose(logits[:, c], -rbm.free_energy(model, v, y), rtol=1e-10)


def _two_class_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary 16-pixel patterns: class 0 lights the left half, class 1 the right, noisy."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = np.zeros((n, 16))
    base[y == 0, :8] = 1.0
    base[y == 1, 8:] = 1.0
    flip = rng.random((n, 16)) < 0.1
    return np.abs(base - flip).astype(np.float32), y


def test_cd1_training_learns_to_classify_and_to_complete_two_patterns():
    x, y = _two_class_data(400, 0)
    model = rbm.rbm(16, 8, n_labels=2, key=jax.random.key(0))
    before = np.mean(rbm.classify(model, x) == y)
    model, errors = rbm.train(model, x, y, epochs=15, batch_size=20, learning_rate=0.05, k=1)
    x_test, y_test = _two_class_data(200, 1)
    assert np.mean(rbm.classify(model, x_test) == y_test) > 0.95
    assert before < 0.9
    assert errors[-1] < errors[0]
    # completion: the first quarter of each half known, the rest filled in by mean field
    known = np.zeros(16, bool)
    known[:4] = known[8:12] = True
    clean = np.zeros((2, 16), np.float32)
    clean[0, :8] = 1.0
    clean[1, 8:] = 1.0
    filled = rbm.reconstruct(model, np.where(known, clean, 0.0), known=known, steps=20)
    np.testing.assert_array_equal(filled[:, known], clean[:, known])
    assert np.mean((filled - clean) ** 2) < 0.05


def test_hybrid_training_with_a_discriminative_term_also_learns():
    x, y = _two_class_data(400, 2)
    model = rbm.rbm(16, 8, n_labels=2, key=jax.random.key(3))
    model, _ = rbm.train(model, x, y, epochs=5, batch_size=20, learning_rate=0.05, alpha=1.0)
    assert np.mean(rbm.classify(model, x) == y) > 0.95


def test_train_is_epoch_batches_and_train_batch_so_a_run_can_resume_at_any_epoch():
    # a resumable trainer (the suite's `fit`) replays epoch e from `epoch_batches` alone
    x, y = _two_class_data(70, 4)
    model = rbm.rbm(16, 8, n_labels=2, key=jax.random.key(5))
    trained, errors = rbm.train(model, x, y, epochs=3, batch_size=20, learning_rate=0.05, seed=7)
    trainer = rbm.cd_trainer(optax.adam(0.05))
    state = rbm.CDState(model, trainer.init(model), jax.random.key(7))
    for epoch in range(3):
        batches = rbm.epoch_batches(len(x), 20, 7, epoch)
        assert [len(b) for b in batches] == [20, 20, 20]  # the partial batch is left out
        assert len(np.unique(np.concatenate(batches))) == 60
        epoch_errors = []
        for idx in batches:
            state, error = rbm.train_batch(trainer, state, jnp.asarray(x[idx]), y[idx])
            epoch_errors.append(error)
        assert float(jnp.mean(jnp.stack(epoch_errors))) == errors[epoch]
    for got, want in zip(jax.tree.leaves(state.model), jax.tree.leaves(trained), strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(
        rbm.epoch_batches(len(x), 20, 7, 0)[0], rbm.epoch_batches(len(x), 20, 7, 1)[0]
    )


def test_bad_settings_and_shapes_are_named():
    model = rbm.rbm(16, 8, key=jax.random.key(0))
    with pytest.raises(ValueError, match="visible"):
        rbm.rbm(16, 8, visible="poisson", key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"\(batch, 16\)"):
        rbm.train(model, np.zeros((4, 10)), epochs=1, batch_size=2, learning_rate=0.1)
    with pytest.raises(ValueError, match="label units"):
        rbm.train(
            model, np.zeros((4, 16)), np.zeros(4, int), epochs=1, batch_size=2, learning_rate=0.1
        )
    with pytest.raises(ValueError, match="n_labels"):
        rbm.classify(model, np.zeros((4, 16)))
    with pytest.raises(ValueError, match="`k`"):
        rbm.cd_trainer(None, k=0)
