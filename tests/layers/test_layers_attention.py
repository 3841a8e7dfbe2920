"""Self-attention: the documented equation, and the causal mask (output i never depends
on inputs after i)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pcn import layers as L

SEQ, DIM, HEADS = 5, 8, 2


def sequence(seed: int = 0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(SEQ, DIM)), jnp.float32)


def manual_attention(layer: L.MultiheadSelfAttention, x: jax.Array) -> jax.Array:
    """y = W_o concat_h softmax(Q_h K_h^T / sqrt(dim / heads) + M) V_h, written out."""
    att = layer.attention
    head = DIM // HEADS

    def split(proj):
        return (x @ proj.weight.T).reshape(SEQ, HEADS, head)

    q, k, v = split(att.query_proj), split(att.key_proj), split(att.value_proj)
    logits = jnp.einsum("ihd,jhd->hij", q, k) / jnp.sqrt(head)
    if layer.causal:
        logits = jnp.where(jnp.tril(jnp.ones((SEQ, SEQ), bool)), logits, -jnp.inf)
    out = jnp.einsum("hij,jhd->ihd", jax.nn.softmax(logits, axis=-1), v)
    return out.reshape(SEQ, DIM) @ att.output_proj.weight.T


@eqx.filter_jit
def outputs_and_jacobians(layers, x):
    return [(layer(x), manual_attention(layer, x), jax.jacobian(layer)(x)) for layer in layers]


def influence(jac: jax.Array) -> np.ndarray:
    """influence[i, j] = sum |d y_i / d x_j| from jac[i, :, j, :]."""
    return np.abs(np.asarray(jac)).sum(axis=(1, 3))


def test_attention_follows_the_equation_and_the_causal_mask_hides_later_positions():
    k1, k2 = jax.random.split(jax.random.key(0))
    causal = L.MultiheadSelfAttention(HEADS, DIM, causal=True, key=k1)
    full = L.MultiheadSelfAttention(HEADS, DIM, causal=False, key=k2)
    later = np.triu(np.ones((SEQ, SEQ), bool), k=1)  # later[i, j]: j > i

    (y_c, manual_c, jac_c), (y_f, manual_f, jac_f) = outputs_and_jacobians(
        (causal, full), sequence()
    )

    np.testing.assert_allclose(y_c, manual_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y_f, manual_f, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(influence(jac_c)[later], 0.0)
    assert np.all(influence(jac_c)[~later] > 0)
    assert np.all(influence(jac_f) > 0)  # without the mask every position sees every other


def test_a_causal_transformer_block_stays_causal_through_its_norms_and_mlp():
    block = L.TransformerBlock(DIM, HEADS, 16, causal=True, key=jax.random.key(1))
    jac = eqx.filter_jit(lambda b, x: jax.jacobian(b)(x))(block, sequence(1))
    later = np.triu(np.ones((SEQ, SEQ), bool), k=1)
    np.testing.assert_array_equal(influence(jac)[later], 0.0)
    assert np.all(influence(jac)[~later] > 0)


def test_attention_works_on_any_sequence_length():
    layer = L.MultiheadSelfAttention(HEADS, DIM, causal=True, key=jax.random.key(2))
    for seq in (1, 7):
        out = eqx.filter_eval_shape(layer, jax.ShapeDtypeStruct((seq, DIM), jnp.float32))
        assert out.shape == (seq, DIM)
