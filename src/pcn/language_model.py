"""A causally masked transformer language model as a `PCGraph` (section 4.3 of
`papers/pc-beyond-gaussian-distributions.md`): one block, one head, token inputs of a
fixed length, the next token predicted at every position.

Nodes (per example, `seq` tokens of width `dim`, `vocab` tokens in the vocabulary):

    tokens (seq,)        token ids, clamped (a float or int array of ids)
    embed (seq, dim)     = E[tokens] + P                     (token + position embedding)
    attention (seq, seq) <- q k^T / sqrt(dim) from LN(embed), future positions masked
    h (seq, dim)         = embed + W_o A V(LN(embed)),       A = what `attention` shows
    z (seq, dim)         = h + MLP(LN(h))
    y (seq, vocab)       <- W LN(z) + b, clamped to the one-hot next tokens

The two softmax layers are where the variants differ (paper, Eq. 10): with `"pc_fkl"`
(and `"bp"`, which trains the same graph by backprop) `attention` is a
`SoftmaxCategorical` node that holds logits (children see their softmax) and `y` is a
`Categorical` node (cross-entropy against the next token); with `"pc_f"` both are
Gaussian nodes whose prediction goes through a softmax. All three compute the same
function in a forward pass, so they start from the same weights.
"""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_at_least, check_choice, check_positive
from .energies import Categorical, Gaussian, SoftmaxCategorical
from .graph import Edge, Node, PCGraph
from .init import forward_init
from .layers import Identity, LayerNorm, Linear, MLPSublayer

Variant = Literal["bp", "pc_f", "pc_fkl"]
VARIANTS: tuple[str, ...] = ("bp", "pc_f", "pc_fkl")

# Logit of a masked (future) position: exp() of it is exactly 0 in float32 and float64,
# while differences of it stay finite (unlike -inf, which makes the KL energy nan).
_MASKED = -1e9


def _causal(seq: int) -> jax.Array:
    return jnp.tril(jnp.ones((seq, seq), dtype=bool))


class TokenEmbedding(eqx.Module):
    """Token plus learned position embedding, `(seq,)` ids -> `(seq, dim)`."""

    tokens: jax.Array  # (vocab, dim)
    positions: jax.Array  # (max_seq, dim)

    def __init__(self, vocab_size: int, max_seq: int, dim: int, *, key: jax.Array):
        k1, k2 = jax.random.split(key)
        # unit scale (as `eqx.nn.Embedding`): the residual stream stays O(1), so the layer
        # norms downstream do not amplify the errors that relaxation sends back
        self.tokens = jax.random.normal(k1, (vocab_size, dim))
        self.positions = jax.random.normal(k2, (max_seq, dim))

    def __call__(self, ids: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        ids = ids.astype(jnp.int32)  # ids may travel as floats in a node's value
        return self.tokens[ids] + self.positions[: ids.shape[0]]


class AttentionScores(eqx.Module):
    """Causal attention logits of one head, `(seq, dim) -> (seq, seq)`:
    `S = (LN(x) W_q)(LN(x) W_k)^T / sqrt(dim)`, with `S[i, j]` masked for `j > i`."""

    norm: LayerNorm
    w_q: Linear
    w_k: Linear

    def __init__(self, dim: int, *, key: jax.Array):
        k1, k2 = jax.random.split(key)
        self.norm = LayerNorm(dim)
        self.w_q = Linear(dim, dim, use_bias=False, key=k1)
        self.w_k = Linear(dim, dim, use_bias=False, key=k2)

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        h = self.norm(x)
        q, k = jax.vmap(self.w_q)(h), jax.vmap(self.w_k)(h)
        scores = q @ k.T / math.sqrt(x.shape[-1])
        return jnp.where(_causal(x.shape[0]), scores, _MASKED)


class AttentionMix(eqx.Module):
    """Attention output, `(probabilities (seq, seq), x (seq, dim)) -> (seq, dim)`:
    `W_o (A * M) (LN(x) W_v)`, with the causal mask `M` applied again so that a Gaussian
    attention node (PC_F), whose value may drift off the simplex, never mixes in the
    future."""

    norm: LayerNorm
    w_v: Linear
    w_o: Linear

    def __init__(self, dim: int, *, key: jax.Array):
        k1, k2 = jax.random.split(key)
        self.norm = LayerNorm(dim)
        self.w_v = Linear(dim, dim, use_bias=False, key=k1)
        self.w_o = Linear(dim, dim, use_bias=False, key=k2)

    def __call__(
        self, probabilities: jax.Array, x: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        mixed = (probabilities * _causal(x.shape[0])) @ jax.vmap(self.w_v)(self.norm(x))
        return jax.vmap(self.w_o)(mixed)


class Readout(eqx.Module):
    """Next-token logits at every position, `(seq, dim) -> (seq, vocab)`: `W LN(z) + b`."""

    norm: LayerNorm
    linear: Linear

    def __init__(self, dim: int, vocab_size: int, *, key: jax.Array):
        self.norm = LayerNorm(dim)
        self.linear = Linear(dim, vocab_size, key=key)

    def __call__(self, z: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        return jax.vmap(self.linear)(self.norm(z))


def language_model(
    vocab_size: int,
    *,
    seq_len: int = 32,
    dim: int = 128,
    mlp_hidden: int | None = None,
    variant: Variant = "pc_fkl",
    hidden_precision: float = 1.0,
    attention_precision: float = 1.0,
    key: jax.Array,
) -> PCGraph:
    """A one-block, one-head causal transformer LM over `seq_len` tokens (see the module
    docstring for its nodes). `variant` picks the energies of the softmax nodes: KL
    energies for `"pc_fkl"` and `"bp"`, Gaussian ones for `"pc_f"`. The MLP has
    `mlp_hidden` units (default `dim`: the paper's hidden size 128 throughout).
    `hidden_precision` is the precision of the Gaussian hidden nodes (`embed`, `h`, `z`;
    1: the paper's identity covariances); a large one keeps their relaxed errors small,
    so they cannot absorb the output's error (scale the value step down with it).
    `attention_precision` weights the attention node's energy (1: the paper's; as stiff as
    the hidden nodes trained worse in one 3-epoch run, test perplexity 65.6 vs 59.9)."""
    check_positive("hidden_precision", hidden_precision, hint="Use 1.0 for identity covariance.")
    check_positive("attention_precision", attention_precision, hint="1.0 is the paper's.")
    check_at_least("vocab_size", vocab_size, 2)
    check_at_least("seq_len", seq_len, 1)
    check_at_least("dim", dim, 1)
    check_choice("variant", variant, VARIANTS)
    mlp_hidden = dim if mlp_hidden is None else mlp_hidden
    k_emb, k_att, k_mix, k_mlp, k_out = jax.random.split(key, 5)
    if variant == "pc_f":
        attention = Node(
            "attention",
            (seq_len, seq_len),
            activation=jax.nn.softmax,
            energy=Gaussian(precision=attention_precision),
        )
        y = Node("y", (seq_len, vocab_size), activation=jax.nn.softmax, energy=Gaussian())
    else:
        energy = SoftmaxCategorical(precision=attention_precision)
        attention = Node("attention", (seq_len, seq_len), energy=energy)
        y = Node("y", (seq_len, vocab_size), energy=Categorical())
    hidden = Gaussian(precision=hidden_precision)
    nodes = [
        Node("tokens", (seq_len,)),
        Node("embed", (seq_len, dim), energy=hidden),
        attention,
        Node("h", (seq_len, dim), energy=hidden),
        Node("z", (seq_len, dim), energy=hidden),
        y,
    ]
    edges = [
        Edge(TokenEmbedding(vocab_size, seq_len, dim, key=k_emb), "tokens", "embed"),
        Edge(AttentionScores(dim, key=k_att), "embed", "attention"),
        Edge(AttentionMix(dim, key=k_mix), ("attention", "embed"), "h"),
        Edge(Identity(), "embed", "h"),
        Edge(MLPSublayer(dim, mlp_hidden, key=k_mlp), "h", "z"),
        Edge(Identity(), "h", "z"),
        Edge(Readout(dim, vocab_size, key=k_out), "z", "y"),
    ]
    return PCGraph(nodes, edges)


def model_sizes(graph: PCGraph) -> tuple[int, int]:
    """`(seq_len, vocab_size)` of a `language_model` graph."""
    if "tokens" not in graph.names or "y" not in graph.names:
        raise ValueError(
            f"Expected a `pcn.language_model` graph (nodes 'tokens' and 'y'), got nodes "
            f"{list(graph.names)}."
        )
    seq_len, vocab_size = graph.node("y").shape
    return seq_len, vocab_size


def check_vocabulary(graph: PCGraph, vocab_size: int) -> None:
    """Refuse a tokenizer whose vocabulary differs from the model's output size."""
    _, model_vocab = model_sizes(graph)
    if vocab_size != model_vocab:
        raise ValueError(
            f"The tokenizer has {vocab_size} tokens but the model's vocabulary is "
            f"{model_vocab}; build the model with `language_model(vocab_size={vocab_size})` "
            "(the tokenizer's size), or load the data with "
            f"`pcn.data.load_text(..., vocab_size={model_vocab})`."
        )


def check_sequences(graph: PCGraph, sequences: np.ndarray | jax.Array) -> None:
    """`sequences` are `(batch, seq_len + 1)` ids (inputs and the next tokens) in range."""
    seq_len, vocab_size = model_sizes(graph)
    shape = tuple(np.shape(sequences))
    if len(shape) != 2:
        raise ValueError(
            f"Token sequences must have shape (batch, {seq_len + 1}) (the model's context of "
            f"{seq_len} tokens plus the next token), got {shape}."
        )
    if shape[1] != seq_len + 1:
        raise ValueError(
            f"The sequences have {shape[1] - 1} input tokens but the model's context is "
            f"{seq_len} tokens; cut the data with `pcn.data.load_text(..., seq_len={seq_len})` "
            f"or build the model with `language_model(seq_len={shape[1] - 1})`."
        )
    if shape[0] and isinstance(sequences, np.ndarray):
        low, high = int(sequences.min()), int(sequences.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"The sequences hold token id {high if high >= vocab_size else low}, outside "
                f"the model's vocabulary of {vocab_size} tokens; the tokenizer and the model "
                "must agree: build the model with `language_model(vocab_size=<tokenizer's "
                "vocab_size>)`."
            )


def lm_batch(graph: PCGraph, sequences: np.ndarray | jax.Array) -> dict[str, jax.Array]:
    """Node values of a batch of `(batch, seq_len + 1)` token sequences: the first
    `seq_len` ids to `"tokens"`, the one-hot next tokens to `"y"`."""
    check_sequences(graph, sequences)
    _, vocab_size = model_sizes(graph)
    sequences = jnp.asarray(sequences, dtype=jnp.int32)
    return {
        "tokens": sequences[:, :-1],
        "y": jax.nn.one_hot(sequences[:, 1:], vocab_size, dtype=jnp.result_type(float)),
    }


@eqx.filter_jit
def _log_probs(graph: PCGraph, tokens: jax.Array) -> jax.Array:
    values = forward_init(graph, {"tokens": tokens})
    (edge,) = graph.incoming("y")
    z = graph.node("z").energy.present(values["z"])
    logits = jax.vmap(graph.edge_module(edge))(z)
    return jax.nn.log_softmax(logits, axis=-1)


@eqx.filter_jit
def _nll(graph: PCGraph, sequences: jax.Array) -> jax.Array:
    log_p = _log_probs(graph, sequences[:, :-1])
    picked = jnp.take_along_axis(log_p, sequences[:, 1:, None], axis=-1)
    return -jnp.sum(picked, axis=(1, 2))


def next_token_log_probs(graph: PCGraph, tokens: np.ndarray | jax.Array) -> jax.Array:
    """Log-probabilities of the next token at every position by a forward pass:
    `(batch, seq_len)` ids -> `(batch, seq_len, vocab)`. The same for every variant (the
    logits before the output softmax)."""
    seq_len, _ = model_sizes(graph)
    shape = tuple(np.shape(tokens))
    if len(shape) != 2 or shape[1] != seq_len:
        raise ValueError(
            f"`tokens` must have shape (batch, {seq_len}) for this model (its context is "
            f"{seq_len} tokens), got {shape}; cut longer inputs to {seq_len} tokens."
        )
    return _log_probs(graph, jnp.asarray(tokens, dtype=jnp.int32))


def perplexity(graph: PCGraph, sequences: np.ndarray, *, chunk: int = 256) -> float:
    """`exp` of the mean next-token cross-entropy over every position of `sequences`
    (`(n, seq_len + 1)` ids), by forward passes in chunks."""
    check_sequences(graph, sequences)
    if len(sequences) == 0:
        raise ValueError("`sequences` is empty; perplexity needs at least one sequence.")
    sequences = np.asarray(sequences, np.int32)
    chunk = min(chunk, len(sequences))
    total = 0.0
    for i in range(0, len(sequences), chunk):
        part = sequences[i : i + chunk]
        # pad the last chunk to the same shape (one compiled program), then drop the padding
        padded = np.concatenate([part, np.zeros((chunk - len(part), part.shape[1]), np.int32)])
        total += float(jnp.sum(_nll(graph, jnp.asarray(padded))[: len(part)]))
    return math.exp(total / sequences[:, 1:].size)
