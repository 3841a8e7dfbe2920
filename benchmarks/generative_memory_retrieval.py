"""Retrieval from the hierarchical generative PC memory (issue 14, item 6), side by side
in one run on one stored memory:

1. F (Fig. 4.4) on noisy keys: the relaxation on the exact reduction of the clamped
   sensory layer (what `GenerativeMemory.apply_f` runs) against the plain relaxation
   over every pixel: milliseconds per key, steps, and the largest difference of the
   outputs.
2. Algorithm 7 on keys with a quarter of the pixels: plain SGD (the largest stable step
   of a grid), heavy ball and Nesterov (momentum 0.9 at that step, or a third of it if
   they diverge) and Adam on the free values, each until |dE| < 1e-6 per key or 3000
   steps: steps, milliseconds per key, recall MSE, retrieved.

The memory: the first 100 Tiny ImageNet validation images of a seeded shuffle (64x64),
a top code of 64 and two ReLU layers of 512, stored by Algorithm 6 for `STORE` steps.
Run: `python benchmarks/generative_memory_retrieval.py [STORE]`; prints JSON.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcn
from pcn import data
from pcn.associative import generative, keys, scores

STORE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
ds = data.load("tiny-imagenet-val")
x = ds.x_train[np.random.default_rng(0).permutation(len(ds.x_train))[:100]].astype(np.float32)
memory = generative.generative_memory(
    x.shape[1], (64, 512, 512), key=jax.random.key(0), value_optimizer=optax.adam(0.01),
    stop=pcn.Tolerance(1e-6, 500),
)  # fmt: skip
memory, storing = generative.memorise(memory, x, stop=pcn.Tolerance(1e-6, STORE))
out: dict = {"stored": {"steps": int(storing.steps), "energy": float(storing.energy)}}


def timed(fn, *args, repeats=3):
    """The result of `fn(*args)` and its best wall time in seconds (after a compile)."""
    result = jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return result, best


def plain_f(image):
    relaxed = generative._relax(memory, image, True)
    return generative._sensory_prediction(memory.graph, relaxed.values), relaxed.example_steps


noisy = jnp.asarray(keys.noisy(x, 0.2, seed=1).image)
(reduced_out, reduced_steps), reduced_s = timed(memory.apply_f, noisy)
(plain_out, plain_steps), plain_s = timed(plain_f, noisy)
out["f"] = {
    "reduced_ms_per_key": 1e3 * reduced_s / len(x),
    "plain_ms_per_key": 1e3 * plain_s / len(x),
    "plain_over_reduced": plain_s / reduced_s,
    "mean_steps": [float(jnp.mean(reduced_steps)), float(jnp.mean(plain_steps))],
    "max_abs_difference": float(jnp.max(jnp.abs(reduced_out - plain_out))),
}

quarter = keys.partial(x, 0.25, seed=2, image_shape=ds.image_shape)
stop = pcn.Tolerance(1e-6, 3000)


def completion(optimiser):
    """One compiled completion of the quarter keys (its time includes the compile, about
    a second, against tens of seconds of relaxation)."""
    m = generative.GenerativeMemory(memory.graph, 1, stop, optimiser)
    start = time.perf_counter()
    recall = m.recall(quarter)
    seconds = time.perf_counter() - start
    s = scores.score(recall.images, x, threshold=scores.PARTIAL_THRESHOLD)
    return {
        "mean_steps": float(np.mean(recall.steps)),
        "max_steps": int(np.max(recall.steps)),
        "ms_per_key": 1e3 * seconds / len(x),
        "mse": s.mse,
        "retrieved": s.retrieved,
    }


def row(name, optimiser):
    """A completion's figures under `name`, or "diverged" (pcn.infer names the node)."""
    try:
        rows[name] = completion(optimiser)
    except FloatingPointError:
        rows[name] = "diverged"
    print(json.dumps({name: rows[name]}), flush=True)
    return rows[name]


print(json.dumps(out), flush=True)  # F's figures, before the longer completions
rows: dict = {}
# plain SGD at the largest step of the grid whose relaxation stays finite; heavy ball and
# Nesterov at that step (and a third of it, should momentum make it diverge)
for gamma in (0.1, 0.03, 0.01, 0.003):
    if row(f"sgd {gamma:g}", optax.sgd(gamma)) != "diverged":
        for step in (gamma, gamma / 3):
            fine = [
                row(f"heavy ball 0.9, {step:.2g}", optax.sgd(step, momentum=0.9)),
                row(f"nesterov 0.9, {step:.2g}", optax.sgd(step, momentum=0.9, nesterov=True)),
            ]
            if "diverged" not in fine:
                break
        break
for rate in (0.01, 0.03):
    row(f"adam {rate:g}", optax.adam(rate))
out["algorithm_7"] = rows
print(json.dumps(out, indent=1))
