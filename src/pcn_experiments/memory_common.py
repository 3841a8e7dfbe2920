"""What the associative-memory experiments share (thesis chapter 4): image loading and
pooling, the hierarchical PC memory stored by Algorithm 6 through `fit` (so a long
storage resumes), the iterated autoencoder baseline trained through `fit`, tuning a
baseline on the keys, timing a recall, and the results tree
`<field>.<model>.<dataset>.<N>.<key>`."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

import pcn
from pcn._validation import check_at_least, check_positive
from pcn.associative import generative, scores
from pcn.associative.keys import Key
from pcn.associative.protocol import Memory, Recall
from pcn.baselines import autoencoder
from pcn.models import mlp

from .common import check_settings, load_subset
from .registry import RunContext
from .trainer import Learner, fit, train_step_learner


@dataclasses.dataclass(frozen=True)
class MemorySettings:
    """The data and the PC memory's storage (Algorithm 6) and retrieval settings."""

    dataset: str  # "tiny-imagenet-val" or "cifar10-png"
    side: int  # image side after average pooling (64: Tiny ImageNet's own)
    top: int  # width of the top code (the free root of the generative network)
    store_steps: int  # cap of Algorithm 6's steps
    store_tol: float  # stop once the mean energy per image changes by less in a step
    store_chunk: int  # steps between checkpoints
    store_value_rate: float  # Adam on each image's hidden values while storing
    store_weight_rate: float  # Adam on the weights while storing
    relax_steps: int  # cap of a retrieval's relaxation
    relax_tol: float
    relax_rate: float  # Adam on the values at retrieval

    def __post_init__(self) -> None:
        check_settings(self)
        for name in ("side", "top", "store_steps", "store_chunk", "relax_steps"):
            check_at_least(name, getattr(self, name), 1)
        for name in ("store_value_rate", "store_weight_rate", "relax_rate"):
            check_positive(name, getattr(self, name))
        for name in ("store_tol", "relax_tol"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)!r}.")
        if self.dataset not in DATASETS:
            raise ValueError(f"`dataset` must be one of {sorted(DATASETS)}, got {self.dataset!r}.")
        native = DATASETS[self.dataset]
        if native % self.side:
            raise ValueError(
                f"`side` {self.side} must divide {self.dataset}'s image side {native} "
                "(images are average-pooled by whole blocks)."
            )


@dataclasses.dataclass(frozen=True)
class AutoencoderSettings:
    """The iterated BP autoencoder set beside the PC memory."""

    autoencoder_epochs: int  # passes over the images
    autoencoder_batch: int  # images per Adam step
    autoencoder_rate: float
    autoencoder_iterations: tuple[int, ...]  # iterations as a memory, tuned per key type

    def __post_init__(self) -> None:
        check_at_least("autoencoder_epochs", self.autoencoder_epochs, 1)
        check_at_least("autoencoder_batch", self.autoencoder_batch, 1)
        check_positive("autoencoder_rate", self.autoencoder_rate)
        for it in self.autoencoder_iterations:
            check_at_least("autoencoder_iterations", it, 1)


DATASETS = {"tiny-imagenet-val": 64, "cifar10-png": 32}

# the storage and retrieval settings every full run shares (64x64 Tiny ImageNet, a top
# code of 64: F keeps about top / d of a key's noise, so the code is kept narrow)
STORAGE: dict[str, Any] = {
    "dataset": "tiny-imagenet-val",
    "side": 64,
    "top": 64,
    "store_steps": 3000,
    "store_tol": 1e-6,
    "store_chunk": 500,
    "store_value_rate": 0.05,
    "store_weight_rate": 1e-3,
    "relax_steps": 500,
    "relax_tol": 1e-6,
    "relax_rate": 0.01,
}
AUTOENCODER: dict[str, Any] = {
    "autoencoder_epochs": 500,
    "autoencoder_batch": 25,
    "autoencoder_rate": 1e-3,
    "autoencoder_iterations": (1, 10, 50),
}
# what every quick run changes of them (under two minutes on two cores)
QUICK_STORAGE: dict[str, Any] = {
    "side": 16,
    "top": 16,
    "store_steps": 600,
    "store_chunk": 300,
    "relax_steps": 300,
}
QUICK_AUTOENCODER: dict[str, Any] = {"autoencoder_epochs": 200, "autoencoder_iterations": (1, 10)}
AUTOENCODER_CHUNK = 50  # epochs of autoencoder training between checkpoints


def check_grid(name: str, values: tuple[int, ...]) -> None:
    """A grid setting must list at least one value, each a positive integer."""
    if not values:
        raise ValueError(f"`{name}` is empty; list at least one value, e.g. --set {name}=100.")
    for v in values:
        check_at_least(name, v, 1)


def check_fractions(fractions: tuple[float, ...]) -> None:
    if not fractions:
        raise ValueError("`fractions` is empty; e.g. --set fractions=0.5,0.25.")
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(
                f"`fractions` (shares of the pixels a partial key gives) must lie in (0, 1], "
                f"got {fractions!r}."
            )


def pool(x: np.ndarray, shape: tuple[int, ...], factor: int) -> tuple[np.ndarray, tuple]:
    """Flattened channel-first images `(N, c*h*w)` averaged over `factor` x `factor`
    blocks, and their new shape."""
    if factor == 1:
        return x, shape
    c, h, w = shape
    pooled = x.reshape(-1, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))
    return pooled.reshape(len(x), -1).astype(x.dtype), (c, h // factor, w // factor)


def load_images(ctx: RunContext, settings: MemorySettings, n: int) -> tuple[np.ndarray, tuple]:
    """The first `n` images of a seeded shuffle of the dataset, flattened, pooled to
    `settings.side`, float32 in [0, 1]; smaller N of a grid are their first rows."""
    ds = load_subset(settings.dataset, ctx, train=n, test=1)
    if len(ds.x_train) < n:
        raise ValueError(
            f"{settings.dataset} has {len(ds.x_train)} images, fewer than the {n} asked for; "
            f"lower `images` to at most {len(ds.x_train)}."
        )
    x = ds.x_train.reshape(len(ds.x_train), -1).astype(np.float32)
    return pool(x, tuple(ds.image_shape), DATASETS[settings.dataset] // settings.side)


def pc_memory(
    pixels: int,
    layers: int,
    width: int,
    settings: MemorySettings,
    seed: int,
    completion: generative.Completion = "relax",
) -> generative.GenerativeMemory:
    """A generative PC memory: a top code of `settings.top`, then `layers` ReLU layers
    of `width`, then the (linear) sensory layer; retrieval relaxes with Adam."""
    return generative.generative_memory(
        pixels,
        (settings.top, *[width] * layers),
        stop=pcn.Tolerance(settings.relax_tol, settings.relax_steps),
        value_optimizer=optax.adam(settings.relax_rate),
        completion=completion,
        key=jax.random.key(seed),
    )


class _Stored(NamedTuple):
    loss: jax.Array  # mean energy per image before the chunk's last step


def store(
    ctx: RunContext,
    memory: generative.GenerativeMemory,
    x: np.ndarray,
    settings: MemorySettings,
    label: str,
) -> tuple[generative.GenerativeMemory, dict[str, Any]]:
    """Store `x` by Algorithm 6 in chunks of `store_chunk` steps, each a `fit` epoch
    (checkpointed: `--resume` continues a storage); returns the memory and a record."""
    images = jax.numpy.asarray(x)

    def init() -> generative.Storing:
        return generative.start_storing(
            memory,
            images,
            value_optimizer=optax.adam(settings.store_value_rate),
            weight_optimizer=optax.adam(settings.store_weight_rate),
        )

    def step(storing: generative.Storing, _: Any) -> tuple[generative.Storing, _Stored]:
        storing = generative.store_more(
            storing, images, steps=settings.store_chunk, tol=settings.store_tol
        )
        return storing, _Stored(storing.energy)

    learner: Learner = Learner(init=init, step=step, batches=lambda epoch: [None])
    epochs = math.ceil(settings.store_steps / settings.store_chunk)
    start = time.perf_counter()
    result = fit(learner, epochs=epochs, ctx=ctx, label=label, keep=2)
    storing: generative.Storing = result.state
    return generative.stored(memory, storing), {
        "steps": int(storing.steps),
        "energy": float(storing.energy),
        "converged": storing.converged(settings.store_tol),
        "seconds": time.perf_counter() - start,
    }


def autoencoders(
    ctx: RunContext,
    x: np.ndarray,
    layers: int,
    width: int,
    settings: AutoencoderSettings,
    label: str,
    seed: int,
) -> tuple[dict[str, Memory], float]:
    """An autoencoder of `layers` hidden ReLU layers of `width` (sigmoid output) trained
    by Adam on shuffled minibatches through `fit` (checkpointed every
    `AUTOENCODER_CHUNK` epochs), iterated as a memory once per count in
    `autoencoder_iterations`; and its final training loss."""
    sizes = (x.shape[1], *[width] * layers, x.shape[1])
    graph = mlp(sizes, activation="relu", output_activation="sigmoid", key=jax.random.key(seed))
    step = autoencoder.train_step(graph, learning_rate=settings.autoencoder_rate)
    chunk = min(settings.autoencoder_epochs, AUTOENCODER_CHUNK)
    size = min(settings.autoencoder_batch, len(x))

    def batches(piece: int) -> list[np.ndarray]:
        out = []
        for epoch in range(piece * chunk, (piece + 1) * chunk):
            order = np.random.default_rng(seed * 100_003 + epoch).permutation(len(x))
            out += [x[order[i : i + size]] for i in range(0, len(x) - size + 1, size)]
        return out

    learner = train_step_learner(step, graph, batches, autoencoder.batch)
    pieces = math.ceil(settings.autoencoder_epochs / chunk)
    result = fit(learner, epochs=pieces, ctx=ctx, label=label, keep=2)
    trained = step.graph(result.state)
    candidates: dict[str, Memory] = {
        f"iterations={it}": autoencoder.autoencoder_memory(trained, iterations=it)
        for it in settings.autoencoder_iterations
    }
    return candidates, float(result.history["train_loss"][-1])


def timed(memory: Memory, key: Key) -> tuple[Recall, float]:
    """The recall and its milliseconds per key (a second call: the first compiles)."""
    memory.recall(key)
    start = time.perf_counter()
    recall = memory.recall(key)
    return recall, 1e3 * (time.perf_counter() - start) / len(key.image)


def hits(originals: np.ndarray, threshold: float) -> Callable[[np.ndarray], tuple]:
    """The rank of a recall by the thesis's count: images retrieved (MSE below
    `threshold`), ties broken by the lower mean MSE."""

    def rank(retrieved: np.ndarray) -> tuple:
        s = scores.score(retrieved, originals, threshold=threshold)
        return (s.retrieved, -s.mse)

    return rank


def best(
    candidates: Mapping[str, Memory], key: Key, rank: Callable[[np.ndarray], tuple]
) -> tuple[str, Recall]:
    """The candidate whose recall of `key` ranks highest and that recall: a baseline
    tuned on the keys themselves, the most favourable tuning it can get."""
    chosen = None
    for name, memory in candidates.items():
        recall = memory.recall(key)
        score = rank(recall.images)
        if chosen is None or score > chosen[0]:
            chosen = (score, name, recall)
    assert chosen is not None
    return chosen[1], chosen[2]


class Results:
    """`retrieved` (count and fraction), `mse` and `uhn_retrieved` as
    `<field>.<model>.<dataset>.<N>.<key>`, with the retrieved images kept for figures."""

    def __init__(self) -> None:
        self.tree: dict[str, dict] = {k: {} for k in ("retrieved", "mse", "uhn_retrieved")}
        self.images: dict[tuple[str, str, int, str], np.ndarray] = {}

    def add(
        self,
        model: str,
        dataset: str,
        originals: np.ndarray,
        key_name: str,
        retrieved: np.ndarray,
        threshold: float,
    ) -> scores.Scores:
        s = scores.score(retrieved, originals, threshold=threshold)
        n = len(originals)
        for field, value in (
            ("retrieved", {"count": s.retrieved, "fraction": s.fraction}),
            ("mse", s.mse),
            ("uhn_retrieved", s.uhn_retrieved),
        ):
            self.tree[field].setdefault(model, {}).setdefault(dataset, {}).setdefault(str(n), {})[
                key_name
            ] = value
        self.images[(model, dataset, n, key_name)] = retrieved
        return s

    def count(self, model: str, dataset: str, n: int, key_name: str) -> int:
        return self.tree["retrieved"][model][dataset][str(n)][key_name]["count"]

    def fraction(self, model: str, dataset: str, n: int, key_name: str) -> float:
        return self.tree["retrieved"][model][dataset][str(n)][key_name]["fraction"]


def model_name(kind: str, layers: int, width: int) -> str:
    """`pc-L2-n512`: the model kind, its hidden layers and their width."""
    return f"{kind}-L{layers}-n{width}"


def fraction_name(fraction: float) -> str:
    """`partial_4` for a quarter of the pixels."""
    return f"partial_{round(1 / fraction)}"
