"""The reference configuration the step benchmarks share: the MLP 784-128-128-10 (tanh)
and ten random batches of 128 (uniform pixels, one-hot labels), seeded; a CIFAR-10-shaped
batch for the CNN benchmarks; and the runner and round-robin timing they use."""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pcn.algorithms import make_train_step
from pcn.models import mlp

graph = mlp((784, 128, 128, 10), activation="tanh", key=jax.random.key(0))
_rng = np.random.default_rng(0)
batches = [
    {
        "x": jnp.asarray(_rng.uniform(size=(128, 784)), jnp.float32),
        "y": jnp.asarray(np.eye(10)[_rng.integers(0, 10, 128)], jnp.float32),
    }
    for _ in range(10)
]


def cifar_batch(size: int) -> dict[str, jax.Array]:
    """`size` random CIFAR-10-shaped images (normal pixels, channels first) with one-hot
    labels, seeded."""
    rng = np.random.default_rng(0)
    return {
        "x": jnp.asarray(rng.normal(size=(size, 3, 32, 32)), jnp.float32),
        "y": jnp.asarray(np.eye(10)[rng.integers(0, 10, size)], jnp.float32),
    }


def runner(algorithm, learning_rate=1e-3, *, model=graph, data=batches, **options):
    """`run(n)`: n compiled steps of `algorithm` (Adam) on `data` (the reference batches)
    with `model` (the reference graph), continuing from where the last call stopped;
    blocks on the state and reads the step's checks."""
    step = make_train_step(model, algorithm, optax.adam(learning_rate), **options)
    held = [step.init(model)]

    def run(n):
        state = held[0]
        for i in range(n):
            state, _ = step(state, data[i % len(data)])
        jax.block_until_ready(state)
        step.check()
        held[0] = state

    return run


def timed_rounds(cases, *, warmup, rounds, calls):
    """ms per step of each `runner` in `cases`, one value per round of `calls` steps, the
    cases taken in turns within each round (so a noisy machine hits them alike)."""
    for run in cases.values():
        run(warmup)
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run(calls)
            times[name].append((time.perf_counter() - start) / calls * 1e3)
    return times


def median_ratio(times, a, b):
    """The median over rounds of case `a`'s time over case `b`'s in the same round."""
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))
