"""A checkpoint of a data-parallel run resumes on another device count: saved from a
4-device mesh, continued on 1, 2 and 4 devices (and a state handed from one mesh's step
to another's), every continuation equals the uninterrupted run's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys, tempfile
    import jax, jax.numpy as jnp, numpy as np, optax, pcn
    from pcn.checkpoint import load_checkpoint, save_checkpoint

    graph = pcn.mlp((10, 16, 4), activation="tanh", key=jax.random.key(0))
    rng = np.random.default_rng(0)
    batches = [
        {"x": jnp.asarray(rng.normal(size=(16, 10)).astype(np.float32)),
         "y": jnp.asarray(rng.normal(size=(16, 4)).astype(np.float32))}
        for _ in range(4)
    ]

    def step_on(n):
        parallel = pcn.data_parallel(n) if n > 1 else None
        return pcn.make_train_step(graph, pcn.IL(3, gamma=0.1), optax.adam(1e-2),
                                   parallel=parallel)

    def far(a, b):
        return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(a.leaves, b.leaves, strict=True))

    four = step_on(4)
    state = four.init(graph)
    for i in range(5):
        state, _ = four(state, batches[i % 4])
    path = os.path.join(tempfile.mkdtemp(), "step.ckpt")
    save_checkpoint(path, state)
    handed = state
    for i in range(5, 10):
        state, _ = four(state, batches[i % 4])
    for n in (1, 2, 4):
        step = step_on(n)
        resumed, _ = load_checkpoint(path, step.init(graph))
        for i in range(5, 10):
            resumed, _ = step(resumed, batches[i % 4])
        assert far(resumed, state) < 1e-6, (n, far(resumed, state))
        print(n, "ok")
    two = step_on(2)  # a live state of the 4-device step, continued on 2 devices
    for i in range(5, 10):
        handed, _ = two(handed, batches[i % 4])
    assert far(handed, state) < 1e-6
    print("handed ok")
    """
)


def test_a_data_parallel_checkpoint_resumes_on_another_device_count():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:4] == ["1 ok", "2 ok", "4 ok", "handed ok"]
