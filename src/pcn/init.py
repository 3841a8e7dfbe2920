"""Starting values of the value nodes (the "initialisation" of inference).

An initialiser is an `AbstractInitialiser`: `init(graph, provided, *, key) -> values`,
where `provided` holds the values of the nodes the caller gives (data, labels, queries)
and the result holds a value for every node of the graph. A new initialiser is one
subclass; `starts_at_prediction` tells the relaxation engine that every node that is not
provided starts at its prediction (zero error), which lets it skip work.

The Faster-PC paper's initialisers (Sections 3-4): random (`normal_init`, I_N), zero
(`zeros_init`, I_0), forward (`forward_init`, I_fw), and three that carry values from one
training batch to the next, `AbstractCarryingInitialiser`s: null (`NullInit`, I_null:
the previous batch's relaxed values), average (`AverageInit`, I_avg, Eq. 7: their mean
over the examples of each class; Eq. 10's hybrid with `forward_layers`) and memory-based
(`MemoryInit`, I_mem: a modern Hopfield layer per node, trained on the relaxed values).
Their carry lives in the training state (`TrainStep.init(graph, batch=first_batch)`),
so a step stays one compiled program and a checkpoint holds it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._validation import check_at_least, check_positive
from .graph import PCGraph, Values
from .typing import Key, ValuesIn


class AbstractInitialiser(eqx.Module):
    """Starting values for every node, from the provided ones."""

    # every node that is not provided starts at the mean of its prediction
    starts_at_prediction: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        """`{name: (batch, *shape)}` for every node of `graph`; provided nodes keep theirs."""


def batch_size_of(provided: Mapping[str, jax.Array]) -> int:
    """The batch size shared by the provided values."""
    sizes = {name: v.shape[0] for name, v in provided.items()}
    if not sizes:
        raise ValueError("No node values were provided, so the batch size is unknown.")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Provided values disagree on the batch size: {sizes}.")
    return next(iter(sizes.values()))


class ForwardInit(AbstractInitialiser):
    """Every node at the mean of its prediction, in topological order (DAG only).

    Provided nodes keep their values; free roots start at `root_init(shape)` (zeros).
    All errors of the nodes that are not provided are then zero, so a network whose
    only provided node is its input sits at zero energy ("forward initialisation").
    """

    root_init: Callable[[tuple[int, ...]], jax.Array] = eqx.field(static=True, default=jnp.zeros)
    starts_at_prediction: ClassVar[bool] = True

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        if graph.order is None:
            raise ValueError(
                "Forward initialisation needs a DAG (Faster-PC paper, Proposition 3.2: each "
                "node starts at the prediction of its parents, so none may depend on "
                f"itself), but this graph has a cycle ({graph.cycle_hint()}); use "
                "`zeros_init` or `normal_init`, or in training `NullInit()` or "
                "`MemoryInit()`, instead."
            )
        batch = batch_size_of(provided)
        values: Values = {}
        for name in graph.order:
            node = graph.node(name)
            if name in provided:
                values[name] = provided[name]
            elif graph.incoming(name):
                # the provided values travel along: a prior edge (`Bias`, no parents) on
                # a root that comes first takes its batch size from them
                known = {**provided, **values}
                values[name] = node.energy.mean(graph.predict(known, name))
            else:
                values[name] = self.root_init((batch, *node.shape))
        return values


class ZerosInit(AbstractInitialiser):
    """Provided nodes keep their values; every other node starts at zero."""

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        batch = batch_size_of(provided)
        return {
            n.name: provided[n.name] if n.name in provided else jnp.zeros((batch, *n.shape))
            for n in graph.nodes
        }


class NormalInit(AbstractInitialiser):
    """Provided nodes keep their values; every other node starts at N(0, std^2)."""

    std: float = eqx.field(static=True, default=0.1)

    def __check_init__(self) -> None:
        check_positive("std", self.std, hint="e.g. `NormalInit(std=0.1)`.")

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        if key is None:
            raise ValueError("`normal_init` draws random values: pass `key=jax.random.key(...)`.")
        batch = batch_size_of(provided)
        keys = jax.random.split(key, len(graph.nodes))
        return {
            n.name: provided[n.name]
            if n.name in provided
            else self.std * jax.random.normal(k, (batch, *n.shape))
            for n, k in zip(graph.nodes, keys, strict=True)
        }


forward_init = ForwardInit()
zeros_init = ZerosInit()
normal_init = NormalInit()


class AbstractCarryingInitialiser(AbstractInitialiser):
    """An initialiser that carries values from one training batch to the next.

    `start` gives the carry before the first batch, `initialise` the starting values of a
    batch from it, `advance` the carry after the batch relaxed. IL with such an
    initialiser trains through `make_train_step`, whose state holds the carry. Called
    as a plain initialiser (outside training: evaluation, queries) it is forward
    initialisation, the paper's choice for evaluating classifiers.
    """

    @abc.abstractmethod
    def start(self, graph: PCGraph, batch: ValuesIn, *, key: Key | None = None) -> Any:
        """The carry before `batch`, the first batch (a pytree of arrays)."""

    @abc.abstractmethod
    def initialise(
        self, carry: Any, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None
    ) -> Values:
        """The starting values of a batch from the carry."""

    @abc.abstractmethod
    def advance(self, carry: Any, graph: PCGraph, provided: ValuesIn, relaxed: Values) -> Any:
        """The carry after the batch `provided` relaxed to `relaxed`."""

    def __call__(self, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None) -> Values:
        return forward_init(graph, provided)


def _first_start(graph: PCGraph, batch: ValuesIn) -> Values:
    """Where a carrying initialiser's first batch starts: its forward pass, or zeros on a
    graph with a cycle (which has none)."""
    return (forward_init if graph.order is not None else zeros_init)(graph, batch)


def _free_values(graph: PCGraph, provided: ValuesIn, values: Mapping[str, jax.Array]) -> Values:
    return {n.name: values[n.name] for n in graph.nodes if n.name not in provided}


def _check_carried(carry: Mapping[str, jax.Array], provided: ValuesIn, who: str) -> None:
    """The carried values must be those of this batch's free nodes, at its batch size."""
    batch = batch_size_of(provided)
    for name, value in carry.items():
        if name in provided:
            raise ValueError(
                f"{who} carries values of node {name!r}, which this batch provides: every batch "
                "must provide the same nodes as the first."
            )
        if value.shape[0] != batch:
            raise ValueError(
                f"{who} carries batches of {value.shape[0]} examples, but this batch has "
                f"{batch}: every batch must have the first one's size (drop the last, short "
                "batch: `pcn.data.batches(..., drop_last=True)`)."
            )


class NullInit(AbstractCarryingInitialiser):
    """I_null: every free node starts at its relaxed value of the previous batch (row i at
    row i's); the first batch at its forward pass (Faster-PC paper, Section 4), or at
    zero on a graph with a cycle."""

    def start(self, graph: PCGraph, batch: ValuesIn, *, key: Key | None = None) -> Values:
        return _free_values(graph, batch, _first_start(graph, batch))

    def initialise(
        self, carry: Values, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None
    ) -> Values:
        _check_carried(carry, provided, "NullInit")
        return {**carry, **provided}

    def advance(self, carry: Values, graph: PCGraph, provided: ValuesIn, relaxed: Values) -> Values:
        return _free_values(graph, provided, relaxed)


class AverageInit(AbstractCarryingInitialiser):
    """I_avg (Faster-PC paper, Eq. 7): every free node of example i starts at the mean of
    the previous batch's relaxed values over its examples of i's class.

    The class of an example is the argmax of the provided node `labels` (one-hot or
    class probabilities), so the labels must be in every batch. The means are a segment
    sum and a gather, no matrix product: the initialisation adds no SMM. A class absent
    from the previous batch starts at that batch's mean over all examples (with
    stream-aligned batches, `pcn.data.stream_aligned_batches`, every class is in every
    batch). The carry before the first batch is the first batch's forward pass, so the
    first batch starts at the class means of its own forward pass.

    `forward_layers=m` is the paper's hybrid (Eq. 10): the first m free nodes in
    topological order (the first m hidden layers of an MLP) start at their forward
    prediction instead, which costs m sequential products.
    """

    labels: str = eqx.field(static=True, default="y")
    forward_layers: int = eqx.field(static=True, default=0)

    def __check_init__(self) -> None:
        if isinstance(self.forward_layers, bool) or not isinstance(self.forward_layers, int):
            raise TypeError(f"`forward_layers` must be an int, got {self.forward_layers!r}.")
        if self.forward_layers < 0:
            raise ValueError(
                f"`forward_layers` (m of Eq. 10) must lie in [0, L], got {self.forward_layers}."
            )

    def _classes(self, graph: PCGraph, provided: ValuesIn) -> tuple[jax.Array, int]:
        if self.labels not in provided:
            raise ValueError(
                f"AverageInit averages over classes read from node {self.labels!r}, which this "
                f"batch does not provide (it gives {sorted(provided)}): put the labels in "
                "every training batch, or name the label node, `AverageInit(labels=...)`."
            )
        onehot = provided[self.labels]
        return jnp.argmax(onehot, axis=-1), onehot.shape[-1]

    def start(self, graph: PCGraph, batch: ValuesIn, *, key: Key | None = None) -> Any:
        classes, _ = self._classes(graph, batch)
        return _free_values(graph, batch, _first_start(graph, batch)), classes

    def initialise(
        self, carry: Any, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None
    ) -> Values:
        values, before = carry
        _check_carried(values, provided, "AverageInit")
        classes, count = self._classes(graph, provided)
        members = jax.ops.segment_sum(jnp.ones_like(before), before, num_segments=count)
        present = (members > 0)[classes]
        out = {}
        for name, value in values.items():
            sums = jax.ops.segment_sum(value, before, num_segments=count)
            shape = (-1,) + (1,) * (value.ndim - 1)
            means = sums / jnp.maximum(members, 1).reshape(shape).astype(value.dtype)
            overall = jnp.mean(value, axis=0, keepdims=True)
            out[name] = jnp.where(present.reshape(shape), means[classes], overall)
        return self._forward_first(graph, {**out, **provided}, provided)

    def _forward_first(self, graph: PCGraph, values: Values, provided: ValuesIn) -> Values:
        """Eq. 10: the first `forward_layers` free nodes at their forward prediction."""
        if not self.forward_layers:
            return values
        if graph.order is None:
            raise ValueError(
                "AverageInit(forward_layers=...) starts layers at their forward prediction, "
                "which needs a DAG; this graph has a cycle: use forward_layers=0."
            )
        free = [name for name in graph.order if name not in provided]
        if self.forward_layers > len(free):
            raise ValueError(
                f"`forward_layers` (m of Eq. 10) must lie in [0, L]: this graph has "
                f"L = {len(free)} free nodes, got m = {self.forward_layers}."
            )
        for name in free[: self.forward_layers]:
            values[name] = graph.node(name).energy.mean(graph.predict(values, name))
        return values

    def advance(self, carry: Any, graph: PCGraph, provided: ValuesIn, relaxed: Values) -> Any:
        classes, _ = self._classes(graph, provided)
        return _free_values(graph, provided, relaxed), classes


class Hopfield(eqx.Module):
    """One modern Hopfield layer of `MemoryInit` (Eq. 8), with one or more heads: each
    head h answers softmax(beta (o Q_h + b_h) K_h^T) and the heads' weights, side by
    side, read the stored values V."""

    query: jax.Array  # Q: (observation width, heads, key width)
    bias: jax.Array  # b: (heads, key width)
    keys: jax.Array  # K: (heads, patterns, key width)
    values: jax.Array  # V: (heads * patterns, node width)

    def attention(self, observations: jax.Array, beta: float) -> jax.Array:
        """A of the paper: (batch, heads * patterns), each head's softmax weights."""
        queries = jnp.einsum("bw,whk->bhk", observations, self.query) + self.bias[None]
        scores = jnp.einsum("bhk,hpk->bhp", queries, self.keys)
        weights = jax.nn.softmax(beta * scores, axis=-1)
        return weights.reshape(observations.shape[0], -1)

    def __call__(self, observations: jax.Array, beta: float) -> jax.Array:
        return self.attention(observations, beta) @ self.values


class MemoryInit(AbstractCarryingInitialiser):
    """I_mem (Faster-PC paper, Section 4.2, Eqs. 8-9, Algorithm 2): free nodes start at
    the answer of their own modern Hopfield layer to the batch's observations o (the
    provided values, concatenated), softmax(beta (o Q + b) K^T) V.

    By default every free node has a layer. With `nodes`, only those do and every other
    free node starts at its prediction from them and the provided values (a forward
    pass, DAG only): the paper's generative decoder keeps one memory for its latent,
    `MemoryInit(nodes=("z",), patterns=24, heads=16, key_width=8, beta=200.0)`.

    The layers are the carry: after each batch one step of `optimizer` lowers Eq. 9's
    squared error between their answers and the relaxed values. Q, b and K start random
    (`TrainStep.init(..., key=)`), V at the least-squares fit A^+ h_fw of the first
    batch's forward pass, so I_mem starts where I_fw does. Its answers cost 3 sequential
    products before the relaxation and Eq. 9's gradient reaches Q two products after it:
    with a layer on every node a step's SMMs (`pcn.cost.step_smm`) are 2T + 5, against
    2T + 1 from zero; a forward pass from `nodes` adds its depth.
    """

    patterns: int = eqx.field(static=True, default=64)
    key_width: int = eqx.field(static=True, default=32)
    beta: float = eqx.field(static=True, default=1.0)
    optimizer: optax.GradientTransformation = eqx.field(
        static=True, default_factory=lambda: optax.adam(1e-3)
    )
    heads: int = eqx.field(static=True, default=1)
    nodes: tuple[str, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        for name in ("patterns", "key_width", "heads"):
            check_at_least(name, getattr(self, name), 1)
        check_positive("beta", self.beta, hint="the inverse temperature delta, e.g. 1.0.")
        if self.nodes is not None and (isinstance(self.nodes, str) or not self.nodes):
            raise ValueError(
                f"`nodes` names the nodes that get a Hopfield layer, as a non-empty tuple "
                f"(e.g. nodes=('z',)), got {self.nodes!r}; leave it None for every free node."
            )

    @staticmethod
    def _observations(provided: ValuesIn) -> jax.Array:
        return jnp.concatenate(
            [v.reshape(v.shape[0], -1) for _, v in sorted(provided.items())], axis=1
        )

    def _remembered(self, graph: PCGraph, provided: ValuesIn) -> tuple[str, ...]:
        """The free nodes with a Hopfield layer (checked against the graph)."""
        free = tuple(sorted(n.name for n in graph.nodes if n.name not in provided))
        if self.nodes is None:
            return free
        wrong = [n for n in self.nodes if n not in free]
        if wrong:
            raise ValueError(
                f"MemoryInit(nodes=...) names {wrong}, which are not free nodes of this "
                f"batch; the free nodes are {list(free)}."
            )
        if graph.order is None:
            raise ValueError(
                "MemoryInit(nodes=...) starts the other free nodes by a forward pass, which "
                f"needs a DAG, but this graph has a cycle ({graph.cycle_hint()}); leave "
                "`nodes` None to give every free node a Hopfield layer."
            )
        return tuple(sorted(self.nodes))

    def start(self, graph: PCGraph, batch: ValuesIn, *, key: Key | None = None) -> Any:
        if key is None:
            raise ValueError(
                "MemoryInit draws its Hopfield layers' query and key matrices at random: "
                "pass a key, `step.init(graph, batch=first_batch, key=jax.random.key(0))`."
            )
        o = self._observations(batch)
        forward = _free_values(graph, batch, _first_start(graph, batch))
        names = self._remembered(graph, batch)
        width, kw, heads = o.shape[1], self.key_width, self.heads
        layers = {}
        for name, k in zip(names, jax.random.split(key, len(names)), strict=True):
            kq, kk = jax.random.split(k)
            h = forward[name].reshape(o.shape[0], -1)
            # drawn flat, so that one head draws what the one-head layer always did
            query = jax.random.normal(kq, (width, heads * kw), o.dtype) / jnp.sqrt(width)
            keys = jax.random.normal(kk, (heads * self.patterns, kw), o.dtype) / jnp.sqrt(kw)
            layer = Hopfield(
                query.reshape(width, heads, kw),
                jnp.zeros((heads, kw), o.dtype),
                keys.reshape(heads, self.patterns, kw),
                jnp.zeros((heads * self.patterns, h.shape[1]), o.dtype),
            )
            fitted = jnp.linalg.pinv(layer.attention(o, self.beta)) @ h
            layers[name] = eqx.tree_at(lambda m: m.values, layer, fitted)
        return layers, self.optimizer.init(layers)

    def initialise(
        self, carry: Any, graph: PCGraph, provided: ValuesIn, *, key: Key | None = None
    ) -> Values:
        layers, _ = carry
        o = self._observations(provided)
        out = {
            name: layer(o, self.beta).reshape(o.shape[0], *graph.node(name).shape)
            for name, layer in layers.items()
        }
        if self.nodes is None:
            return {**out, **provided}
        return forward_init(graph, {**out, **provided})  # the rest from the answers

    def advance(self, carry: Any, graph: PCGraph, provided: ValuesIn, relaxed: Values) -> Any:
        layers, opt_state = carry
        o = self._observations(provided)
        targets = {n: jax.lax.stop_gradient(relaxed[n]).reshape(o.shape[0], -1) for n in layers}

        def loss(layers):  # Eq. 9, per example
            errors = [jnp.sum((layers[n](o, self.beta) - targets[n]) ** 2) for n in layers]
            return sum(errors) / o.shape[0]

        grads = jax.grad(loss)(layers)
        updates, opt_state = self.optimizer.update(grads, opt_state, layers)
        return optax.apply_updates(layers, updates), opt_state
