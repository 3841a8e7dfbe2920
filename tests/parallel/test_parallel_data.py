"""Data-parallel training (`make_train_step(..., parallel=data_parallel(n))`): on a forced
8-device CPU mesh, 50 steps of IL (also with a carrying initialiser) and BP equal one
device's to 1e-5 relative in float32 and 1e-12 in float64, and each update is one
all-reduce; with the weights split over a model axis too (`model_parallel`), the same.
The mesh needs XLA_FLAGS before JAX starts, so the check runs in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import pcn
import pcn.parallel

SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np, optax, pcn

    x64 = sys.argv[1] == "float64"
    jax.config.update("jax_enable_x64", x64)
    dtype, tol = (np.float64, 1e-12) if x64 else (np.float32, 1e-5)
    assert len(jax.devices()) == 8
    graph = pcn.mlp((10, 16, 16, 4), activation="tanh", key=jax.random.key(0))
    rng = np.random.default_rng(0)
    batches = [
        {"x": jnp.asarray(rng.normal(size=(32, 10)).astype(dtype)),
         "y": jnp.asarray(np.eye(4)[rng.integers(0, 4, 32)].astype(dtype))}
        for _ in range(5)
    ]
    algorithms = {"IL": pcn.IL(5, gamma=0.1), "BP": pcn.BP(),
                  "IL-average": pcn.IL(3, gamma=0.1, init=pcn.AverageInit())}
    for name, algorithm in algorithms.items():
        trained = []
        for parallel in (None, pcn.data_parallel(8)):
            step = pcn.make_train_step(graph, algorithm, optax.adam(1e-2), parallel=parallel)
            state = step.init(graph, batch=batches[0])
            for i in range(50):
                state, info = step(state, batches[i % 5])
            trained.append(step.graph(state))
        for a, b in zip(jax.tree.leaves(trained[0]), jax.tree.leaves(trained[1]), strict=True):
            scale = float(jnp.max(jnp.abs(a)))
            assert float(jnp.max(jnp.abs(a - b))) <= tol * scale, (name, a, b)
        ((_, compiled),) = step._sharded.values()  # the one program of this state layout
        hlo = compiled.lower(state.leaves, batches[0], None).compile().as_text()
        assert "all-reduce" in hlo, name  # the batch really is split over the devices
        print(name, "ok")
    # weights split over a model axis too (4 x 2 mesh): the same numbers
    for name, algorithm in (("IL", pcn.IL(5, gamma=0.1)), ("BP", pcn.BP())):
        trained = []
        for parallel in (None, pcn.model_parallel(4, 2, shard_above=0)):
            step = pcn.make_train_step(graph, algorithm, optax.adam(1e-2), parallel=parallel)
            state = step.init(graph)
            for i in range(50):
                state, info = step(state, batches[i % 5])
            trained.append(step.graph(state))
        for a, b in zip(jax.tree.leaves(trained[0]), jax.tree.leaves(trained[1]), strict=True):
            assert float(jnp.max(jnp.abs(a - b))) <= tol * float(jnp.max(jnp.abs(a))), name
        specs = {str(leaf.sharding.spec) for leaf in jax.tree.leaves(trained[1])}
        assert specs == {"P('model',)"}, specs
        print(name, "model-parallel ok")
    step = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1), parallel=pcn.data_parallel(8))
    try:
        step(step.init(graph), {k: v[:30] for k, v in batches[0].items()})
    except ValueError as error:
        assert "multiple of 8" in str(error), error
        print("uneven batch refused")
    """
)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_data_parallel_training_on_8_devices_matches_one_device(precision):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, precision], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:6] == [
        "IL ok",
        "BP ok",
        "IL-average ok",
        "IL model-parallel ok",
        "BP model-parallel ok",
        "uneven batch refused",
    ]


def test_asking_for_more_devices_than_there_are_names_the_fix():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count=64"):
        pcn.data_parallel(64)


def test_a_use_block_makes_every_step_in_it_data_parallel():
    import jax
    import optax

    graph = pcn.mlp((3, 4, 2), key=jax.random.key(0))
    parallel = pcn.data_parallel(1)
    with pcn.parallel.use(parallel):
        inside = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
    outside = pcn.make_train_step(graph, pcn.BP(), optax.sgd(0.1))
    assert inside.parallel is parallel and outside.parallel is None
