"""What laying a relaxation's steps out (`pcn.FixedSteps(T, unroll=True)`) buys an IL
training step of a CNN on XLA's CPU backend, against the same steps in a `lax.scan`:
the thesis's CNN (3x3 convolutions 64-128-64, dense 128, tanh; batch 64, T = 10) and
the five-convolution CNN of `faster-pc-table1`'s CIFAR-10 row (32-64-96-96-64, dense
256, gelu; batch 200, T = 6), CIFAR-10 shapes, Adam. 3 rounds of 2 steps of every case
in turns; one process; medians, and ratios within each round.
Run: `python benchmarks/unrolled_relaxation.py`."""

import json
import statistics

import jax
from reference import cifar_batch, median_ratio, runner, timed_rounds  # shared (this folder)

import pcn

models = {
    "thesis_cnn_t10": (
        pcn.cnn((3, 32, 32), channels=(64, 128, 64), hidden=128, activation="tanh",
                key=jax.random.key(0)),
        cifar_batch(64), 10, 0.1,
    ),
    "five_conv_t6": (
        pcn.cnn((3, 32, 32), channels=(32, 64, 96, 96, 64), hidden=256, activation="gelu",
                key=jax.random.key(0)),
        cifar_batch(200), 6, 0.05,
    ),
}  # fmt: skip
cases = {}
for name, (graph, batch, steps, gamma) in models.items():
    for form, unroll in (("looped", False), ("unrolled", True)):
        algorithm = pcn.IL(pcn.FixedSteps(steps, unroll=unroll), gamma=gamma)
        cases[f"{name}_{form}"] = runner(algorithm, 1e-4, model=graph, data=[batch])
times = timed_rounds(cases, warmup=1, rounds=3, calls=2)
print(json.dumps({name: round(statistics.median(t), 1) for name, t in times.items()}))
for name in models:
    ratio = median_ratio(times, f"{name}_looped", f"{name}_unrolled")
    print(f"{name}: looped / unrolled {ratio:.1f}x")
