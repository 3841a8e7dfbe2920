"""The fixed cost of one `eqx.error_if` on a scalar in a small jitted program (a 784x128
layer and its update), against the same program without it and with a flag output:
`python benchmarks/error_if_cost.py`. Used for the check-cost figures in
benchmarks/README.md."""

import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp

W = jnp.ones((784, 128))
X = jnp.ones((128, 784))


def plain(w, x):
    y = jnp.tanh(x @ w)
    return w - 0.001 * (x.T @ y), jnp.sum(y)


def checked(w, x):
    w2, s = plain(w, x)
    return w2, eqx.error_if(s, ~jnp.isfinite(s), "bad")


def flagged(w, x):  # the flag as an output, no callback
    w2, s = plain(w, x)
    return w2, s, jnp.isfinite(s)


programs = {"plain": jax.jit(plain), "error_if": jax.jit(checked), "flag": jax.jit(flagged)}
for program in programs.values():
    jax.block_until_ready(program(W, X))
times = {name: [] for name in programs}
for _ in range(15):
    for name, program in programs.items():
        w, start = W, time.perf_counter()
        for _ in range(200):
            out = program(w, X)
            w = out[0]
        jax.block_until_ready(out)
        times[name].append((time.perf_counter() - start) / 200 * 1e6)
print({name: round(statistics.median(t), 1) for name, t in times.items()}, "us/call")
