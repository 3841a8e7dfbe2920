"""The transformer language model graph: causal, the same function for every variant,
zero energy at its forward pass, the BP loss is the next-token cross-entropy, and bad
inputs are refused naming both sizes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.energies import Categorical, Gaussian, SoftmaxCategorical
from pcn.language_model import check_vocabulary, language_model, lm_batch, next_token_log_probs

VOCAB, SEQ, DIM = 13, 6, 8


def model(variant: str = "pc_fkl", seed: int = 0):
    return language_model(VOCAB, seq_len=SEQ, dim=DIM, variant=variant, key=jax.random.key(seed))


def sequences(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=(n, SEQ + 1)).astype(np.int32)


def test_a_prediction_never_depends_on_later_tokens():
    graph = model()
    tokens = sequences(1)[:, :-1]
    changed = tokens.copy()
    changed[0, 3:] = (changed[0, 3:] + 1) % VOCAB
    before, after = next_token_log_probs(graph, tokens), next_token_log_probs(graph, changed)
    np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-6)
    assert not np.allclose(before[:, 3:], after[:, 3:], atol=1e-4)


def test_every_variant_computes_the_same_function_from_the_same_key():
    tokens = sequences()[:, :-1]
    reference = next_token_log_probs(model("bp"), tokens)
    for variant in ("pc_f", "pc_fkl"):
        np.testing.assert_allclose(
            next_token_log_probs(model(variant), tokens), reference, atol=1e-5
        )
    np.testing.assert_allclose(jnp.sum(jnp.exp(reference), axis=-1), 1.0, atol=1e-5)


def test_softmax_nodes_get_kl_energies_for_pc_fkl_and_gaussian_ones_for_pc_f():
    kl, gauss = model("pc_fkl"), model("pc_f")
    assert isinstance(kl.node("attention").energy, SoftmaxCategorical)
    assert isinstance(kl.node("y").energy, Categorical)
    assert isinstance(gauss.node("attention").energy, Gaussian)
    assert isinstance(gauss.node("y").energy, Gaussian)
    assert kl.node("attention").shape == (SEQ, SEQ) and kl.node("y").shape == (SEQ, VOCAB)


def test_hidden_precision_applies_to_the_gaussian_hidden_nodes_only():
    stiff = language_model(
        VOCAB, seq_len=SEQ, dim=DIM, variant="pc_f", hidden_precision=100.0, key=jax.random.key(0)
    )
    assert [stiff.node(n).energy.precision for n in ("embed", "h", "z")] == [100.0] * 3
    assert stiff.node("y").energy.precision == 1.0  # the output keeps unit precision
    assert stiff.node("attention").energy.precision == 1.0  # its own setting


@pytest.mark.parametrize("variant", ["pc_f", "pc_fkl"])
def test_attention_precision_weights_the_attention_energy(variant):
    graph = language_model(
        VOCAB,
        seq_len=SEQ,
        dim=DIM,
        variant=variant,
        hidden_precision=100.0,
        attention_precision=2.0,
        key=jax.random.key(0),
    )
    assert graph.node("attention").energy.precision == 2.0
    assert graph.node("h").energy.precision == 100.0


@pytest.mark.parametrize("variant", ["pc_f", "pc_fkl"])
def test_forward_initialisation_leaves_zero_energy_on_every_hidden_node(variant):
    graph = model(variant)
    values = pcn.forward_init(graph, {"tokens": jnp.asarray(sequences()[:, :-1])})
    energies = graph.node_energies(values)
    for name in ("embed", "attention", "h", "z"):
        np.testing.assert_allclose(energies[name], 0.0, atol=1e-5)


def test_the_bp_loss_is_the_summed_next_token_cross_entropy():
    graph, seqs = model("bp"), sequences()
    log_p = next_token_log_probs(graph, seqs[:, :-1])
    picked = jnp.take_along_axis(log_p, jnp.asarray(seqs[:, 1:, None]), axis=-1)
    expected = -jnp.mean(jnp.sum(picked, axis=(1, 2)))
    np.testing.assert_allclose(pcn.bp_loss(graph, lm_batch(graph, seqs)), expected, rtol=1e-5)
    np.testing.assert_allclose(
        np.log(pcn.perplexity(graph, seqs, chunk=3)), -np.mean(picked), rtol=1e-5
    )


@pytest.mark.parametrize("variant", ["pc_f", "pc_fkl"])
def test_relaxation_keeps_attention_off_future_positions(variant):
    graph, seqs = model(variant), sequences()
    batch = lm_batch(graph, seqs)
    values = pcn.forward_init(graph, {"tokens": batch["tokens"]})
    values["y"] = batch["y"]
    relaxed = pcn.infer(graph, values, clamp={"tokens": True, "y": True}, stop=5, gamma=0.1)
    attention = graph.node("attention").energy.present(relaxed.values["attention"])
    future = ~np.tril(np.ones((SEQ, SEQ), bool))
    assert np.all(np.asarray(attention)[:, future] == 0.0)
    assert not np.allclose(relaxed.values["z"], values["z"])  # the errors did move the values
    assert relaxed.energy_trace[-1] < relaxed.energy_trace[0]


@pytest.mark.parametrize("variant", ["bp", "pc_fkl"])
def test_training_on_one_batch_lowers_its_perplexity(variant):
    graph, seqs = model(variant), sequences(8)
    algorithm = pcn.BP() if variant == "bp" else pcn.IL(5, gamma=0.1, weight_updates=2)
    step = pcn.make_train_step(graph, algorithm, optax.adam(1e-2))
    state, batch = step.init(graph), lm_batch(graph, seqs)
    for _ in range(20):
        state, _ = step(state, batch)
    assert pcn.perplexity(step.graph(state), seqs) < 0.5 * pcn.perplexity(graph, seqs)


def test_a_tokenizer_of_another_size_is_refused_naming_both_sizes():
    with pytest.raises(
        ValueError, match=r"tokenizer has 20 tokens.*vocabulary is 13.*vocab_size=20"
    ):
        check_vocabulary(model(), 20)
    bad = sequences()
    bad[0, 2] = VOCAB + 3
    with pytest.raises(ValueError, match=r"token id 16.*vocabulary of 13 tokens"):
        lm_batch(model(), bad)


def test_sequences_longer_than_the_context_are_refused_naming_both_lengths():
    long = np.zeros((2, SEQ + 5), np.int32)
    with pytest.raises(
        ValueError, match=rf"10 input tokens.*context is {SEQ} tokens.*seq_len={SEQ}"
    ):
        lm_batch(model(), long)
    with pytest.raises(ValueError, match=rf"\(batch, {SEQ}\).*got \(2, 10\)"):
        next_token_log_probs(model(), long[:, :-1])


def test_bad_model_settings_are_refused_naming_the_setting():
    with pytest.raises(ValueError, match="variant"):
        language_model(VOCAB, variant="pc", key=jax.random.key(0))
    with pytest.raises(ValueError, match="vocab_size"):
        language_model(1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="hidden_precision"):
        language_model(VOCAB, hidden_precision=0.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="attention_precision"):
        language_model(VOCAB, attention_precision=-1.0, key=jax.random.key(0))
