"""The update rules of thesis chapter 2, derived by hand and compared with the library.

Eq. 2.1  mu_l = W_l f(x_{l-1}) + b_l                (activation_site="parent", the thesis)
         mu_l = f(W_l x_{l-1} + b_l)                (activation_site="prediction")
Eq. 2.2  eps_l = x_l - mu_l
Eq. 2.3  E = 1/2 sum_l ||eps_l||^2
Eq. 2.4  dx_l = gamma (-eps_l + f'(x_l) W_{l+1}^T eps_{l+1})          (parent convention)
Eq. 2.5  dW_l = alpha eps_l f(x_{l-1})^T                               (parent convention)

Layers are indexed from the input here (x_0 = input, x_L = output), the reverse of the
thesis; the library does not put the activation on the input (data) node, so
`f(x_0)` reads `x_0`. Every expectation below is computed with numpy from the weights
pulled out of the graph, never from the library's own maths.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
from pcn._fusion import plan_fusion

SIZES = (3, 4, 5, 2)
NAMES = ("x", "h1", "h2", "y")
BATCH = 5


def f(a: np.ndarray) -> np.ndarray:
    return np.tanh(a)


def f_prime(a: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(a) ** 2


def chain_weights(graph: pcn.PCGraph, names=NAMES) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W_l, b_l) of the edge into each non-root layer, as numpy arrays (b = 0 if none)."""
    params = []
    for name in names[1:]:
        (edge,) = graph.incoming(name)
        module = edge.module
        linear = module.layers[-1] if isinstance(module, eqx.nn.Sequential) else module
        w = np.asarray(linear.weight)
        b = np.zeros(w.shape[0]) if linear.bias is None else np.asarray(linear.bias)
        params.append((w, b))
    return params


def pre_activations(params, xs, site):
    """a_l: the argument of the (possibly) nonlinear part of mu_l, for l = 1..L."""
    out = [None]
    for layer, (w, b) in enumerate(params, start=1):
        parent = xs[layer - 1]
        if site == "parent" and layer > 1:
            parent = f(parent)  # the parent's nonlinearity (not applied to the root node)
        out.append(parent @ w.T + b)
    return out


def predictions(params, xs, site):
    """mu_l of Eq. 2.1 (the last layer has the identity activation)."""
    a = pre_activations(params, xs, site)
    last = len(xs) - 1
    return [None] + [
        f(a[layer]) if site == "prediction" and layer < last else a[layer]
        for layer in range(1, len(xs))
    ]


def errors(params, xs, site):
    """eps_l = x_l - mu_l (Eq. 2.2), l = 1..L; the root x_0 has no prediction."""
    mu = predictions(params, xs, site)
    return [None] + [xs[layer] - mu[layer] for layer in range(1, len(xs))]


def energy_per_example(params, xs, site):
    """Eq. 2.3 per example."""
    return sum(0.5 * np.sum(e**2, axis=1) for e in errors(params, xs, site)[1:])


def energy_gradient(params, xs, site):
    """dE/dx_l for l = 0..L, written out by hand (the bracket of Eq. 2.4, negated)."""
    eps = errors(params, xs, site)
    a = pre_activations(params, xs, site)
    last = len(xs) - 1
    grads = []
    for layer in range(last + 1):
        g = np.zeros_like(xs[0]) if layer == 0 else eps[layer].copy()
        if layer < last:
            w_child = params[layer][0]
            if site == "parent" and layer > 0:
                # Eq. 2.4: f'(x_l) * W_{l+1}^T eps_{l+1}
                g = g - f_prime(xs[layer]) * (eps[layer + 1] @ w_child)
            else:
                # mu_{l+1} = f(W x_l + b) (or W x_l + b): the chain rule goes through f'(a)
                child_is_last = layer + 1 == last
                linear = child_is_last or site == "parent"
                slope = 1.0 if linear else f_prime(a[layer + 1])
                g = g - (eps[layer + 1] * slope) @ w_child
        grads.append(g)
    return grads


def relax_by_hand(params, xs, site, gamma, steps, free):
    """`steps` steps of Eq. 2.4 on the layers in `free`; the final values and the mean
    energy per example before each step."""
    xs = [v.copy() for v in xs]
    trace = []
    for _ in range(steps):
        trace.append(energy_per_example(params, xs, site).mean())
        grads = energy_gradient(params, xs, site)
        for layer in free:
            xs[layer] = xs[layer] - gamma * grads[layer]
    return xs, np.array(trace)


def random_values(seed: int, sizes=SIZES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(BATCH, n)) for n in sizes]


def as_dict(xs, names=NAMES) -> dict[str, jax.Array]:
    return {name: jnp.asarray(v) for name, v in zip(names, xs, strict=True)}


def fused_nodes(graph, clamp) -> list[str]:
    return [f.name for f in plan_fusion(graph, frozenset(clamp), {})]


# the fused relaxation (pcn._fusion) only applies when the out-edges of a node are plain
# linear maps: the prediction site with the input clamped; both paths must obey Eq. 2.4
SITE_AND_FUSE = [("parent", True), ("prediction", True), ("prediction", False)]


@pytest.mark.parametrize(("site", "fuse"), SITE_AND_FUSE)
@pytest.mark.parametrize("clamp_output", [True, False])
def test_relaxation_steps_are_the_value_update_of_eq_2_4(x64, site, clamp_output, fuse):
    graph = pcn.mlp(SIZES, key=jax.random.key(0), activation_site=site)
    params = chain_weights(graph)
    assert params[0][0].dtype == np.float64
    xs = random_values(1)
    gamma = 0.1
    clamp = {"x": True, "y": True} if clamp_output else {"x": True}
    free = [1, 2] if clamp_output else [1, 2, 3]
    # the fused path is the one under test exactly when asked for and applicable
    assert fused_nodes(graph, clamp) == (["h1"] if site == "prediction" else [])

    for steps in (1, 5) if clamp_output else (1,):
        expected, trace = relax_by_hand(params, xs, site, gamma, steps, free)
        result = pcn.infer(graph, as_dict(xs), clamp=clamp, stop=steps, gamma=gamma, fuse=fuse)
        for name, want in zip(NAMES, expected, strict=True):
            np.testing.assert_allclose(np.asarray(result.values[name]), want, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(result.energy_trace[:-1]), trace, rtol=1e-12)
    # the hidden layers really moved (otherwise the comparison proves little)
    assert not np.allclose(expected[1], xs[1]) and not np.allclose(expected[2], xs[2])


@pytest.mark.parametrize(("site", "fuse"), SITE_AND_FUSE)
def test_a_single_hidden_layer_between_clamped_nodes_relaxes_by_eq_2_4(x64, site, fuse):
    names, sizes = ("x", "h1", "y"), (3, 4, 2)
    graph = pcn.mlp(sizes, key=jax.random.key(17), activation_site=site)
    params = chain_weights(graph, names)
    xs = random_values(18, sizes)
    clamp = {"x": True, "y": True}
    # with the prediction site the hidden layer feeds the clamped output through a
    # plain linear map, so it is the fused path that runs
    assert fused_nodes(graph, clamp) == (["h1"] if site == "prediction" else [])

    expected, trace = relax_by_hand(params, xs, site, 0.3, 6, free=[1])
    result = pcn.infer(graph, as_dict(xs, names), clamp=clamp, stop=6, gamma=0.3, fuse=fuse)

    for name, want in zip(names, expected, strict=True):
        np.testing.assert_allclose(np.asarray(result.values[name]), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(result.energy_trace[:-1]), trace, rtol=1e-12)
    final = energy_per_example(params, expected, site).mean()
    np.testing.assert_allclose(float(result.energy_trace[-1]), final, rtol=1e-12)


@pytest.mark.parametrize("fuse", [True, False])
def test_a_layer_without_bias_relaxes_by_eq_2_4(x64, fuse):
    graph = pcn.mlp(SIZES, key=jax.random.key(13), bias=False)
    params = chain_weights(graph)
    xs = random_values(14)
    expected, _ = relax_by_hand(params, xs, "prediction", 0.1, 4, [1, 2])
    result = pcn.infer(
        graph, as_dict(xs), clamp={"x": True, "y": True}, stop=4, gamma=0.1, fuse=fuse
    )
    for name, want in zip(NAMES, expected, strict=True):
        np.testing.assert_allclose(np.asarray(result.values[name]), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("site", ["parent", "prediction"])
def test_a_generative_latent_root_moves_only_by_the_error_it_predicts(x64, site, fuse):
    """The latent z has no prediction, so Eq. 2.4 keeps only its feedback term."""
    names, sizes = ("z", "h1", "x"), (8, 4, 6)
    graph = pcn.generative_mlp(
        sizes, key=jax.random.key(15), activation_site=site, output_activation="identity"
    )
    params = chain_weights(graph, names)
    xs = random_values(16, sizes)
    if fuse:
        assert fused_nodes(graph, {"x"}) == ["z"]

    expected, trace = relax_by_hand(params, xs, site, 0.1, 3, free=[0, 1])
    result = pcn.infer(graph, as_dict(xs, names), clamp={"x": True}, stop=3, gamma=0.1, fuse=fuse)

    for name, want in zip(names, expected, strict=True):
        np.testing.assert_allclose(np.asarray(result.values[name]), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(result.energy_trace[:-1]), trace, rtol=1e-12)


def test_the_parent_site_update_is_literally_the_thesis_formula(x64):
    """Eq. 2.4 as printed: dx_l = gamma * (-eps_l + f'(x_l) * W^T eps_child)."""
    graph = pcn.mlp(SIZES, key=jax.random.key(3), activation_site="parent")
    (w1, b1), (w2, b2), (w3, b3) = chain_weights(graph)
    x, h1, h2, y = random_values(4)
    gamma = 0.05
    eps1 = h1 - (x @ w1.T + b1)
    eps2 = h2 - (np.tanh(h1) @ w2.T + b2)
    eps3 = y - (np.tanh(h2) @ w3.T + b3)
    new_h1 = h1 + gamma * (-eps1 + (1 - np.tanh(h1) ** 2) * (eps2 @ w2))
    new_h2 = h2 + gamma * (-eps2 + (1 - np.tanh(h2) ** 2) * (eps3 @ w3))
    new_y = y + gamma * (-eps3)

    result = pcn.infer(graph, as_dict([x, h1, h2, y]), clamp={"x": True}, stop=1, gamma=gamma)

    np.testing.assert_array_equal(np.asarray(result.values["x"]), x)
    np.testing.assert_allclose(np.asarray(result.values["h1"]), new_h1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(result.values["h2"]), new_h2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(result.values["y"]), new_y, rtol=0, atol=1e-12)
    # energy[0] is Eq. 2.3 at the starting values, averaged over the batch
    e0 = 0.5 * (np.sum(eps1**2) + np.sum(eps2**2) + np.sum(eps3**2)) / BATCH
    np.testing.assert_allclose(float(result.energy_trace[0]), e0, rtol=1e-12)


@pytest.mark.parametrize("site", ["parent", "prediction"])
def test_hand_derived_value_gradient_equals_autodiff_of_the_summed_energy(x64, site):
    graph = pcn.mlp(SIZES, key=jax.random.key(5), activation_site=site)
    params = chain_weights(graph)
    xs = random_values(6)
    values = as_dict(xs)

    def summed_energy(free):
        return jnp.sum(graph.energy({"x": values["x"], **free}))

    auto = jax.jit(jax.grad(summed_energy))({n: values[n] for n in NAMES[1:]})
    hand = energy_gradient(params, xs, site)
    np.testing.assert_allclose(
        float(jax.jit(summed_energy)({n: values[n] for n in NAMES[1:]})),
        energy_per_example(params, xs, site).sum(),
        rtol=1e-12,
    )
    for layer, name in enumerate(NAMES[1:], start=1):
        np.testing.assert_allclose(np.asarray(auto[name]), hand[layer], rtol=0, atol=1e-12)


def test_gamma_is_a_step_per_example_so_the_batch_size_does_not_change_it(x64):
    graph = pcn.mlp(SIZES, key=jax.random.key(7), activation_site="parent")
    xs = random_values(8)
    full = pcn.infer(graph, as_dict(xs), clamp={"x": True}, stop=3, gamma=0.1)
    single = pcn.infer(graph, as_dict([v[:1] for v in xs]), clamp={"x": True}, stop=3, gamma=0.1)
    for name in NAMES:
        np.testing.assert_allclose(
            np.asarray(single.values[name]), np.asarray(full.values[name][:1]), atol=1e-12
        )


def forward_init_by_hand(params, x, y, site):
    """Hidden layers at their predictions (zero error), output clamped to the label."""
    xs = [x]
    for layer in range(1, len(params)):
        w, b = params[layer - 1]
        parent = xs[-1] if site == "prediction" or layer == 1 else f(xs[-1])
        a = parent @ w.T + b
        xs.append(f(a) if site == "prediction" else a)
    return [*xs, y]


def weight_changes_by_hand(params, xs, site, alpha):
    """Eq. 2.5 averaged over the batch (and its chain-rule twin for the prediction site)."""
    eps = errors(params, xs, site)
    a = pre_activations(params, xs, site)
    last = len(xs) - 1
    changes = []
    for layer in range(1, last + 1):
        if site == "parent":
            delta = eps[layer]
            presyn = xs[layer - 1] if layer == 1 else f(xs[layer - 1])
        else:
            delta = eps[layer] * (1.0 if layer == last else f_prime(a[layer]))
            presyn = xs[layer - 1]
        dw = alpha * delta.T @ presyn / len(delta)  # alpha * mean_b eps f(x_parent)^T
        db = alpha * delta.mean(axis=0)
        changes.append((dw, db))
    return changes


@pytest.mark.parametrize(
    ("site", "fuse", "steps"),
    [("parent", True, 1), ("parent", True, 4), ("prediction", True, 4), ("prediction", False, 4)],
)
def test_one_il_step_changes_the_weights_by_eq_2_5_at_the_relaxed_values(x64, site, steps, fuse):
    graph = pcn.mlp(SIZES, key=jax.random.key(9), activation_site=site)
    params = chain_weights(graph)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(BATCH, SIZES[0]))
    y = rng.normal(size=(BATCH, SIZES[-1]))
    gamma, alpha = 0.2, 0.05

    start = forward_init_by_hand(params, x, y, site)
    relaxed, trace = relax_by_hand(params, start, site, gamma, steps, free=[1, 2])
    changes = weight_changes_by_hand(params, relaxed, site, alpha)

    if fuse:
        assert fused_nodes(graph, {"x", "y"}) == (["h1"] if site == "prediction" else [])
    algorithm = pcn.IL(stop=steps, gamma=gamma, fuse=fuse)
    step = pcn.make_train_step(graph, algorithm, optax.sgd(alpha))
    state, info = step(step.init(graph), {"x": jnp.asarray(x), "y": jnp.asarray(y)})
    new_params = chain_weights(step.graph(state))

    for (w, b), (w_new, b_new), (dw, db) in zip(params, new_params, changes, strict=True):
        np.testing.assert_allclose(w_new - w, dw, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b_new - b, db, rtol=0, atol=1e-12)
    # the weight loss is the energy at the relaxed values, averaged over the batch
    np.testing.assert_allclose(
        float(info.loss), energy_per_example(params, relaxed, site).mean(), rtol=1e-12
    )
    np.testing.assert_allclose(np.asarray(info.energy_trace), trace, rtol=1e-12)
    # the output error is nonzero, so the last weights must have moved
    assert np.abs(changes[-1][0]).max() > 1e-6


def test_after_forward_init_and_one_step_the_first_layer_has_no_error_to_learn_from(x64):
    """With T = 1 from a forward initialisation only the layer below the output has moved,
    so eps_1 = 0 and Eq. 2.5 leaves W_1 exactly unchanged (parent convention)."""
    graph = pcn.mlp(SIZES, key=jax.random.key(11), activation_site="parent")
    params = chain_weights(graph)
    rng = np.random.default_rng(12)
    batch = {
        "x": jnp.asarray(rng.normal(size=(BATCH, 3))),
        "y": jnp.asarray(rng.normal(size=(BATCH, 2))),
    }
    step = pcn.make_train_step(graph, pcn.IL(stop=1, gamma=0.1), optax.sgd(0.1))
    state, _ = step(step.init(graph), batch)
    (w1, b1), (w2, _), _ = chain_weights(step.graph(state))
    np.testing.assert_allclose(w1, params[0][0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(b1, params[0][1], rtol=0, atol=1e-15)
    assert not np.array_equal(w2, params[1][0])
