# %% [markdown]
# # Choosing an initialiser, and reading a step's SMMs
#
# The Faster-PC paper: how the neurons start each batch decides how many relaxation
# steps T PC needs. Here a few epochs on digits at a small T with four starts, then the
# sequential matrix multiplications (SMMs) of each compiled step.

# %%
import jax
import optax

import pcn
from pcn.cost import step_smm
from pcn.data import batches, load, one_hot, stream_aligned_batches

ds = load("digits")
graph = pcn.mlp([64, 64, 64, 10], activation="tanh", key=jax.random.key(0))
starts = {
    "forward": (pcn.forward_init, batches),
    "zeros": (pcn.zeros_init, batches),
    "null (carried)": (pcn.NullInit(), batches),
    "average (stream-aligned)": (pcn.AverageInit(), stream_aligned_batches),
}
T = 5
for name, (init, batching) in starts.items():
    step = pcn.make_train_step(graph, pcn.IL(T, gamma=0.1, init=init), optax.adam(1e-3))
    first = next(iter(batching(ds.x_train, ds.y_train, 40, key_or_seed=0)))
    first = {"x": first[0], "y": one_hot(first[1], 10)}
    state = step.init(graph, batch=first)
    for epoch in range(5):
        for x, y in batching(ds.x_train, ds.y_train, 40, key_or_seed=epoch):
            state, info = step(state, {"x": x, "y": one_hot(y, 10)})
    accuracy = pcn.accuracy(step.graph(state), ds.x_test, ds.y_test)
    smm = step_smm(step, state, first)
    print(f"{name:>26}: test accuracy {accuracy:.3f}, {smm} SMMs per update")

# %% [markdown]
# The counts are the paper's formulas, measured from each compiled program: from the
# forward pass \(2T + L\) (the forward initialisation adds the L products of the
# forward pass), from any other start \(2T + 1\); backprop takes \(2L - 1\):

# %%
bp = pcn.make_train_step(graph, pcn.BP(), optax.adam(1e-3))
print("BP:", step_smm(bp, bp.init(graph), first), "SMMs per update")
