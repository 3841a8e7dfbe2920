# %% [markdown]
# # Train a PC network and compare it with backprop
#
# A predictive coding MLP and a backprop MLP with the same modules, initial weights and
# optimiser, trained on scikit-learn's 8x8 digits (bundled: no download).

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

import pcn
from pcn.data import batches, load, one_hot

ds = load("digits")
print(ds.x_train.shape, ds.x_test.shape)

# %% [markdown]
# `pcn.mlp` builds the graph: input `x`, hidden `h1`, output `y`. `pcn.IL(T, gamma)` is
# inference learning: clamp `x` and `y`, relax the hidden values for T steps, then one
# weight update at the relaxed values. `pcn.BP()` is backprop on the same graph.

# %%
graph = pcn.mlp([64, 64, 10], activation="tanh", key=jax.random.key(0))
algorithms = {"PC (IL, T = 20)": pcn.IL(20, gamma=0.1), "BP": pcn.BP()}
curves, traces = {}, {}
for name, algorithm in algorithms.items():
    step = pcn.make_train_step(graph, algorithm, optax.adam(1e-3))
    state = step.init(graph)
    curves[name] = []
    for epoch in range(8):
        for x, y in batches(ds.x_train, ds.y_train, 32, key_or_seed=epoch):
            state, info = step(state, {"x": x, "y": one_hot(y, 10)})
        curves[name].append(pcn.accuracy(step.graph(state), ds.x_test, ds.y_test))
    traces[name] = np.asarray(info.energy_trace)
    print(f"{name}: test accuracy {curves[name][-1]:.3f}")

# %% [markdown]
# The energy during the last batch's relaxation falls from backprop's loss (forward
# initialisation puts all the error at the output) as the error spreads to the hidden
# layer.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
for name, accuracy in curves.items():
    left.plot(range(1, 9), accuracy, marker="o", label=name)
left.set(xlabel="epoch", ylabel="test accuracy")
left.legend()
right.plot(traces["PC (IL, T = 20)"])
right.set(xlabel="relaxation step", ylabel="energy (mean per example)")
fig.tight_layout()
plt.show()
