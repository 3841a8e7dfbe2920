"""The shape annotations of the public API (`pcn.typing`) say what the functions return.

Each result is checked against its type hints inside one `jaxtyping.jaxtyped` context,
so a dimension name (`batch`, `steps`) must take one size across all the fields.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import optax

import pcn
import pcn.pcgraphs as pg
from pcn.typing import NodeArray, PerExample, ValuesIn

BATCH = 4


def conforms(value, hint) -> bool:
    """`value` matches `hint` (jaxtyping arrays, unions, mappings, None)."""
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, option) for option in typing.get_args(hint))
    if origin in (dict, Mapping):
        _, value_hint = typing.get_args(hint)
        return isinstance(value, Mapping) and all(conforms(v, value_hint) for v in value.values())
    return isinstance(value, hint)


def mismatches(result) -> list[str]:
    """The fields of a NamedTuple `result` that do not match their annotations."""
    hints = typing.get_type_hints(type(result))
    with jaxtyping.jaxtyped("context"):
        return [name for name, hint in hints.items() if not conforms(getattr(result, name), hint)]


def small_mlp():
    graph = pcn.mlp((3, 5, 2), key=jax.random.key(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(BATCH, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(BATCH, 2)), jnp.float32)
    return graph, x, y


def test_inference_fields_match_their_shapes_for_both_stops():
    graph, x, y = small_mlp()
    values = pcn.forward_init(graph, {"x": x, "y": y})
    for stop in (6, pcn.Tolerance(1e-6, max_steps=50)):
        result = pcn.infer(graph, values, clamp={"x": True, "y": True}, stop=stop, gamma=0.1)
        assert mismatches(result) == []


def test_a_wrong_shape_does_not_match_once_batch_is_bound():
    graph, x, y = small_mlp()
    result = pcn.infer(
        graph, pcn.forward_init(graph, {"x": x}), clamp={"x": True}, stop=3, gamma=0.1
    )
    with jaxtyping.jaxtyped("context"):
        assert isinstance(result.final_energy, PerExample)  # binds batch = BATCH
        assert not isinstance(jnp.zeros(BATCH + 1), PerExample)
        assert not isinstance(jnp.zeros((BATCH, 2)), PerExample)


def test_train_step_info_matches_its_shapes():
    graph, x, y = small_mlp()
    step = pcn.make_train_step(graph, pcn.IL(5, gamma=0.1), optax.sgd(0.01))
    _, info = step(step.init(graph), {"x": x, "y": y})
    assert mismatches(info) == []


def test_query_results_match_their_shapes():
    graph = pg.pc_graph(pg.fully_connected(6, sensory=4), key=jax.random.key(1))
    inputs = jnp.asarray(np.random.default_rng(1).uniform(size=(BATCH, 4)), jnp.float32)
    known = np.array([True, True, False, False])
    result = pg.complete(graph, inputs, known, stop=20)
    assert mismatches(result) == []
    assert mismatches(result.query) == []


def test_public_signatures_use_the_shape_aliases():
    assert typing.get_type_hints(pcn.infer)["values"] == ValuesIn
    assert typing.get_type_hints(pcn.PCGraph.energy)["return"] == PerExample
    assert typing.get_type_hints(pcn.PCGraph.predict)["return"] == NodeArray
    assert typing.get_type_hints(pg.condition)["provided"] == ValuesIn
