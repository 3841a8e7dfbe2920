"""`pcn.layers.Conv2d` computes channels-last (XLA:CPU runs channels-first convolutions
inside loops through a slow generic path) and equals `eqx.nn.Conv2d` in every option."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pcn
from pcn import layers as L

OPTIONS = [
    dict(padding="SAME"),
    dict(padding=0),
    dict(stride=2, padding=1),
    dict(padding="VALID", dilation=2),
    dict(padding=((1, 0), (2, 1))),
    dict(padding=1, groups=2),
    dict(padding=1, use_bias=False),
    dict(padding=1, padding_mode="CIRCULAR"),
    dict(padding=1, padding_mode="REFLECT"),
]


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_conv2d_equals_equinox_conv2d_in_float64(options):
    with jax.enable_x64(True):
        key = jax.random.key(0)
        ours = L.Conv2d(4, 6, 3, key=key, dtype=jnp.float64, **options)
        theirs = eqx.nn.Conv2d(4, 6, 3, key=key, dtype=jnp.float64, **options)
        x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 9, 8)))
        np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
        grad = jax.grad(lambda m, x: jnp.sum(jnp.sin(m(x))), argnums=(0, 1))
        (g_ours, gx_ours), (g_theirs, gx_theirs) = grad(ours, x), grad(theirs, x)
        np.testing.assert_allclose(gx_ours, gx_theirs, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g_ours.weight, g_theirs.weight, rtol=1e-12, atol=1e-12)


def test_conv2d_runs_channels_last_inside_a_relaxation():
    # what keeps XLA:CPU on its fast convolution inside the relaxation's loop
    graph = pcn.cnn((3, 8, 8), channels=(4, 8), hidden=16, classes=10, key=jax.random.key(0))
    batch = {"x": jnp.zeros((2, 3, 8, 8)), "y": jnp.zeros((2, 10)).at[:, 0].set(1.0)}
    values = pcn.forward_init(graph, batch)

    def relax(values):
        return pcn.infer(graph, values, clamp={"x": True, "y": True}, stop=3, gamma=0.1).values

    convs = _convs(jax.make_jaxpr(relax)(values))
    specs = [eqn.params["dimension_numbers"].lhs_spec for eqn in convs]
    # (batch, channel, spatial...) positions of the input: channels last is (0, 3, 1, 2)
    assert specs and all(spec == (0, 3, 1, 2) for spec in specs), specs


def _convs(closed):
    """Every convolution in a (closed) jaxpr, inside loops and other sub-programs too."""
    jaxpr = getattr(closed, "jaxpr", closed)
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if hasattr(sub, "eqns") or hasattr(sub, "jaxpr"):
                    yield from _convs(sub)


def test_conv2d_names_a_batched_input():
    conv = L.Conv2d(3, 4, 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"one example of shape \(channels, height, width\)"):
        conv(jnp.zeros((2, 3, 8, 8)))
