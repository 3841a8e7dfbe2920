"""pcn.zil.grad equals jax.grad of 1/2 sum((fn(params, x) - y)^2) on any JAX function (Theorem 5).

Every model runs in float64 and is compared leaf by leaf: relative error
max|zil - bp| / max|bp| <= 1e-10.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import pcn.zil as zil

TOL = 1e-10


@pytest.fixture(autouse=True)
def _numpy_broadcasting():
    """The functions differentiated here are user code, written with numpy's implicit
    rank promotion as users write it; Z-IL must take them as they are."""
    with jax.numpy_rank_promotion("allow"):
        yield


def rel_err(a, b) -> float:
    """Largest leafwise max|a - b| / max|b| (structures must match; numpy, no compiles)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    errs = [
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))) / max(np.max(np.abs(v)), 1e-300))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        if np.size(v)
    ]
    return max(errs, default=0.0)


def bp_grad(fn, params, x, y):
    """Reference: jax.grad of the loss Z-IL reproduces."""

    def loss(p):
        out = fn(p, x)
        return 0.5 * sum(
            jnp.sum((o - t) ** 2)
            for o, t in zip(jax.tree.leaves(out), jax.tree.leaves(y), strict=True)
        )

    return jax.jit(jax.grad(loss))(params)


def normal(key, *shape, scale=None):
    """A float64 numpy array (numpy keeps the tests free of eager JAX compiles)."""
    scale = 1.0 / math.sqrt(shape[0]) if scale is None else scale
    return scale * np.random.default_rng(key).standard_normal(shape)


def split(seed, n):
    """n distinct integer seeds derived from `seed`."""
    return [int(s) for s in np.random.default_rng(seed).integers(2**31, size=n)]


def check(fn, params, x, *, tol=TOL):
    """Draw a target like fn's output and compare zil.grad with jax.grad; returns the error."""
    out = jax.eval_shape(fn, params, x)
    rng = np.random.default_rng(99)
    y = jax.tree.map(lambda o: rng.standard_normal(o.shape).astype(o.dtype), out)
    ref = bp_grad(fn, params, x, y)
    got = zil.grad(fn)(params, x, y)
    err = rel_err(got, ref)
    assert err <= tol, err
    return err


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "gelu_exact": functools.partial(jax.nn.gelu, approximate=False),
    "sigmoid": jax.nn.sigmoid,
}


@pytest.mark.parametrize("seed", range(5))
def test_random_mlps_get_exactly_the_backprop_gradient(seed):
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(1, 7, size=int(rng.integers(2, 6)))]
    acts = [str(a) for a in rng.choice(list(ACTIVATIONS), size=len(widths) - 1)]
    keys = split(seed, 2 * len(widths))
    params = [
        {"w": normal(keys[2 * i], a, b), "b": normal(keys[2 * i + 1], b, scale=0.1)}
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=False))
    ]

    def mlp(p, x):
        for i, layer in enumerate(p):
            x = x @ layer["w"] + layer["b"]
            if i < len(p) - 1:
                x = ACTIVATIONS[acts[i]](x)
        return x

    check(mlp, params, normal(keys[-1], 4, widths[0], scale=1.0))


def test_a_small_cnn_with_max_and_average_pooling_gets_the_backprop_gradient():
    k = split(1, 5)
    params = {
        "c1": normal(k[0], 3, 3, 2, 4, scale=0.3),
        "b1": normal(k[1], 4, scale=0.1),
        "c2": normal(k[2], 3, 3, 4, 3, scale=0.3),
        "d": normal(k[3], 12, 5),
    }
    dn = ("NHWC", "HWIO", "NHWC")

    def cnn(p, x):
        h = lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME", dimension_numbers=dn)
        h = jax.nn.relu(h + p["b1"])
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = lax.conv_general_dilated(h, p["c2"], (1, 1), "SAME", dimension_numbers=dn)
        h = jnp.tanh(h)
        h = lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0
        return h.reshape(h.shape[0], -1) @ p["d"]

    check(cnn, params, normal(k[4], 2, 8, 8, 2, scale=1.0))


def _rnn_params(key, n_in=3, n_h=5, n_out=2):
    k = split(key, 4)
    return {
        "u": normal(k[0], n_in, n_h),
        "w": normal(k[1], n_h, n_h),
        "b": normal(k[2], n_h, scale=0.1),
        "v": normal(k[3], n_h, n_out),
    }


def test_an_rnn_written_as_a_python_loop_gets_the_backprop_gradient():
    params = _rnn_params(2)

    def rnn(p, xs):
        h = jnp.zeros((xs.shape[1], p["w"].shape[0]))
        for t in range(xs.shape[0]):
            h = jnp.tanh(h @ p["w"] + xs[t] @ p["u"] + p["b"])
        return h @ p["v"]

    check(rnn, params, normal(3, 5, 4, 3, scale=1.0))


@pytest.mark.parametrize("reverse", [False, True])
def test_an_rnn_written_with_lax_scan_and_shared_weights_gets_the_backprop_gradient(reverse):
    params = _rnn_params(4)

    def rnn(p, xs):
        def cell(h, x_t):
            h = jnp.tanh(h @ p["w"] + x_t @ p["u"] + p["b"])
            return h, h @ p["v"]

        h0 = jnp.zeros((xs.shape[1], p["w"].shape[0]))
        h, ys = lax.scan(cell, h0, xs, reverse=reverse)
        return {"last": h, "outputs": ys}

    check(rnn, params, normal(5, 4, 3, 3, scale=1.0))


def test_a_residual_block_gets_the_backprop_gradient():
    k = split(6, 5)
    params = {
        "inp": normal(k[0], 3, 6),
        "w1": normal(k[1], 6, 6),
        "w2": normal(k[2], 6, 6),
        "out": normal(k[3], 6, 2),
    }

    def resnet(p, x):
        h = x @ p["inp"]
        for _ in range(2):  # the same block twice: weights shared across depths
            h = h + jax.nn.relu(jax.nn.relu(h) @ p["w1"]) @ p["w2"]
        return h @ p["out"]

    check(resnet, params, normal(k[4], 4, 3, scale=1.0))


def layer_norm(h, scale, bias, eps=1e-5):
    mu = h.mean(-1, keepdims=True)
    var = ((h - mu) ** 2).mean(-1, keepdims=True)
    return (h - mu) * lax.rsqrt(var + eps) * scale + bias


def transformer_block(p, x, n_heads=2):
    """Pre-norm block: causal multi-head self-attention and a gelu MLP, both residual."""
    b, t, d = x.shape
    h = layer_norm(x, p["ln1"]["g"], p["ln1"]["b"])
    q, k, v = jnp.split(h @ p["qkv"], 3, axis=-1)
    split = lambda a: a.reshape(b, t, n_heads, d // n_heads).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d // n_heads)
    mask = jnp.tril(jnp.ones((t, t), dtype=bool))
    att = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
    o = jnp.einsum("bhqk,bhkd->bhqd", att, v).transpose(0, 2, 1, 3).reshape(b, t, d)
    x = x + o @ p["proj"]
    h = layer_norm(x, p["ln2"]["g"], p["ln2"]["b"])
    return x + jax.nn.gelu(h @ p["fc1"] + p["b1"]) @ p["fc2"]


def transformer_params(key, d=8, hidden=16):
    k = split(key, 8)
    return {
        "ln1": {"g": 1.0 + normal(k[0], d, scale=0.1), "b": normal(k[1], d, scale=0.1)},
        "qkv": normal(k[2], d, 3 * d),
        "proj": normal(k[3], d, d),
        "ln2": {"g": 1.0 + normal(k[4], d, scale=0.1), "b": normal(k[5], d, scale=0.1)},
        "fc1": normal(k[6], d, hidden),
        "b1": np.zeros(hidden),
        "fc2": normal(k[7], hidden, d),
    }


def test_a_transformer_block_with_causal_attention_gets_the_backprop_gradient():
    params = transformer_params(7)
    check(transformer_block, params, normal(8, 2, 4, 8, scale=1.0))


def test_nested_jit_custom_jvp_custom_vjp_and_checkpoint_are_differentiated_exactly():
    @jax.custom_vjp
    def clip_grad(a):
        return jnp.sin(a)

    clip_grad.defvjp(lambda a: (jnp.sin(a), a), lambda a, g: (jnp.clip(g * jnp.cos(a), -1, 1),))

    @jax.jit
    def inner(a, w):
        return jax.nn.relu(a @ w) + jax.nn.gelu(a @ w)

    def fn(p, x):
        h = inner(x, p[0])
        h = jax.checkpoint(lambda a: jnp.tanh(a) * a)(h)
        h = clip_grad(jax.nn.softplus(h) @ p[1])
        return jax.jit(lambda a: jax.nn.silu(a) @ p[2])(h)

    k = split(9, 4)
    params = (normal(k[0], 3, 5), normal(k[1], 5, 4), normal(k[2], 4, 2))
    check(fn, params, normal(k[3], 6, 3, scale=1.0))


def test_nested_pytree_parameters_and_outputs_keep_their_structure():
    k = split(10, 5)
    params = {
        "enc": [{"w": normal(k[0], 3, 4)}, (normal(k[1], 4),)],
        "dec": {"w": normal(k[2], 4, 2), "unused": normal(k[3], 7)},
        "none": None,
    }

    def fn(p, x):
        h = jnp.tanh(x["a"] @ p["enc"][0]["w"] + p["enc"][1][0])
        return {"y": h @ p["dec"]["w"], "h": h, "bias": p["enc"][1][0], "const": x["a"] * 2}

    x = {"a": normal(k[4], 5, 3, scale=1.0)}
    check(fn, params, x)
    zeros = jax.tree.map(lambda o: np.zeros(o.shape), jax.eval_shape(fn, params, x))
    got = zil.grad(fn)(params, x, zeros)
    assert jax.tree.structure(got) == jax.tree.structure(params)
    assert float(jnp.max(jnp.abs(got["dec"]["unused"]))) == 0.0


def random_dag(seed, n_nodes=7, width=3, n_weights=3):
    """A random DAG of tanh/relu vertices with skip edges and weights shared at several depths."""
    rng = np.random.default_rng(seed)
    plan = []
    for i in range(1, n_nodes + 1):
        preds = sorted(set(rng.choice(i, size=int(rng.integers(1, min(i, 3) + 1)), replace=False)))
        plan.append([(int(j), int(rng.integers(n_weights))) for j in preds])
    acts = [jnp.tanh if a else jax.nn.relu for a in rng.integers(2, size=n_nodes)]
    outputs = sorted({n_nodes, int(rng.integers(1, n_nodes + 1))})

    def fn(p, x):
        nodes = [x]
        for i, preds in enumerate(plan):
            pre = sum(nodes[j] @ p["w"][k] for j, k in preds) + p["b"][i % 2]
            nodes.append(acts[i](pre))
        return [nodes[o] for o in outputs]

    keys = split(seed, n_weights + 2)
    params = {
        "w": [normal(keys[k], width, width, scale=0.8) for k in range(n_weights)],
        "b": [normal(keys[-2], width, scale=0.3), normal(keys[-1], width, scale=0.3)],
    }
    return fn, params


@pytest.mark.parametrize("seed", range(4))
def test_random_graphs_with_skip_connections_and_shared_parameters_match_backprop(seed):
    fn, params = random_dag(seed)
    check(fn, params, normal(100 + seed, 4, 3, scale=1.0))


def test_grad_compiles_under_an_outer_jit_and_reuses_the_graph_for_new_values():
    params = _rnn_params(11)

    def fn(p, x):
        return jnp.tanh(x @ p["u"] + p["b"]) @ p["w"] @ p["v"]

    step = jax.jit(zil.grad(fn))
    for i in range(2):
        x = normal(20 + i, 4, 3, scale=1.0)
        y = normal(30 + i, 4, 2, scale=1.0)
        assert rel_err(step(params, x, y), bp_grad(fn, params, x, y)) <= TOL
    assert step._cache_size() == 1


def test_float32_models_match_backprop_to_single_precision():
    with jax.enable_x64(False):
        params = transformer_params(12)
        params = jax.tree.map(lambda a: a.astype(np.float32), params)
        x = normal(13, 2, 4, 8, scale=1.0).astype(np.float32)
        check(transformer_block, params, x, tol=1e-5)


@jax.custom_vjp
def _two_outputs(a, b):
    return a * b, a + b


_two_outputs.defvjp(
    lambda a, b: ((a * b, a + b), (a, b)),
    lambda r, g: (g[0] * r[1] + g[1], g[0] * r[0] + g[1]),
)


def _nested_scans(p, xs):
    def outer(h, x):
        def inner(c, _):
            return jax.jit(lambda c: jnp.tanh(c @ p + x))(c), None

        h, _ = lax.scan(inner, h, None, length=2)
        return h, h.sum(-1)

    h, ys = lax.scan(outer, jnp.zeros((3, 4)), xs)
    return ys + h.sum()


OTHER = {
    "embedding lookup (gather)": (
        lambda p, ids: jnp.tanh(p["emb"][ids] @ p["w"]),
        {"emb": normal(40, 10, 5, scale=1.0), "w": normal(41, 5, 4)},
        np.array([[1, 3, 3], [0, 9, 2]]),
    ),
    "lax.cond as one vertex": (
        lambda p, x: lax.cond(x.sum() > 0, lambda a: jnp.sin(a @ p), lambda a: jnp.cos(a @ p), x),
        normal(42, 5, 4),
        normal(43, 3, 5, scale=1.0),
    ),
    "sort, cumsum, top_k and argmax masks": (
        lambda p, x: (
            jnp.sort(jnp.cumsum(x @ p, axis=1), axis=1)[:, :2]
            + lax.top_k(x @ p, 2)[0] * jax.nn.one_hot(jnp.argmax(x @ p, -1), 4)[:, :2]
        ),
        normal(44, 5, 4),
        normal(45, 3, 5, scale=1.0),
    ),
    "fori_loop with static bounds": (
        lambda p, x: lax.fori_loop(0, 3, lambda i, h: jnp.tanh(h @ p), x),
        normal(46, 5, 5),
        normal(47, 3, 5, scale=1.0),
    ),
    "nested scans with a jit inside": (_nested_scans, normal(48, 4, 4), normal(49, 3, 3, 4)),
    "custom_vjp with two outputs": (
        lambda p, x: sum(_two_outputs(x @ p, jnp.tanh(x @ p))),
        normal(50, 5, 4),
        normal(51, 3, 5, scale=1.0),
    ),
    "outputs that feed other outputs, and a returned parameter": (
        lambda p, x: [jnp.tanh(x @ p["w"]), jnp.tanh(x @ p["w"]) ** 2, p["a"]],
        {"w": normal(52, 5, 4), "a": normal(53, 3)},
        normal(54, 3, 5, scale=1.0),
    ),
}


@pytest.mark.parametrize("name", list(OTHER))
def test_other_primitives_and_control_flow_get_the_backprop_gradient(name):
    fn, params, x = OTHER[name]
    check(fn, params, x)


@pytest.mark.parametrize("cast", [jnp.int32, bool])
def test_z_il_refuses_a_non_float_output_as_jax_grad_does(cast):
    params, x, y = {"w": jnp.ones((2, 1))}, jnp.ones((1, 2)), jnp.ones((1, 1))

    def fn(p, inputs):
        return (inputs @ p["w"]).astype(cast)

    with pytest.raises(TypeError):
        jax.grad(lambda p: jnp.sum(fn(p, x)))(params)
    with pytest.raises(TypeError, match="floating-point outputs, as jax.grad does.*astype"):
        zil.grad(fn)(params, x, y)


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey], ids=["typed", "raw"])
def test_dropout_with_a_prng_key_in_the_input_or_closed_over_gets_the_backprop_gradient(
    make_key,
):
    def dropout_mlp(p, inputs):
        data, key = inputs
        h = jnp.tanh(data @ p["w1"])
        keep = jax.random.bernoulli(key, 0.5, h.shape)
        return jnp.where(keep, h / 0.5, 0.0) @ p["w2"]

    params = {"w1": normal(1, 3, 6), "w2": normal(2, 6, 2)}
    data = normal(3, 4, 3)
    for seed in range(2):  # a new key is a new mask, as for jax.grad
        key = make_key(seed)
        check(dropout_mlp, params, (data, key))
        check(lambda p, d, key=key: dropout_mlp(p, (d, key)), params, data)  # closed over
