# %% [markdown]
# # One PC graph that classifies, generates and completes
#
# A fully connected PC graph of 174 neurons (64 pixels, 10 label neurons, 100 hidden),
# trained on digits by Algorithm 8 of the thesis, then queried four ways with the same
# weights.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import pcn
import pcn.pcgraphs as pg
from pcn.data import batches, load

ds = load("digits")
topology = pg.fully_connected(174, sensory=64, labels=10)
graph = pg.pc_graph(topology, activation="tanh", key=jax.random.key(0), weight_scale=0.3)
step = pg.trainer(graph, steps=20, gamma=0.2, learning_rate=1e-3, weight_decay=1e-4)
state = step.init(graph)
for epoch in range(5):
    for x, y in batches(ds.x_train, ds.y_train, 50, key_or_seed=epoch):
        state, info = step(state, pg.batch(graph, x, y))
graph = step.graph(state)
relax = dict(stop=pcn.Tolerance(1e-5, 1000), gamma=pg.stable_gamma(graph, 0.1))

# %% [markdown]
# **Classify**: clamp the pixels, relax, read the label neurons.

# %%
result = pg.classify(graph, jnp.asarray(ds.x_test), **relax)
print("test accuracy:", float(np.mean(np.asarray(result.output) == ds.y_test)))

# %% [markdown]
# **Generate**: clamp the label neurons to each class, read the pixels.
# **Complete** (by conditioning): clamp the top half of test images, read the bottom.

# %%
generated = np.asarray(pg.generate(graph, jnp.arange(10), **relax).output)
images = jnp.asarray(ds.x_test[:10])
known = jnp.broadcast_to(jnp.arange(64) < 32, images.shape)
completed = np.asarray(pg.complete(graph, images * known, known, **relax).output)
fig, axes = plt.subplots(3, 10, figsize=(9, 3))
for i in range(10):
    for row, picture in enumerate((generated[i], np.asarray(images[i] * known[i]), completed[i])):
        axes[row, i].imshow(picture.reshape(8, 8), cmap="gray")
        axes[row, i].axis("off")
axes[0, 0].set_title("generated", loc="left", fontsize=8)
axes[1, 0].set_title("top half given", loc="left", fontsize=8)
axes[2, 0].set_title("completed", loc="left", fontsize=8)
plt.show()
