"""Training loops and evaluation shared by experiments: epochs over numpy data, accuracy
by forward pass, reconstruction by inference.

The step itself is compiled (`make_train_step`); this module only feeds it batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .algorithms import TrainState, TrainStep
from .data import batches, one_hot
from .graph import PCGraph
from .inference import infer
from .init import forward_init


class EpochStats(NamedTuple):
    """Mean loss over an epoch, wall time and number of steps.

    `first_step_seconds` is timed apart (it includes compilation on the first epoch), so
    `(seconds - first_step_seconds) / (steps - 1)` is the time of a compiled step.
    """

    loss: float
    seconds: float
    steps: int
    first_step_seconds: float
    energy: np.ndarray  # mean relaxation energy trace over the epoch's steps, (T,)


def train_epoch(
    step: TrainStep,
    state: TrainState,
    make_batch: Callable[[np.ndarray, np.ndarray], Mapping[str, jax.Array]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    progress: Callable[[list], Iterable] | None = None,
) -> tuple[TrainState, EpochStats]:
    """One shuffled epoch of `step`; `make_batch(xb, yb)` maps data to node values.

    `progress`, if given, wraps the list of batches for display, e.g.
    `functools.partial(tqdm.auto.tqdm, leave=False)`: the library draws no progress bar
    itself, so that it needs no progress-bar package.
    """
    if progress is not None and not callable(progress):
        raise TypeError(
            f"`progress` must be None or a callable wrapping the list of batches (e.g. "
            f"functools.partial(tqdm.auto.tqdm, leave=False)), got {progress!r}."
        )
    losses, traces = [], []
    start = time.perf_counter()
    pieces = list(batches(x, y, batch_size, key_or_seed=seed))
    first = 0.0
    for i, (xb, yb) in enumerate(pieces if progress is None else progress(pieces)):
        state, info = step(state, make_batch(xb, yb))
        losses.append(info.loss)
        traces.append(info.energy_trace)
        if i == 0:
            jax.block_until_ready(info)
            first = time.perf_counter() - start
    step.check()  # a failed step's error, before its epoch is reported
    losses = np.asarray(jax.device_get(jnp.stack(losses)))
    energy = np.asarray(jax.device_get(jnp.mean(jnp.stack(traces), axis=0)))
    seconds = time.perf_counter() - start
    return state, EpochStats(float(losses.mean()), seconds, len(pieces), first, energy)


def supervised_batch(num_classes: int) -> Callable[[np.ndarray, np.ndarray], dict]:
    """Batch maker for discriminative graphs: images to `"x"`, one-hot labels to `"y"`."""

    def make(xb: np.ndarray, yb: np.ndarray) -> dict:
        return {"x": jnp.asarray(xb), "y": jnp.asarray(one_hot(yb, num_classes))}

    return make


@eqx.filter_jit
def _forward_output(graph: PCGraph, x: jax.Array, output: str) -> jax.Array:
    return forward_init(graph, {"x": x})[output]


def predict(graph: PCGraph, x: np.ndarray, *, output: str = "y", chunk: int = 2000) -> np.ndarray:
    """Output of a DAG model by forward initialisation (zero energy), in chunks."""
    parts = [
        np.asarray(_forward_output(graph, jnp.asarray(x[i : i + chunk]), output))
        for i in range(0, len(x), chunk)
    ]
    return np.concatenate(parts)


def accuracy(graph: PCGraph, x: np.ndarray, y: np.ndarray, *, output: str = "y") -> float:
    """Fraction of examples whose forward prediction's argmax equals the label.

    Raises:
        ValueError: no examples, labels that are not one class index per example, or
            class indices the output node cannot predict.
    """
    y = np.asarray(y)
    if len(x) == 0:
        raise ValueError("`accuracy` needs at least one example; got an empty `x`.")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"`y` must hold one class index per example of `x` ({len(x)}), got shape {y.shape}."
        )
    classes = graph.node(output).shape[-1]
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes:
        raise ValueError(
            f"`y` must be class indices in range(0, {classes}) (the width of node {output!r}), "
            f"got {y.dtype} values from {y.min()} to {y.max()}."
        )
    return float(np.mean(np.argmax(predict(graph, x, output=output), axis=-1) == y))


@eqx.filter_jit
def _reconstruct(graph: PCGraph, x: jax.Array, steps: int, gamma: float, latent: str):
    values = forward_init(graph, {"x": x})
    relaxed = infer(graph, values, clamp={"x": True}, stop=steps, gamma=gamma)
    decoded = forward_init(graph, {latent: relaxed.values[latent]})
    return decoded["x"], relaxed.energy_trace


def reconstruct(
    graph: PCGraph,
    x: np.ndarray,
    *,
    steps: int,
    gamma: float,
    latent: str = "z",
    chunk: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Reconstruct data with a generative graph: clamp `"x"`, infer every other node for
    `steps` steps, then decode the inferred top latent with a forward pass.

    Returns the reconstructions and the mean energy trace of inference.
    """
    outs, traces = [], []
    for i in range(0, len(x), chunk):
        rec, trace = _reconstruct(graph, jnp.asarray(x[i : i + chunk]), steps, gamma, latent)
        outs.append(np.asarray(rec))
        traces.append(np.asarray(trace))
    return np.concatenate(outs), np.mean(traces, axis=0)
