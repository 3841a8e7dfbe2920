# %% [markdown]
# # Exact backprop by predictive coding on any JAX function (Z-IL)
#
# `pcn.zil.grad(fn)` runs Z-IL (forward initialisation, value step 1, each vertex's
# weights updated when its error arrives) on the computational graph of `fn`, one vertex
# per operation, levelled. The result is backprop's gradient of the squared error.

# %%
import jax
import jax.numpy as jnp
import optax

import pcn

jax.config.update("jax_enable_x64", True)  # equalities are checked in float64


def fn(params, x):  # a two-layer net with a skip connection
    h = jax.nn.gelu(x @ params["w1"])
    return h @ params["w2"] + x @ params["skip"]


k = jax.random.split(jax.random.key(0), 5)
params = {
    "w1": jax.random.normal(k[0], (4, 8)),
    "w2": jax.random.normal(k[1], (8, 3)),
    "skip": jax.random.normal(k[2], (4, 3)),
}
x, y = jax.random.normal(k[3], (16, 4)), jax.random.normal(k[4], (16, 3))

zil = pcn.zil.grad(fn)(params, x, y)
bp = jax.grad(lambda p: 0.5 * jnp.sum((fn(p, x) - y) ** 2))(params)
for name in params:
    print(name, float(jnp.max(jnp.abs(zil[name] - bp[name]))))

# %% [markdown]
# The differences are float64 rounding. On PC graphs, `pcn.ZIL()` is an algorithm like
# `pcn.IL()`: `pcn.make_train_step(graph, pcn.ZIL(), optimizer)`.

# %%
graph = pcn.mlp([4, 8, 3], activation="tanh", key=jax.random.key(1))
batch = {"x": x, "y": y}
updates = {}
for name, algorithm in {"Z-IL": pcn.ZIL(), "BP": pcn.BP()}.items():
    step = pcn.make_train_step(graph, algorithm, optax.sgd(0.1))
    state, _ = step(step.init(graph), batch)
    updates[name] = jax.tree.leaves(step.graph(state))
print(max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(*updates.values(), strict=True)))
jax.config.update("jax_enable_x64", False)
