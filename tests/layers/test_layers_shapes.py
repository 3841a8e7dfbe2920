"""Every layer maps one example to the documented shape, plugs into a PCGraph as an edge
(passing its shape check), and forward initialisation then sits at zero energy."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn import layers as L

KEY = jax.random.key(0)
BATCH = 3

# (id, module factory, input shape per example, output shape per example); the sizes
# repeat those of the other test files, so the initialisers compile once per shape
CASES = [
    ("conv_same", lambda k: L.Conv2d(1, 4, 3, padding="SAME", key=k), (1, 8, 8), (4, 8, 8)),
    ("conv_stride", lambda k: L.Conv2d(1, 4, 3, stride=2, padding=1, key=k), (1, 8, 8), (4, 4, 4)),
    ("conv_valid", lambda k: L.Conv2d(1, 4, 3, key=k), (1, 8, 8), (4, 6, 6)),
    ("maxpool", lambda k: L.MaxPool2d(2), (4, 8, 8), (4, 4, 4)),
    ("maxpool_stride1", lambda k: L.MaxPool2d(3, stride=1), (4, 8, 8), (4, 6, 6)),
    ("maxpool_padded", lambda k: L.MaxPool2d(3, stride=2, padding=1), (2, 8, 8), (2, 4, 4)),
    ("avgpool", lambda k: L.AvgPool2d(2), (4, 8, 8), (4, 4, 4)),
    ("flatten", lambda k: L.Flatten(), (4, 4, 4), (64,)),
    ("reshape", lambda k: L.Reshape((4, 4, 4)), (64,), (4, 4, 4)),
    ("reshape_inferred", lambda k: L.Reshape((-1, 8)), (64,), (8, 8)),
    ("linear", lambda k: L.Linear(64, 10, key=k), (64,), (10,)),
    ("identity", lambda k: L.Identity(), (5,), (5,)),
    ("layernorm_tokens", lambda k: L.LayerNorm(8), (6, 8), (6, 8)),
    ("layernorm_image", lambda k: L.LayerNorm((4, 4)), (2, 4, 4), (2, 4, 4)),
    ("mhsa_causal", lambda k: L.MultiheadSelfAttention(2, 8, causal=True, key=k), (5, 8), (5, 8)),
    ("mhsa", lambda k: L.MultiheadSelfAttention(4, 8, causal=False, key=k), (5, 8), (5, 8)),
    ("attention_sub", lambda k: L.AttentionSublayer(8, 2, causal=True, key=k), (5, 8), (5, 8)),
    ("mlp_sub", lambda k: L.MLPSublayer(8, 16, key=k), (5, 8), (5, 8)),
    ("residual", lambda k: L.Residual(L.MLPSublayer(8, 16, key=k)), (5, 8), (5, 8)),
    ("block", lambda k: L.TransformerBlock(8, 2, 16, causal=True, key=k), (5, 8), (5, 8)),
    ("masked", lambda k: L.MaskedLinear(6, 4, np.eye(4, 6), key=k), (6,), (4,)),
    ("rnn_first", lambda k: L.RNNFirstStep(L.RNNCell(3, 5, key=k)), (3,), (5,)),
    (
        "sequential",
        lambda k: eqx.nn.Sequential([L.MaxPool2d(2), L.Flatten(), L.Linear(64, 10, key=k)]),
        (4, 8, 8),
        (10,),
    ),
]
IDS = [c[0] for c in CASES]


def random_input(shape: tuple[int, ...], batch: int | None = None) -> jax.Array:
    full = shape if batch is None else (batch, *shape)
    return jnp.asarray(np.random.default_rng(1).normal(size=full).astype(np.float32))


@functools.cache
def built() -> dict[str, eqx.Module]:
    """Every case's module, built once (initialisers compile per shape: slow on CPU)."""
    keys = jax.random.split(KEY, len(CASES))
    return {name: make(k) for (name, make, _, _), k in zip(CASES, keys, strict=True)}


@pytest.mark.parametrize(
    ("name", "in_shape", "out_shape"), [(c[0], *c[2:]) for c in CASES], ids=IDS
)
def test_each_layer_maps_one_example_to_the_documented_shape(name, in_shape, out_shape):
    out = eqx.filter_eval_shape(built()[name], jax.ShapeDtypeStruct(in_shape, jnp.float32))
    assert out.shape == out_shape
    assert out.dtype == jnp.float32


@eqx.filter_jit
def forward_and_energies(graph: pcn.PCGraph, inputs: dict[str, jax.Array]):
    values = pcn.forward_init(graph, inputs)
    return values, graph.node_energies(values)


def test_every_layer_as_an_edge_passes_the_graph_shape_check_and_starts_at_zero_energy():
    # one graph holding every case as its own x_name -> y_name pair: one compilation
    nodes, edges, inputs = [], [], {}
    for name, _, in_shape, out_shape in CASES:
        nodes += [pcn.Node(f"x_{name}", in_shape), pcn.Node(f"y_{name}", out_shape)]
        edges.append(pcn.Edge(built()[name], f"x_{name}", f"y_{name}"))
        inputs[f"x_{name}"] = random_input(in_shape, BATCH)
    graph = pcn.PCGraph(nodes, edges)  # runs the shape check of every edge

    values, energies = forward_and_energies(graph, inputs)

    for name, _, _, out_shape in CASES:
        y = values[f"y_{name}"]
        assert y.shape == (BATCH, *out_shape), name
        assert bool(jnp.all(jnp.isfinite(y))), name
        np.testing.assert_array_equal(energies[f"y_{name}"], np.zeros(BATCH), err_msg=name)


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
