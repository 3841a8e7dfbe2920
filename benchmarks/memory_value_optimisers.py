"""Value optimisers for completing partial keys in the linear PC memory (issue 14, item 6):
plain SGD, heavy ball, Nesterov and Adam on the free pixels, each until |dE| < tol or a
cap, on the same memory and keys; prints steps, milliseconds per key and the recall MSE.

The memory: 100 CIFAR-10 images (the shared 10k subset, seed 0), memorised as
`memory-linear` does (SGD 1e-3, 10 images per update) for `EPOCHS` epochs.
Run: `python benchmarks/memory_value_optimisers.py [EPOCHS]`.
"""

import json
import sys
import time

import jax
import numpy as np
import optax

import pcn
from pcn import data
from pcn.associative import keys, linear, scores
from pcn.pcgraphs import stable_gamma

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
ds = data.load("cifar10-png")
x = np.asarray(ds.x_train[np.random.default_rng(0).permutation(len(ds.x_train))[:100]])
memory = linear.linear_memory(x.shape[1], key=jax.random.key(0))
memory, info = linear.memorise(
    memory, x, optimizer=optax.sgd(1e-3), stop=pcn.Tolerance(1e-6, EPOCHS), batch_size=10
)
gamma = stable_gamma(memory.graph, 1.0)
key = keys.partial(x, 0.25, seed=1, image_shape=ds.image_shape)
optimisers = {
    "sgd": optax.sgd(gamma),
    "heavy ball 0.9": optax.sgd(gamma, momentum=0.9),
    "nesterov 0.9": optax.sgd(gamma, momentum=0.9, nesterov=True),
    "adam 0.01": optax.adam(0.01),
}
rows = {}
for name, optimiser in optimisers.items():
    m = linear.LinearMemory(memory.graph, 1, pcn.Tolerance(1e-7, 20000), optimiser)
    m.recall(key)  # compile
    start = time.perf_counter()
    recall = m.recall(key)
    ms = 1e3 * (time.perf_counter() - start) / len(x)
    s = scores.score(recall.images, x, threshold=scores.PARTIAL_THRESHOLD)
    rows[name] = {
        "mean_steps": float(np.mean(recall.steps)),
        "max_steps": int(np.max(recall.steps)),
        "ms_per_key": round(ms, 3),
        "mse": s.mse,
        "retrieved": s.retrieved,
    }
    print(name, json.dumps(rows[name]), flush=True)
print(json.dumps({"epochs": info.steps, "value_step": gamma, "optimisers": rows}))
