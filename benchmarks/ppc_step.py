"""What parallel / incremental PC costs per batch against inference learning, on the
reference MLP (784-128-128-10, batch 128, Adam, T = 20): IL (fused and unfused), PPC with
a weight step every T steps (IL's schedule), every 5 and every step (iPC). 15 rounds of 30
steps of every case in turns, in one process; medians, and ratios to unfused IL taken
within each round. Run: `python benchmarks/ppc_step.py`."""

import json
import statistics
import time

import jax
import optax
from reference import batches, graph  # the shared reference setup (this folder)

from pcn import IL, PPC, make_train_step

T = 20


def runner(algorithm):
    step = make_train_step(graph, algorithm, optax.adam(1e-4))
    held = [step.init(graph)]

    def run(n):
        state = held[0]
        for i in range(n):
            state, _ = step(state, batches[i % len(batches)])
        jax.block_until_ready(state)
        held[0] = state

    return run


cases = {
    "il_fused": runner(IL(T, gamma=0.1)),
    "il_unfused": runner(IL(T, gamma=0.1, fuse=False)),
    f"ppc_k{T}": runner(PPC(T, weight_every=T, gamma=0.1)),
    "ppc_k5": runner(PPC(T, weight_every=5, gamma=0.1)),
    "ppc_k1": runner(PPC(T, weight_every=1, gamma=0.1)),
}
for run in cases.values():
    run(10)
times = {name: [] for name in cases}
for _ in range(15):
    for name, run in cases.items():
        start = time.perf_counter()
        run(30)
        times[name].append((time.perf_counter() - start) / 30 * 1e3)

print(json.dumps({name: round(statistics.median(t), 3) for name, t in times.items()}))
for name in cases:
    r = statistics.median(a / b for a, b in zip(times[name], times["il_unfused"], strict=True))
    print(f"{name} / il_unfused: {r:.2f}")
