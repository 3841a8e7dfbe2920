"""Bad constructor arguments and mismatched inputs fail with a message naming the
argument and the fix."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn import layers as L

KEY = jax.random.key(0)


def test_attention_heads_must_divide_the_dimension():
    with pytest.raises(ValueError, match=r"`num_heads` \(3\) must divide `dim` \(8\)"):
        L.MultiheadSelfAttention(3, 8, causal=True, key=KEY)
    with pytest.raises(ValueError, match=r"`num_heads` must be an integer >= 1, got 0"):
        L.MultiheadSelfAttention(0, 8, causal=False, key=KEY)
    with pytest.raises(ValueError, match=r"`num_heads` \(3\) must divide `dim` \(8\)"):
        L.TransformerBlock(8, 3, 16, causal=True, key=KEY)


def test_attention_rejects_a_sequence_of_the_wrong_width_when_the_graph_is_built():
    layer = L.MultiheadSelfAttention(2, 8, causal=True, key=KEY)
    with pytest.raises(ValueError, match=r"takes one sequence of shape \(seq, 8\), got \(5, 6\)"):
        pcn.PCGraph([pcn.Node("x", (5, 6)), pcn.Node("y", (5, 8))], [pcn.Edge(layer, "x", "y")])


def test_a_mask_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"`mask` must have shape .* = \(2, 3\), got \(3, 2\)"):
        L.MaskedLinear(3, 2, np.ones((3, 2)), key=KEY)


def test_a_non_binary_mask_is_refused():
    with pytest.raises(ValueError, match="`mask` must be binary"):
        L.MaskedLinear(3, 2, np.full((2, 3), 0.5), key=KEY)


def test_reshape_needs_positive_sizes_and_at_most_one_inferred_axis():
    with pytest.raises(ValueError, match="`shape` must be positive integers with at most one -1"):
        L.Reshape((-1, -1))
    with pytest.raises(ValueError, match="`shape` must be positive integers"):
        L.Reshape((0, 4))


def test_reshape_to_the_wrong_size_fails_when_the_graph_is_built():
    with pytest.raises(ValueError, match=r"Reshape\(4, 5\) cannot take an input of shape \(16,\)"):
        pcn.PCGraph(
            [pcn.Node("x", 16), pcn.Node("y", (4, 5))], [pcn.Edge(L.Reshape((4, 5)), "x", "y")]
        )


def test_an_edge_whose_output_does_not_match_the_child_is_named_by_the_graph():
    with pytest.raises(ValueError, match=r"outputs shape \(4, 4, 4\) per example, but node 'y'"):
        pcn.PCGraph(
            [pcn.Node("x", (4, 8, 8)), pcn.Node("y", (4, 8, 8))],
            [pcn.Edge(L.MaxPool2d(2), "x", "y")],
        )


def test_layernorm_checks_its_shape_and_the_trailing_axes_of_its_input():
    with pytest.raises(ValueError, match="`shape` must be one or more positive integers"):
        L.LayerNorm(())
    with pytest.raises(ValueError, match="`eps` must be > 0"):
        L.LayerNorm(4, eps=0.0)
    with pytest.raises(ValueError, match=r"normalises the trailing axes \(8,\), but the input"):
        L.LayerNorm(8)(jnp.ones((5, 6)))


def test_residual_needs_a_callable_that_keeps_the_shape():
    with pytest.raises(ValueError, match="`inner` must be a callable module"):
        L.Residual(3)
    with pytest.raises(ValueError, match=r"keep the shape of its input: \(5,\) -> \(3,\)"):
        L.Residual(L.Linear(5, 3, key=KEY))(jnp.ones(5))


def test_rnn_cell_validates_its_sizes_and_activation_site():
    with pytest.raises(ValueError, match=r"Unknown `activation_site` 'output'"):
        L.RNNCell(3, 4, activation_site="output", key=KEY)
    with pytest.raises(ValueError, match="`hidden_size` must be an integer >= 1"):
        L.RNNCell(3, 0, key=KEY)
    with pytest.raises(ValueError, match="Unknown `activation` 'tanhh'"):
        L.RNNCell(3, 4, activation="tanhh", key=KEY)


def test_mlp_sublayer_validates_its_sizes():
    with pytest.raises(ValueError, match="`hidden_size` must be an integer >= 1"):
        L.MLPSublayer(8, 0, key=KEY)
