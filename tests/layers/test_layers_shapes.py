"""Every layer maps one example to the documented shape, plugs into a PCGraph as an edge
(passing its shape check), and forward initialisation then sits at zero energy."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn import layers as L

KEY = jax.random.key(0)
BATCH = 3

# (id, module factory, input shape per example, output shape per example)
CASES = [
    ("conv_same", lambda k: L.Conv2d(3, 4, 3, padding="SAME", key=k), (3, 8, 8), (4, 8, 8)),
    ("conv_stride", lambda k: L.Conv2d(3, 4, 3, stride=2, padding=1, key=k), (3, 8, 8), (4, 4, 4)),
    ("conv_valid", lambda k: L.Conv2d(1, 2, 5, key=k), (1, 8, 8), (2, 4, 4)),
    ("maxpool", lambda k: L.MaxPool2d(2), (4, 8, 8), (4, 4, 4)),
    ("maxpool_stride1", lambda k: L.MaxPool2d(3, stride=1), (4, 8, 8), (4, 6, 6)),
    ("maxpool_padded", lambda k: L.MaxPool2d(3, stride=2, padding=1), (2, 8, 8), (2, 4, 4)),
    ("avgpool", lambda k: L.AvgPool2d(2), (4, 8, 8), (4, 4, 4)),
    ("flatten", lambda k: L.Flatten(), (4, 4, 4), (64,)),
    ("reshape", lambda k: L.Reshape((4, 4, 4)), (64,), (4, 4, 4)),
    ("reshape_inferred", lambda k: L.Reshape((-1, 8)), (64,), (8, 8)),
    ("linear", lambda k: L.Linear(5, 3, key=k), (5,), (3,)),
    ("identity", lambda k: L.Identity(), (5,), (5,)),
    ("layernorm_tokens", lambda k: L.LayerNorm(8), (6, 8), (6, 8)),
    ("layernorm_image", lambda k: L.LayerNorm((4, 4)), (2, 4, 4), (2, 4, 4)),
    ("mhsa_causal", lambda k: L.MultiheadSelfAttention(2, 8, causal=True, key=k), (5, 8), (5, 8)),
    ("mhsa", lambda k: L.MultiheadSelfAttention(4, 8, causal=False, key=k), (5, 8), (5, 8)),
    ("attention_sub", lambda k: L.AttentionSublayer(8, 2, causal=True, key=k), (5, 8), (5, 8)),
    ("mlp_sub", lambda k: L.MLPSublayer(8, 16, key=k), (5, 8), (5, 8)),
    ("residual", lambda k: L.Residual(L.MLPSublayer(8, 16, key=k)), (5, 8), (5, 8)),
    ("block", lambda k: L.TransformerBlock(8, 2, 16, causal=True, key=k), (5, 8), (5, 8)),
    ("masked", lambda k: L.MaskedLinear(3, 2, np.eye(2, 3), key=k), (3,), (2,)),
    ("rnn_first", lambda k: L.RNNFirstStep(L.RNNCell(3, 4, key=k)), (3,), (4,)),
    (
        "sequential",
        lambda k: eqx.nn.Sequential([L.MaxPool2d(2), L.Flatten(), L.Linear(16, 3, key=k)]),
        (1, 8, 8),
        (3,),
    ),
]
IDS = [c[0] for c in CASES]


def random_input(shape: tuple[int, ...], batch: int | None = None) -> jax.Array:
    full = shape if batch is None else (batch, *shape)
    return jnp.asarray(np.random.default_rng(1).normal(size=full).astype(np.float32))


@eqx.filter_jit
def run_as_edge(graph: pcn.PCGraph, x: jax.Array):
    """Forward initialisation from `x`, its energy, and the edge called example by example."""
    values = pcn.forward_init(graph, {"x": x})
    module = graph.edges[0].module
    one_by_one = jnp.stack([module(x[i]) for i in range(x.shape[0])])
    return values, graph.energy(values), one_by_one


@pytest.mark.parametrize(("name", "make", "in_shape", "out_shape"), CASES, ids=IDS)
def test_each_layer_has_the_documented_shape_passes_the_graph_check_and_starts_at_zero_energy(
    name, make, in_shape, out_shape
):
    module = make(KEY)
    assert eqx.filter_eval_shape(module, random_input(in_shape)).shape == out_shape
    graph = pcn.PCGraph(
        [pcn.Node("x", in_shape), pcn.Node("y", out_shape)], [pcn.Edge(module, "x", "y")]
    )
    values, energy, one_by_one = run_as_edge(graph, random_input(in_shape, BATCH))
    assert values["y"].shape == (BATCH, *out_shape)
    assert bool(jnp.all(jnp.isfinite(values["y"])))
    np.testing.assert_array_equal(energy, np.zeros(BATCH))
    # the graph maps the per-example module over the batch
    np.testing.assert_allclose(values["y"], one_by_one, rtol=1e-5, atol=1e-6)


def test_pooling_windows_do_not_overlap_by_default_and_take_the_max_or_mean():
    x = random_input((2, 4, 6))
    windows = x.reshape(2, 2, 2, 3, 2)  # (C, H/2, 2, W/2, 2)
    np.testing.assert_allclose(L.MaxPool2d(2)(x), windows.max(axis=(2, 4)), rtol=1e-6)
    np.testing.assert_allclose(L.AvgPool2d(2)(x), windows.mean(axis=(2, 4)), rtol=1e-6)


def test_layernorm_normalises_each_token_over_the_trailing_axes():
    x = 3.0 + 2.0 * random_input((6, 8))
    y = L.LayerNorm(8)(x)
    np.testing.assert_allclose(y.mean(axis=-1), np.zeros(6), atol=1e-5)
    np.testing.assert_allclose(y.var(axis=-1), np.ones(6), rtol=1e-3)


def test_flatten_and_reshape_are_inverse_row_major_reshapes():
    x = random_input((4, 2, 3))
    flat = L.Flatten()(x)
    np.testing.assert_array_equal(flat, np.asarray(x).ravel())
    np.testing.assert_array_equal(L.Reshape((4, 2, 3))(flat), x)


def test_residual_is_the_input_plus_the_inner_map():
    inner = L.MLPSublayer(8, 16, key=KEY)
    x = random_input((5, 8))
    np.testing.assert_allclose(L.Residual(inner)(x), x + inner(x), rtol=1e-6)
