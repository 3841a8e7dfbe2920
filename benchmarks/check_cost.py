"""The cost of `TrainStep`'s finiteness checks on the reference MLP (784-128-128-10,
batch 128, Adam): BP and PC T = 20, each with `check_finite` on and off; 15 rounds of
50 steps of every case in turns, in one process, the median per-round ratio.
Run: `python benchmarks/check_cost.py`."""

import json
import statistics
import time

import jax
import optax
from reference import batches, graph  # the shared reference setup (this folder)

from pcn.algorithms import BP, IL, make_train_step


def runner(algorithm, **options):
    step = make_train_step(graph, algorithm, optax.adam(1e-3), **options)
    held = [step.init(graph)]

    def run(n):
        state = held[0]
        for i in range(n):
            state, _ = step(state, batches[i % len(batches)])
        jax.block_until_ready(state)
        step.check()
        held[0] = state

    return run


cases = {
    "bp_on": runner(BP()),
    "bp_off": runner(BP(), check_finite=False),
    "pc_on": runner(IL(20, gamma=0.1)),
    "pc_off": runner(IL(20, gamma=0.1), check_finite=False),
}
for run in cases.values():
    run(20)
times = {name: [] for name in cases}
for _ in range(15):
    for name, run in cases.items():
        start = time.perf_counter()
        run(50)
        times[name].append((time.perf_counter() - start) / 50 * 1e3)


def ratio(a, b):
    return statistics.median([x / y for x, y in zip(times[a], times[b], strict=True)])


print(json.dumps({name: round(statistics.median(t), 4) for name, t in times.items()}))
print("bp on/off", round(ratio("bp_on", "bp_off"), 3), "pc on/off", round(ratio("pc_on", "pc_off"), 3))
