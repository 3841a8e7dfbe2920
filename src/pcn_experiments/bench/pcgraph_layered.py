"""`pcn bench pcgraph-layered`: a layered topology expressed as a masked PC graph (issue
4: `pcgraphs.pc_graph` of a feedforward mask, block-structured) against the same layered
model built directly (`pcn.mlp`), both trained by IL with T = 20 and timed in turns.

Reference configuration: 784-128-128-10, tanh on the parents (mu = W f(x), Eq. 5.1), no
bias, batch 128, float32, SGD 0.1 on the values, Adam 1e-3 on the weights.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import optax

from pcn import data as pcn_data
from pcn.algorithms import IL, make_train_step
from pcn.models import mlp
from pcn.pcgraphs import pc_graph
from pcn.pcgraphs.topology import feedforward

from .timing import interleaved_medians

SIZES = (784, 128, 128)
LABELS = 10
BATCH = 128


def measure(*, steps: int = 100, warmup: int = 10, seed: int = 0, data_dir=None) -> dict:
    """Median ms per IL step of the masked and the direct layered graph, timed in turns."""
    ds = pcn_data.load("fashion-mnist", data_dir=data_dir)
    x = jnp.asarray(ds.x_train[:BATCH])
    y = jnp.asarray(pcn_data.one_hot(ds.y_train[:BATCH], LABELS))
    key = jax.random.key(seed)
    masked = pc_graph(feedforward(SIZES, labels=LABELS), activation="tanh", key=key)
    direct = mlp((*SIZES, LABELS), activation="tanh", activation_site="parent", bias=False, key=key)
    forms = {
        "masked_layered": (masked, {"sensory": x, "label": y}),
        "direct_layered": (direct, {"x": x, "y": y}),
    }
    runners = {}
    for name, (graph, batch) in forms.items():
        step = make_train_step(graph, IL(20, gamma=0.1), optax.adam(1e-3))
        holder = {"state": step.init(graph)}

        def run_one(i, step=step, holder=holder, batch=batch):
            holder["state"], _ = step(holder["state"], batch)
            return holder["state"]

        runners[name] = run_one
    ms = interleaved_medians(runners, warmup=warmup, steps=steps)
    return {
        "config": {"sizes": [*SIZES, LABELS], "batch": BATCH, "T": 20},
        "ms_per_step": ms,
        "ratio_masked_over_direct": ms["masked_layered"] / ms["direct_layered"],
    }


def run(*, as_json: bool, steps: int, warmup: int, data_dir=None) -> dict:
    """Measure and print (a table, or one JSON object)."""
    result = measure(steps=steps, warmup=warmup, data_dir=data_dir)
    if as_json:
        print(json.dumps(result))
        return result
    for name, value in result["ms_per_step"].items():
        print(f"{name + ' ms/step':<28}{value:>10.3f}")
    print(f"{'masked / direct':<28}{result['ratio_masked_over_direct']:>10.3f}")
    return result
