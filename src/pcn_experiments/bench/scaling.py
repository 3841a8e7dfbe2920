"""`pcn bench scaling`: data- and layer-parallel training steps per second on 1, 2, 4, 8
devices.

Each device count runs in its own process (a CPU host is split into N devices by XLA's
flag, which must be set before JAX starts), timing IL (T = 20) and BP steps of the
reference MLP (784-128-128-10) on a batch that grows with the devices (`per_device`
examples each: weak scaling) and on a fixed batch (strong scaling). Efficiency is the
examples per second on N devices over N times those on one. Forced host devices share
the machine's cores, so on a 2-core machine efficiency past 2 devices shows the cores'
limit, not the method's; on a GPU machine every device is a GPU.

Layer parallel (`pcn.LayerParallel`): a deep MLP (784, eight hidden layers of 256, 10),
its nodes cut into as many blocks as devices, IL (T = 20) on the fixed batch; on one
device the same program with one block.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

DEVICE_COUNTS = (1, 2, 4, 8)
SIZES = (784, 128, 128, 10)
PER_DEVICE = 64  # examples per device in the weak-scaling batch
FIXED_BATCH = 512  # the strong-scaling batch
DEEP = (784, *[256] * 8, 10)  # the layer-parallel model


def _worker(devices: int, steps: int, warmup: int) -> dict:
    """Time the steps on `devices` devices of this process (the flag is already set)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import pcn

    from .timing import interleaved_medians

    parallel = pcn.data_parallel(devices) if devices > 1 else None
    graph = pcn.mlp(SIZES, activation="tanh", key=jax.random.key(0))
    rng = np.random.default_rng(0)

    def batch(n: int) -> dict:
        return {
            "x": jnp.asarray(rng.uniform(size=(n, SIZES[0])), jnp.float32),
            "y": jnp.asarray(np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)], jnp.float32),
        }

    cases = {}
    for scaling, n in (("weak", PER_DEVICE * devices), ("strong", FIXED_BATCH)):
        data = batch(n)
        for name, algorithm in (("il", pcn.IL(20, gamma=0.1)), ("bp", pcn.BP())):
            step = pcn.make_train_step(graph, algorithm, optax.adam(1e-3), parallel=parallel)
            holder = {"state": step.init(graph)}

            def run_one(i, step=step, holder=holder, data=data):
                holder["state"], _ = step(holder["state"], data)
                return holder["state"]

            cases[f"{scaling}_{name}"] = (run_one, n)
    deep = pcn.mlp(DEEP, activation="tanh", key=jax.random.key(0))
    layers = pcn.LayerParallel(deep, devices).train_step(
        deep, pcn.IL(20, gamma=0.1), optax.adam(1e-3)
    )
    held = {"state": layers.init(deep)}
    deep_data = batch(FIXED_BATCH)

    def run_layers(i):
        held["state"], _ = layers(held["state"], deep_data)
        return held["state"]

    cases["layer_il"] = (run_layers, FIXED_BATCH)
    ms = interleaved_medians({k: v[0] for k, v in cases.items()}, warmup=warmup, steps=steps)
    return {
        "devices": devices,
        "ms_per_step": ms,
        "examples_per_second": {k: cases[k][1] / (ms[k] / 1e3) for k in ms},
    }


def measure(*, steps: int = 50, warmup: int = 5, counts=DEVICE_COUNTS) -> dict:
    """Run every device count in a fresh process; steps/s, examples/s and efficiency."""
    rows = {}
    for n in counts:
        # twice the devices used: XLA's CPU client runs each forced device's part of a
        # program on a pool sized by the device count, and the layer-parallel program,
        # whose collectives need every device at once, stalled when none was spare
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={2 * n}"}
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(n), str(steps), str(warmup)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the {n}-device worker failed: {done.stderr[-2000:]}")
        rows[str(n)] = json.loads(done.stdout.strip().splitlines()[-1])
    base = rows[str(counts[0])]["examples_per_second"]
    for n, row in rows.items():
        row["efficiency"] = {
            k: v / (int(n) / counts[0] * base[k]) for k, v in row["examples_per_second"].items()
        }
    return {
        "config": {"sizes": list(SIZES), "T": 20, "per_device": PER_DEVICE,
                   "fixed_batch": FIXED_BATCH, "layer_parallel_sizes": list(DEEP),
                   "cpu_cores": os.cpu_count()},
        "devices": rows,
    }  # fmt: skip


def run(*, as_json: bool, steps: int, warmup: int) -> dict:
    """Measure and print (a table, or one JSON object)."""
    result = measure(steps=steps, warmup=warmup)
    if as_json:
        print(json.dumps(result))
        return result
    print(f"{'devices':<9}{'case':<12}{'ms/step':>10}{'examples/s':>14}{'efficiency':>12}")
    for n, row in result["devices"].items():
        for case, ms in row["ms_per_step"].items():
            eps, eff = row["examples_per_second"][case], row["efficiency"][case]
            print(f"{n:<9}{case:<12}{ms:>10.3f}{eps:>14.0f}{eff:>12.2f}")
    return result


if __name__ == "__main__":
    print(json.dumps(_worker(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
