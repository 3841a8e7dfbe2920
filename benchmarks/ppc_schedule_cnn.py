"""What PPC's schedule costs per step on the thesis's CNN (3x3 convolutions 64-128-64,
dense 128, tanh; CIFAR-10 shapes, batch 64, Adam 1e-4, gamma 0.1), every case unrolled
(`pcn.PPC(..., unroll=True)`, as `table-2-1` runs CNN rows): T = 5 and T = 10 with a
weight step at every value step (k = 1), and T = 10 with one every 5 (k = 5). 2 rounds
of 2 steps of every case in turns, in one process; medians.
Run: `python benchmarks/ppc_schedule_cnn.py`."""

import json
import statistics
import time

import jax
from reference import cifar_batch, runner, timed_rounds  # shared (this folder)

import pcn

graph = pcn.cnn(
    (3, 32, 32), channels=(64, 128, 64), hidden=128, activation="tanh", key=jax.random.key(0)
)
batch = cifar_batch(64)
cases = {}
for steps, every in ((5, 1), (10, 5), (10, 1)):
    start = time.perf_counter()
    algorithm = pcn.PPC(steps, weight_every=every, gamma=0.1, unroll=True)
    cases[f"T{steps}_k{every}"] = run = runner(algorithm, 1e-4, model=graph, data=[batch])
    run(1)
    print(f"T {steps}, k {every}: compile and one step {time.perf_counter() - start:.1f} s")
times = timed_rounds(cases, warmup=0, rounds=2, calls=2)
print(json.dumps({name: round(statistics.median(t)) for name, t in times.items()}))
