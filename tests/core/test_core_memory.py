"""`pcn.step_memory`: XLA's memory plan of one compiled training step."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcn


def _setup():
    graph = pcn.mlp((20, 64, 64, 5), activation="tanh", key=jax.random.key(0))
    batch = {"x": jnp.zeros((32, 20)), "y": jnp.zeros((32, 5))}
    return graph, batch


def test_the_arguments_are_the_weights_adam_state_and_batch_byte_for_byte():
    graph, batch = _setup()
    memory = pcn.step_memory(graph, pcn.BP(), optax.adam(1e-3), batch)
    params = eqx.filter(graph, eqx.is_inexact_array)
    weights = sum(leaf.nbytes for leaf in jax.tree.leaves(params))
    adam = sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(optax.adam(1e-3).init(params)))
    data = sum(v.nbytes for v in batch.values())
    assert memory.arguments == weights + adam + data
    assert memory.total == memory.arguments + memory.output + memory.temp - memory.aliased
    assert set(memory.as_dict()) == {"temp", "arguments", "output", "aliased", "total"}


def test_pc_needs_more_working_memory_than_bp_but_less_than_twice_its_total():
    graph, batch = _setup()
    bp = pcn.step_memory(graph, pcn.BP(), optax.adam(1e-3), batch)
    pc = pcn.step_memory(graph, pcn.IL(stop=8, gamma=0.1), optax.adam(1e-3), batch)
    assert pc.temp > bp.temp  # values, predictions and errors of every layer
    assert pc.total < 2 * bp.total  # the beyond-Gaussians paper's bound
