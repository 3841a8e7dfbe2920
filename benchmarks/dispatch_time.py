"""Microseconds per call of a compiled IL step on a tiny MLP (compute negligible: the
Python dispatch), 7 rounds of 500 calls: `python benchmarks/dispatch_time.py LABEL`, once
per commit (PYTHONPATH=<worktree>/src). Used for the 2026-12-02 side-by-side figures in
benchmarks/README.md."""

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

from pcn.algorithms import IL, make_train_step
from pcn.models import mlp

graph = mlp((4, 8, 3), key=jax.random.key(0))
batch = {"x": jnp.ones((2, 4)), "y": jnp.ones((2, 3))}
step = make_train_step(graph, IL(20, gamma=0.1), optax.adam(1e-3))
state = step.init(graph)
for _ in range(50):
    state, _info = step(state, batch)
jax.block_until_ready(state)
rounds = []
for _ in range(7):
    start = time.perf_counter()
    for _ in range(500):
        state, _info = step(state, batch)
    jax.block_until_ready(state)
    rounds.append((time.perf_counter() - start) / 500 * 1e6)
label = sys.argv[1] if len(sys.argv) > 1 else ""
print(label, "us/step median", round(statistics.median(rounds), 1), [round(t, 1) for t in rounds])
