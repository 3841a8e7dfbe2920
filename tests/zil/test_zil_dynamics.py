"""Algorithm 5's full dynamics (`simulate`), levelling (Algorithm 4) and errors of pcn.zil.

The efficient schedule of `zil.grad` must compute the very numbers of the full
dynamics (to rounding), levelling must be necessary (thesis Tables 3.1/3.2)
and every condition of Z-IL must matter (paper Appendix H ablations).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import pcn.zil as zil


@pytest.fixture(autouse=True)
def _numpy_broadcasting():
    """The functions differentiated here are user code, written with numpy's implicit
    rank promotion as users write it; Z-IL must take them as they are."""
    with jax.numpy_rank_promotion("allow"):
        yield


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def rel_err(a, b) -> float:
    """Largest leafwise max|a - b| / max|b|."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))) / max(np.max(np.abs(v)), 1e-300))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def normal(seed, *shape, scale=None):
    scale = 1.0 / math.sqrt(shape[0]) if scale is None else scale
    return scale * np.random.default_rng(seed).standard_normal(shape)


def bp_grad(fn, params, x, y):
    loss = lambda p: 0.5 * jnp.sum((fn(p, x) - y) ** 2)
    return jax.jit(jax.grad(loss))(params)


def mlp(p, x):
    for i, (w, b) in enumerate(p):
        x = x @ w + b
        if i < len(p) - 1:
            x = jnp.tanh(x) if i % 2 else jax.nn.relu(x)
    return x


def residual(p, x):
    """h = x W0; two residual blocks h + W2 relu(W1 h): h is read at several depths."""
    h = x @ p["w0"]
    for w1, w2 in p["blocks"]:
        h = h + jnp.tanh(jnp.tanh(h @ w1) @ w2)
    return h @ p["out"]


def scan_rnn(p, xs):
    def cell(h, x_t):
        return jnp.tanh(h @ p["w"] + x_t @ p["u"]), None

    h, _ = lax.scan(cell, jnp.zeros((xs.shape[1], 4)), xs)
    return h @ p["v"]


def cnn(p, x):
    dn = ("NHWC", "HWIO", "NHWC")
    h = jax.nn.relu(lax.conv_general_dilated(x, p["k"], (1, 1), "SAME", dimension_numbers=dn))
    h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return h.reshape(h.shape[0], -1) @ p["d"]


def attention(p, x):
    """Causal single-head self-attention with layer norm and a residual connection."""
    mu = x.mean(-1, keepdims=True)
    h = (x - mu) * lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * p["g"]
    q, k, v = jnp.split(h @ p["qkv"], 3, axis=-1)
    mask = jnp.tril(jnp.ones((x.shape[1], x.shape[1]), dtype=bool))
    att = jax.nn.softmax(jnp.where(mask, q @ k.swapaxes(1, 2) / 2.0, -1e9), axis=-1)
    return x + jax.nn.gelu(att @ v) @ p["o"]


def thesis_toy(z, s):
    """Thesis Eq. 3.21: G(s, z) = s z3 + s z3 z2 z1, one skip connection."""
    v = s * z["z3"]
    return v + v * z["z2"] * z["z1"]


MODELS = {
    "mlp": (
        mlp,
        [
            (normal(0, 3, 5), normal(1, 5, scale=0.1)),
            (normal(2, 5, 4), normal(3, 4)),
            (normal(4, 4, 2), normal(5, 2)),
        ],
        normal(6, 4, 3, scale=1.0),
    ),
    "residual": (
        residual,
        {
            "w0": normal(7, 3, 4),
            "out": normal(8, 4, 2),
            "blocks": [(normal(9, 4, 4), normal(10, 4, 4)), (normal(11, 4, 4), normal(12, 4, 4))],
        },
        normal(13, 4, 3, scale=1.0),
    ),
    "scan_rnn": (
        scan_rnn,
        {"w": normal(14, 4, 4), "u": normal(15, 3, 4), "v": normal(16, 4, 2)},
        normal(17, 4, 3, 3, scale=1.0),
    ),
    "cnn": (
        cnn,
        {"k": normal(18, 3, 3, 2, 3, scale=0.3), "d": normal(19, 12, 2)},
        normal(20, 2, 4, 4, 2, scale=1.0),
    ),
    "attention": (
        attention,
        {"g": 1.0 + normal(22, 4, scale=0.1), "qkv": normal(23, 4, 12), "o": normal(24, 4, 4)},
        normal(25, 2, 3, 4, scale=1.0),
    ),
    "thesis_toy": (
        thesis_toy,
        {f"z{i}": np.float64(0.5 + 0.3 * i) for i in (1, 2, 3)},
        np.float64(1.5),
    ),
}


def problem(name):
    fn, params, x = MODELS[name]
    out = jax.eval_shape(fn, params, x)
    y = np.random.default_rng(21).standard_normal(out.shape)
    return fn, params, x, y


@pytest.mark.parametrize("name", list(MODELS))
def test_the_full_dynamics_with_default_settings_equal_the_efficient_schedule(name):
    fn, params, x, y = problem(name)
    fast = zil.grad(fn)(params, x, y)
    full = zil.simulate(fn)(params, x, y)
    assert rel_err(full, fast) <= 1e-12
    assert rel_err(fast, bp_grad(fn, params, x, y)) <= 1e-12


@pytest.mark.parametrize("name", ["residual", "attention", "thesis_toy"])
def test_without_identity_vertices_z_il_misses_backprop_and_with_them_it_is_exact(name):
    fn, params, x, y = problem(name)
    bp = bp_grad(fn, params, x, y)
    info = zil.graph_info(fn, params, x)
    assert not info.is_levelled and info.num_identities > 0
    # Unlevelled, errors reach a vertex at several steps; in deep graphs the gamma = 1
    # dynamics then even diverge (nan), which also counts as missing backprop.
    assert not rel_err(zil.grad(fn, levelled=False)(params, x, y), bp) <= 1e-6
    assert not rel_err(zil.simulate(fn, levelled=False)(params, x, y), bp) <= 1e-6
    assert rel_err(zil.grad(fn)(params, x, y), bp) <= 1e-12


def test_the_thesis_skip_example_gets_eq_3_24_and_needs_two_identities_on_the_skip_edge():
    fn, z, s, y = problem("thesis_toy")
    info = zil.graph_info(fn, z, s)
    # out <- v*z2*z1 (3 levels) and out <- v (1 level): the short edge gets 2 identities.
    assert (info.depth, info.num_identities, info.num_vertices) == (4, 2, 4)
    delta = fn(z, s) - y
    got = zil.grad(fn)(z, s, y)
    np.testing.assert_allclose(got["z3"], delta * (z["z1"] * z["z2"] + 1) * s, rtol=1e-14)


def test_levelled_graphs_need_no_identities():
    fn, params, x, _ = problem("mlp")
    info = zil.graph_info(fn, params, x)
    assert info.is_levelled and info.num_identities == 0
    assert info.num_params == 6 and info.primitives["dot_general"] == 3
    # Levels per layer: add, dot | broadcast(b), W | activation: W1 sits at level 3 * 3 - 1.
    assert info.depth == 8


@pytest.mark.parametrize("name", ["mlp", "residual", "scan_rnn", "cnn"])
@pytest.mark.parametrize(
    "ablation",
    [{"gamma": 0.5}, {"forward_init": False}, {"level_scheduled": False}],
    ids=["gamma=0.5", "no-forward-init", "no-level-scheduled-update"],
)
def test_each_condition_of_z_il_is_needed_for_exact_backprop(name, ablation):
    fn, params, x, y = problem(name)
    err = rel_err(zil.simulate(fn, **ablation)(params, x, y), bp_grad(fn, params, x, y))
    # gamma = 1 from zero values can diverge (identity copies of weights start at 0): nan/inf.
    assert not err <= 1e-6, err


def test_gamma_scales_the_error_front_by_gamma_per_level():
    """With gamma != 1 the error reaching level k is gamma^(k-1) times backprop's (Eq. 3.40)."""
    fn, z, s, y = problem("thesis_toy")
    bp = bp_grad(fn, z, s, y)
    got = zil.simulate(fn, gamma=0.5)(z, s, y)
    # z1 is read by the vertex at level 1, whose error is eps_out moved once by gamma.
    np.testing.assert_allclose(got["z1"], 0.5 * bp["z1"], rtol=1e-12)


def test_a_while_loop_that_depends_on_the_parameters_is_refused_by_name():
    def fn(p, x):
        def body(c):
            return c[0] * 0.5, c[1] + 1

        h, _ = lax.while_loop(lambda c: jnp.sum(c[0]) > 1.0, body, (x @ p, 0))
        return h

    with pytest.raises(ValueError, match=r"'while' at equation \d+"):
        zil.grad(fn)(np.ones((3, 2)), np.ones((4, 3)), np.zeros((4, 2)))


def test_a_pure_callback_on_the_parameters_is_refused_by_name():
    def fn(p, x):
        h = x @ p
        return jax.pure_callback(np.tanh, jax.ShapeDtypeStruct(h.shape, h.dtype), h)

    with pytest.raises(ValueError, match="'pure_callback'"):
        zil.grad(fn)(np.ones((3, 2)), np.ones((4, 3)), np.zeros((4, 2)))


def test_loops_and_callbacks_that_do_not_touch_the_parameters_are_constants():
    def fn(p, x):
        scale = lax.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, jnp.sum(x) ** 2 + 1.0)
        shift = jax.pure_callback(np.cos, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        return jnp.tanh((x + shift) @ p) * scale

    p, x, y = normal(30, 3, 2), normal(31, 4, 3, scale=1.0), normal(32, 4, 2, scale=1.0)
    assert rel_err(zil.grad(fn)(p, x, y), bp_grad(fn, p, x, y)) <= 1e-12


def test_a_target_with_the_wrong_structure_or_shape_is_refused():
    fn, params, x, y = problem("mlp")
    with pytest.raises(ValueError, match="structure"):
        zil.grad(fn)(params, x, [y])
    with pytest.raises(ValueError, match="shape"):
        zil.grad(fn)(params, x, y[:1])
