"""The chapter-3 architectures as PC graphs: Z-IL equals backprop once levelled, and
only the graphs with skips (ResNet, transformer) need levelling (thesis Tables 3.1, 3.2)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import pcn


def _max_abs_diff(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _bp(graph, batch):
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    return jax.grad(lambda p: pcn.bp_loss(eqx.combine(p, static), batch))(params)


def _case(name):
    k = jax.random.key(0)
    y = jax.nn.one_hot(jnp.arange(4) % 3, 3)
    if name == "cnn":
        g = pcn.cnn((1, 8, 8), channels=(3, 4), hidden=6, classes=3, key=k)
        return g, {"x": jax.random.normal(k, (4, 1, 8, 8)), "y": y}
    if name == "rnn":
        g = pcn.rnn(2, 5, 3, steps=4, key=k)
        return g, pcn.rnn_batch(g, jax.random.normal(k, (4, 4, 2)), y)
    if name == "resnet":
        g = pcn.resnet((6, 5, 3), blocks=2, key=k)
        return g, {"x": jax.random.normal(k, (4, 6)), "y": y}
    g = pcn.transformer(4, 8, 3, heads=2, key=k)
    return g, {"x": jax.random.normal(k, (4, 4, 8)), "y": y}


@pytest.mark.parametrize(
    ("name", "has_skips"),
    [("cnn", False), ("rnn", False), ("resnet", True), ("transformer", True)],
)
def test_zil_equals_backprop_after_levelling_and_only_skips_need_it(name, has_skips):
    with jax.enable_x64(True):
        graph, batch = _case(name)
        assert pcn.is_levelled(graph, ["y"]) is not has_skips
        bp = _bp(graph, batch)
        unlevelled, _, _ = pcn.zil_gradients(graph, batch, faithful=True)
        divergence = _max_abs_diff(unlevelled, bp)
        assert (divergence > 1e-3) if has_skips else (divergence < 1e-12)
        levelled = pcn.level_graph(graph, ["y"])
        zil, _, _ = pcn.zil_gradients(levelled, batch)
        assert _max_abs_diff(zil, _bp(levelled, batch)) < 1e-12
        assert _max_abs_diff(_bp(levelled, batch), bp) < 1e-12  # same function


def test_rnn_batch_checks_the_sequence_length():
    graph = pcn.rnn(2, 3, 2, steps=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"\(batch, 4, input_size\)"):
        pcn.rnn_batch(graph, jnp.zeros((2, 3, 2)))
