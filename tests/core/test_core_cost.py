"""SMMs measured from the compiled training step equal the Faster-PC paper's formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn.cost import sequential_matmuls, step_smm


def _mlp(layers: int) -> tuple[pcn.PCGraph, dict[str, jax.Array]]:
    """An MLP of `layers` weight layers and a batch for it."""
    graph = pcn.mlp([6, *[7] * (layers - 1), 3], key=jax.random.key(layers))
    rng = np.random.default_rng(layers)
    x = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)
    return graph, {"x": x, "y": jax.nn.one_hot(jnp.arange(4) % 3, 3)}


def _smm(graph, batch, algorithm) -> int:
    step = pcn.make_train_step(graph, algorithm, optax.sgd(0.1))
    return step_smm(step, step.init(graph), batch)


@pytest.mark.parametrize("layers", [2, 3, 5])
def test_bp_takes_2l_minus_1_sequential_products(layers):
    graph, batch = _mlp(layers)
    assert _smm(graph, batch, pcn.BP()) == 2 * layers - 1


@pytest.mark.parametrize(("layers", "fuse"), [(2, False), (3, False), (5, False), (3, True),
                                             (5, True)])  # fmt: skip
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_pc_from_the_forward_pass_takes_2t_plus_l(layers, steps, fuse):
    graph, batch = _mlp(layers)
    algorithm = pcn.IL(steps, gamma=0.1, fuse=fuse)
    assert _smm(graph, batch, algorithm) == 2 * steps + layers  # Eq. 6: 3L at T = L


@pytest.mark.parametrize("fuse", [False, True])
def test_an_unrolled_relaxation_takes_the_products_of_the_loop(fuse):
    graph, batch = _mlp(3)
    looped = pcn.IL(4, gamma=0.1, fuse=fuse)
    unrolled = pcn.IL(pcn.FixedSteps(4, unroll=True), gamma=0.1, fuse=fuse)
    assert _smm(graph, batch, unrolled) == _smm(graph, batch, looped)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_the_fused_relaxation_of_a_single_hidden_layer_takes_one_product_per_step(steps):
    graph, batch = _mlp(2)
    assert _smm(graph, batch, pcn.IL(steps, gamma=0.1)) == steps + 2


@pytest.mark.parametrize("layers", [2, 5])
@pytest.mark.parametrize("steps", [1, 3])
def test_pc_from_zero_takes_2t_plus_the_prediction_at_the_relaxed_values(layers, steps):
    graph, batch = _mlp(layers)
    algorithm = pcn.IL(steps, gamma=0.1, fuse=False, init=pcn.zeros_init)
    assert _smm(graph, batch, algorithm) == 2 * steps + 1


def test_a_chain_is_counted_through_nested_programs_scans_and_conds():
    w = jnp.eye(3)

    def chained(x):
        x = jax.jit(lambda v: v @ w)(x)  # 1
        x = jax.lax.fori_loop(0, 4, lambda _, v: jnp.tanh(v @ w), x)  # 4 more (a scan)
        x = jax.lax.cond(x.sum() > 0, lambda v: v @ w @ w, lambda v: v @ w, x)  # 2 at most
        parallel = [x @ w for _ in range(5)]  # side by side: 1
        return sum(parallel)

    assert sequential_matmuls(chained, jnp.ones((2, 3))) == 8


def test_a_relaxation_stopped_by_a_tolerance_is_refused_naming_the_fix():
    graph, batch = _mlp(2)
    algorithm = pcn.IL(pcn.Tolerance(1e-4, 50), gamma=0.1, fuse=False)
    with pytest.raises(ValueError, match=r"while loop.*pcn\.FixedSteps\(T\)"):
        _smm(graph, batch, algorithm)


def test_convolutions_count_as_products():
    kernel = jnp.ones((2, 2, 3, 3))  # (out, in, h, w)

    def two_convs(x):
        conv = lambda v: jax.lax.conv_general_dilated(v, kernel, (1, 1), "SAME")  # noqa: E731
        return conv(jax.nn.relu(conv(x))) + x  # the skip adds nothing

    assert sequential_matmuls(two_convs, jnp.ones((1, 2, 5, 5))) == 2
