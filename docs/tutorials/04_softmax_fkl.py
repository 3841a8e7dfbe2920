# %% [markdown]
# # A softmax output as a node: F against F_KL
#
# With a categorical output node the label is a probability vector and the energy of the
# output is \(D_{KL}(y \Vert \mathrm{softmax}(\mu))\), the cross-entropy up to a
# constant: the beyond-Gaussians paper's \(\mathcal{F}_{KL}\). The same network with a
# Gaussian output trains on the squared error instead (\(\mathcal{F}\)).

# %%
import jax
import optax

import pcn
from pcn.data import batches, load, one_hot

ds = load("digits")
for output in ("gaussian", "categorical"):
    graph = pcn.mlp([64, 64, 10], activation="tanh", output=output, key=jax.random.key(0))
    print(output, "output energy:", type(graph.node("y").energy).__name__)
    step = pcn.make_train_step(graph, pcn.IL(20, gamma=0.1), optax.adam(1e-3))
    state = step.init(graph)
    for epoch in range(5):
        for x, y in batches(ds.x_train, ds.y_train, 32, key_or_seed=epoch):
            state, info = step(state, {"x": x, "y": one_hot(y, 10)})
    print(f"  test accuracy {pcn.accuracy(step.graph(state), ds.x_test, ds.y_test):.3f}")

# %% [markdown]
# A free categorical node cannot hold arbitrary real values (they must stay a probability
# vector), so pcn refuses to relax one and says which family to use instead:

# %%
graph = pcn.mlp([64, 10], output="categorical", key=jax.random.key(0))
try:
    pcn.infer(
        graph, pcn.forward_init(graph, {"x": ds.x_test[:2]}), clamp={"x": True}, stop=5, gamma=0.1
    )
except ValueError as error:
    print(error)
