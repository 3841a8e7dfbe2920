"""One trained PC graph, many tasks (thesis section 5.2): thin queries on named groups.

- `classify`: fix the pixels, read the label neurons (conditioning, Eq. 5.5).
- `generate`: fix the one-hot label, read the sensory neurons (conditioning).
- `complete`: fix the known pixels (and optionally the label, section 5.4), read the
  rest (conditioning), or only start from them (`by="initialisation"`, Eq. 5.6).
- `denoise`: start the sensory neurons at the noisy image and relax all (Eq. 5.6).

Every task returns the answer and the query's `pcn.Inference` (steps taken, energy,
convergence). Keyword arguments of the query (`stop`, `gamma`, `value_optimizer`, ...)
pass through to `condition` / `initialise`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..graph import PCGraph
from ..inference import Inference
from ..typing import Labels, Mask, NodeArray, OneHot
from .query import condition, initialise
from .topology import LABEL, SENSORY


class TaskResult(NamedTuple):
    """The answer of a task and the query that produced it."""

    output: NodeArray
    query: Inference


def one_hot(labels: Labels, n_labels: int) -> OneHot:
    """Class indices `(batch,)` as one-hot `(batch, n_labels)`; one-hot input is checked.

    Raises:
        ValueError: labels out of range, or one-hot rows of the wrong width.
    """
    labels = jnp.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != n_labels:
            raise ValueError(
                f"Got labels with {labels.shape[1]} classes, but the graph has {n_labels} "
                "label neurons; the label count must match."
            )
        return labels
    if labels.ndim != 1 or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"Labels must be class indices (batch,) or one-hot (batch, {n_labels}), "
            f"got shape {labels.shape} of {labels.dtype}."
        )
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n_labels):
        raise ValueError(
            f"Class indices must lie in range(0, {n_labels}) (the graph has {n_labels} label "
            f"neurons), got values from {int(labels.min())} to {int(labels.max())}."
        )
    return jax.nn.one_hot(labels, n_labels)


def _n_labels(graph: PCGraph, label: str) -> int:
    if label not in graph.names:
        raise ValueError(f"The graph has no label group {label!r}; nodes are {list(graph.names)}.")
    return graph.node(label).shape[0]


def classify(
    graph: PCGraph,
    inputs: NodeArray,
    *,
    sensory: str = SENSORY,
    label: str = LABEL,
    read: str = "value",
    **relax: Any,
) -> TaskResult:
    """Class indices `(batch,)` with the pixels fixed, from the relaxed label neurons.

    `read="value"` (the thesis's readout) takes the argmax of the label neurons' values;
    `read="prediction"` the argmax of their prediction mu (Eq. 5.1) at the same
    equilibrium: what the rest of the graph says the label is, without the label's own
    pull towards explaining the pixels.
    """
    _check_read(read)
    _n_labels(graph, label)
    result = condition(graph, {sensory: inputs}, **relax)
    return TaskResult(read_label(graph, result.values, label=label, read=read), result)


def read_label(
    graph: PCGraph, values: Mapping[str, jax.Array], *, label: str = LABEL, read: str = "value"
) -> jax.Array:
    """Class indices `(batch,)` from relaxed `values`: the argmax of the label neurons'
    values (`read="value"`) or of their prediction mu (`read="prediction"`); one query
    can be read both ways."""
    _check_read(read)
    scores = values[label] if read == "value" else graph.predict(values, label)
    return jnp.argmax(scores, axis=-1)


def _check_read(read: str) -> None:
    if read not in ("value", "prediction"):
        raise ValueError(f"`read` must be 'value' or 'prediction', got {read!r}.")


def generate(
    graph: PCGraph,
    labels: Labels,
    *,
    sensory: str = SENSORY,
    label: str = LABEL,
    **relax: Any,
) -> TaskResult:
    """Sensory values `(batch, d)` generated with the one-hot label fixed."""
    target = one_hot(labels, _n_labels(graph, label))
    result = condition(graph, {label: target}, **relax)
    return TaskResult(result.values[sensory], result)


def complete(
    graph: PCGraph,
    inputs: NodeArray,
    known: Mask,
    *,
    labels: Labels | None = None,
    by: str = "condition",
    sensory: str = SENSORY,
    label: str = LABEL,
    **relax: Any,
) -> TaskResult:
    """Sensory values with the missing part (`known` False) filled in.

    `by="condition"` fixes the known pixels (and the label if `labels` is given);
    `by="initialisation"` only starts the sensory neurons at `inputs` (unknown pixels at
    zero), so no pixel is taken as certain.
    """
    inputs = jnp.asarray(inputs)
    known = jnp.asarray(known, dtype=bool)
    provided: dict[str, jax.Array] = {}
    if labels is not None:
        provided[label] = one_hot(labels, _n_labels(graph, label))
    if by == "condition":
        provided[sensory] = inputs
        result = condition(graph, provided, clamp={sensory: known}, **relax)
    elif by == "initialisation":
        start = {sensory: jnp.where(known, inputs, 0.0)}
        if provided:
            result = condition(graph, provided, start=start, **relax)
        else:
            result = initialise(graph, start, **relax)
    else:
        raise ValueError(f"`by` must be 'condition' or 'initialisation', got {by!r}.")
    return TaskResult(result.values[sensory], result)


def denoise(
    graph: PCGraph,
    noisy: NodeArray,
    *,
    sensory: str = SENSORY,
    **relax: Any,
) -> TaskResult:
    """Sensory values relaxed from the noisy input (query by initialisation, Eq. 5.6)."""
    result = initialise(graph, {sensory: noisy}, **relax)
    return TaskResult(result.values[sensory], result)
