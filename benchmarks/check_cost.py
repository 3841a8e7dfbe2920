"""The cost of the finiteness checks of a training step on the reference MLP (784-128-128-10,
batch 128, Adam): BP with and without TrainStep's check, PC T = 20 with every check, with
IL's own energy check only, and with none; 15 rounds of 50 steps in turns, the median
per-round ratio. Run: `python benchmarks/check_cost.py`."""

import jax, jax.numpy as jnp, optax, json, time, statistics
import numpy as np
from pcn.algorithms import BP, IL, make_train_step
from pcn.models import mlp

graph = mlp((784, 128, 128, 10), activation="tanh", key=jax.random.key(0))
rng = np.random.default_rng(0)
batches = [
    {
        "x": jnp.asarray(rng.uniform(size=(128, 784)), jnp.float32),
        "y": jnp.asarray(np.eye(10)[rng.integers(0, 10, 128)], jnp.float32),
    }
    for _ in range(10)
]


def make(alg, **kw):
    step = make_train_step(graph, alg, optax.adam(1e-3), **kw)
    st = [step.init(graph)]

    def run(n):
        s = st[0]
        for i in range(n):
            s, _ = step(s, batches[i % 10])
        jax.block_until_ready(s)
        st[0] = s

    return run


cases = {
    "bp_on": make(BP()),
    "bp_off": make(BP(), check_finite=False),
    "pc_all": make(IL(20, gamma=0.1)),
    "pc_il_only": make(IL(20, gamma=0.1), check_finite=False),
    "pc_none": make(IL(20, gamma=0.1, check_finite=False), check_finite=False),
}
for r in cases.values():
    r(20)
times = {k: [] for k in cases}
for rnd in range(15):
    for k, r in cases.items():
        t = time.perf_counter()
        r(50)
        times[k].append((time.perf_counter() - t) / 50 * 1e3)
ratio = lambda a, b: statistics.median([x / y for x, y in zip(times[a], times[b])])
print(json.dumps({k: round(statistics.median(v), 4) for k, v in times.items()}))
print(
    "bp on/off",
    round(ratio("bp_on", "bp_off"), 3),
    "pc all/il_only",
    round(ratio("pc_all", "pc_il_only"), 3),
    "pc il_only/none",
    round(ratio("pc_il_only", "pc_none"), 3),
)
