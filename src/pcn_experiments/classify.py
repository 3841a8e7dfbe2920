"""Training one image classifier with any algorithm and recording what comparisons of
training algorithms need: accuracy at every evaluation with the weight updates, the
measured SMMs and the training seconds behind it (the Faster-PC paper's Table 1 and
Fig. 6, the thesis's Table 2.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

import pcn
from pcn.algorithms import TrainStep
from pcn.cost import step_smm
from pcn.data import Dataset, stream_aligned_batches
from pcn.data import batches as data_batches
from pcn.training import accuracy, supervised_batch

from .registry import RunContext
from .trainer import fit, train_step_learner


@dataclasses.dataclass(frozen=True)
class MethodRun:
    """One trained model: its evaluations (test accuracy, and validation accuracy when a
    validation set was given), each with the steps, measured SMMs and training seconds
    behind it."""

    accuracy: list[float]  # %
    steps: list[int]
    smm: list[int]
    seconds: list[float]
    validation: list[float] | None = None  # %

    @property
    def best(self) -> float:
        return max(self.accuracy)

    @property
    def early_stopped(self) -> float:
        """The test accuracy at the best validation accuracy (the first, on ties)."""
        if self.validation is None:
            raise ValueError("early stopping needs a validation set; none was evaluated")
        return self.accuracy[int(np.argmax(self.validation))]

    def first_reaching(self, target: float, along: Sequence[float]) -> float | None:
        """`along` at the first evaluation whose accuracy is at least `target`."""
        for acc, cost in zip(self.accuracy, along, strict=True):
            if acc >= target:
                return cost
        return None


def image_graph(
    architecture: str,
    ds: Dataset,
    *,
    hidden: Sequence[int],
    channels: Sequence[int],
    activation: str,
    key: jax.Array,
) -> pcn.PCGraph:
    """An MLP (`hidden` widths) or a CNN (`pcn.cnn`: 3x3 convolutions of `channels`,
    the dense layer `hidden[-1]`) for the images of `ds`."""
    if architecture == "cnn":
        # grayscale sets store (height, width): one channel
        shape = ds.image_shape if len(ds.image_shape) == 3 else (1, *ds.image_shape)
        return pcn.cnn(
            shape, channels=tuple(channels), hidden=hidden[-1],
            classes=ds.num_classes, activation=activation, key=key,
        )  # fmt: skip
    sizes = (int(np.prod(ds.image_shape)), *hidden, ds.num_classes)
    return pcn.mlp(sizes, activation=activation, key=key)


def train_classifier(
    ctx: RunContext,
    ds: Dataset,
    graph: pcn.PCGraph,
    algorithm: pcn.AbstractAlgorithm,
    optimizer: optax.GradientTransformation,
    *,
    epochs: int,
    batch_size: int,
    evals_per_epoch: int,
    seed: int,
    label: str,
    stream_aligned: bool = False,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    compiled: dict[Any, TrainStep] | None = None,
    compiled_key: Any = None,
) -> tuple[MethodRun, int]:
    """Train `graph` by `algorithm` on `ds`'s training set (shuffled batches, or
    stream-aligned ones), evaluating on its test set (and on `validation`) by the forward
    pass; returns the run and the measured SMMs per weight update.

    `compiled` keeps the step made for `compiled_key` (naming the algorithm and
    optimiser) and this graph's structure and shapes, for later runs of the same (other
    seeds, data fractions): they reuse its compiled program instead of compiling their
    own; a graph of another shape (another dataset) gets its own step."""
    # arrays by shape (their values are the run's), anything else (the step keeps it as
    # static) by value
    leaves = tuple(
        (leaf.shape, leaf.dtype) if eqx.is_array(leaf) else leaf for leaf in jax.tree.leaves(graph)
    )
    key = (compiled_key, jax.tree.structure(graph), leaves)
    if compiled is not None and key in compiled:
        step = compiled[key]
    else:
        step = pcn.make_train_step(graph, algorithm, optimizer)
        if compiled is not None:
            compiled[key] = step
    supervised = supervised_batch(ds.num_classes)
    # a CNN sees images as (channels, height, width); the dataset stores them flat
    shape = tuple(graph.node("x").shape)

    def images(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), *shape)

    def make(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        return supervised(images(x), y)

    def order(epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        key = seed * 1000 + epoch
        if stream_aligned:
            aligned = stream_aligned_batches(
                ds.x_train, ds.y_train, batch_size, key_or_seed=key, num_classes=ds.num_classes
            )
            return list(aligned)
        return list(data_batches(ds.x_train, ds.y_train, batch_size, key_or_seed=key))

    def evaluate(g: pcn.PCGraph) -> dict[str, float]:
        scores = {"accuracy": accuracy(g, images(ds.x_test), ds.y_test)}
        if validation is not None:
            scores["validation"] = accuracy(g, images(validation[0]), validation[1])
        return scores

    learner = train_step_learner(
        step, graph, order, lambda b: make(*b), evaluate, key=jax.random.key(seed)
    )
    measured = step_smm(step, learner.init(), make(*order(0)[0]))
    result = fit(learner, epochs=epochs, ctx=ctx, label=label, evals_per_epoch=evals_per_epoch)
    h = result.history
    run = MethodRun(
        accuracy=[100 * a for a in h["accuracy"]],
        steps=list(h["step"]),
        smm=[measured * s for s in h["step"]],
        seconds=list(h["seconds"]),
        validation=None if validation is None else [100 * a for a in h["validation"]],
    )
    return run, measured
