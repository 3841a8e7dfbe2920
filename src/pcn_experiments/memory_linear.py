"""`memory-linear`: the linear recurrent PC memory against Hopfield networks and an
autoencoder (thesis section 4.2.1, Fig. 4.3).

A linear PC memory (`pcn.associative.linear`: d neurons for d pixels, all directed
connections, no activation) stores CIFAR-10 images by weight descent with every value
clamped, and retrieves them from noisy keys (Gaussian noise of variance 0.2: one
prediction), from partial keys (1/2, 1/4, 1/8 of the pixels: the rest relaxed) and is
shown random keys (a strict memory answers them with a stored image). The same keys
go to the modern Hopfield network, Universal Hopfield Networks and an iterated BP
autoencoder of 6 hidden layers of 512. Each baseline's settings are tuned on the keys
themselves over the grid in the report, its best kept per key type (the most
favourable tuning a baseline can get). Binarised MNIST and Fashion-MNIST images are
stored in the PC memory and in the classic Hopfield network.

Results: `retrieved.<model>.<dataset>.<N>.<key>` (count and fraction),
`mse.<model>.<dataset>.<N>.<key>`, `uhn_retrieved...`, `strict.<model>.<dataset>`,
`ms_per_retrieval.<model>.<dataset>.<key>`, the tuned settings in `tuned`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np
import optax
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import pcn
from pcn._validation import check_at_least
from pcn.associative import keys, linear, scores
from pcn.associative.protocol import Memory, Recall
from pcn.baselines import autoencoder, hopfield
from pcn.baselines import universal_hopfield as uh
from pcn.models import mlp
from pcn.pcgraphs import stable_gamma

from .common import check_settings, load_subset
from .memory_common import best, check_fractions, hits
from .memory_common import pool as _pool
from .memory_common import timed as _timed
from .output import markdown_table, save_figure
from .plots import image_grid
from .registry import PaperNumber, Report, RunContext, choose_config, experiment


@dataclasses.dataclass(frozen=True)
class LinearMemoryConfig:
    """Budget and hyperparameters (stated in the report)."""

    images: int  # CIFAR-10 images stored (thesis: 100)
    binary_images: int  # binarised MNIST / Fashion-MNIST images (thesis: 10)
    pool: int  # CIFAR images average-pooled by this factor (1: full 32 x 32)
    noise_variance: float
    fractions: tuple[float, ...]  # shares of pixels the partial keys give
    noisy_threshold: float
    partial_threshold: float
    random_keys: int
    learning_rate: float  # of memorisation (SGD, the thesis: 0.001)
    memorise_batch: int  # images per weight update (divides `images` and `binary_images`)
    memorise_steps: int  # epochs
    memorise_tol: float
    relax_steps: int  # cap of a partial key's relaxation
    relax_tol: float
    momentum: float  # heavy ball on the free pixels, at the stable step
    betas: tuple[float, ...]  # softmax inverse temperatures tried for (M/U)HNs
    autoencoder_width: int
    autoencoder_depth: int  # hidden layers
    autoencoder_epochs: int
    autoencoder_rates: tuple[float, ...]  # Adam learning rates tried
    autoencoder_iterations: tuple[int, ...]  # iterations of the net tried as a memory

    def __post_init__(self) -> None:
        check_settings(self)
        for name in ("images", "binary_images", "pool", "random_keys", "memorise_batch",
                     "memorise_steps"):  # fmt: skip
            check_at_least(name, getattr(self, name), 1)
        for n in (self.images, self.binary_images):
            if n % min(self.memorise_batch, n):
                raise ValueError(
                    f"`memorise_batch` {self.memorise_batch} must divide the number of images "
                    f"stored ({self.images} and {self.binary_images})."
                )
        check_fractions(self.fractions)
        if 32 % self.pool:
            raise ValueError(f"`pool` must divide 32 (the CIFAR-10 image side), got {self.pool}.")


FULL = LinearMemoryConfig(
    images=100,
    binary_images=10,
    pool=1,
    noise_variance=0.2,
    fractions=(1 / 2, 1 / 4, 1 / 8),
    noisy_threshold=scores.NOISY_THRESHOLD,
    partial_threshold=scores.PARTIAL_THRESHOLD,
    random_keys=100,
    learning_rate=1e-3,
    memorise_batch=10,
    memorise_steps=1500,
    memorise_tol=1e-6,
    relax_steps=5000,
    relax_tol=1e-7,
    momentum=0.9,
    betas=(1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    autoencoder_width=512,
    autoencoder_depth=6,
    autoencoder_epochs=2000,
    autoencoder_rates=(1e-3, 1e-4),
    autoencoder_iterations=(1, 10, 50),
)
QUICK = dataclasses.replace(
    FULL,
    images=20,
    binary_images=5,
    pool=2,
    memorise_batch=5,
    random_keys=20,
    memorise_steps=300,
    relax_steps=600,
    betas=(1.0, 10.0, 100.0),
    autoencoder_width=128,
    autoencoder_depth=2,
    autoencoder_epochs=300,
    autoencoder_rates=(1e-3,),
    autoencoder_iterations=(1, 10),
)


CIFAR_MODELS = ["pc", "pc_full_batch", "modern_hopfield", "universal_hopfield", "autoencoder"]


def _key_name(fraction: float) -> str:
    return f"partial_{round(1 / fraction)}"


def _keys(x: np.ndarray, shape: tuple[int, ...], cfg: LinearMemoryConfig, seed: int) -> dict:
    out = {"noisy": keys.noisy(x, cfg.noise_variance, seed=seed)}
    for i, f in enumerate(cfg.fractions):
        out[_key_name(f)] = keys.partial(x, f, seed=seed + 1 + i, image_shape=shape)
    return out


class _Scorer:
    """Collects every model's scores on every dataset and key into the results."""

    def __init__(self, cfg: LinearMemoryConfig):
        self.cfg = cfg
        self.results: dict[str, dict] = {
            k: {} for k in ("retrieved", "mse", "uhn_retrieved", "ms_per_retrieval", "strict")
        }
        self.images: dict[tuple[str, str, str], np.ndarray] = {}

    def threshold(self, key_name: str) -> float:
        return self.cfg.noisy_threshold if key_name == "noisy" else self.cfg.partial_threshold

    def add(self, model: str, dataset: str, x: np.ndarray, key_name: str, recall, ms) -> None:
        s = scores.score(recall.images, x, threshold=self.threshold(key_name))
        n = str(len(x))
        for field, value in (
            ("retrieved", {"count": s.retrieved, "fraction": s.fraction}),
            ("mse", s.mse),
            ("uhn_retrieved", s.uhn_retrieved),
        ):
            self.results[field].setdefault(model, {}).setdefault(dataset, {}).setdefault(n, {})[
                key_name
            ] = value
        self.results["ms_per_retrieval"].setdefault(model, {}).setdefault(dataset, {})[key_name] = (
            ms
        )
        self.images[(model, dataset, key_name)] = recall.images

    def strict(self, model: str, dataset: str, memory: Memory, x: np.ndarray, seed: int) -> None:
        random = keys.random_keys(self.cfg.random_keys, x.shape[1], seed=seed)
        answers = memory.recall(random).images
        fraction = scores.strict_retrievals(answers, x, threshold=self.cfg.noisy_threshold)
        self.results["strict"].setdefault(model, {})[dataset] = fraction

    def count(self, model: str, dataset: str, n: int, key_name: str) -> int:
        return self.results["retrieved"][model][dataset][str(n)][key_name]["count"]


def _pc_memory(x: np.ndarray, cfg: LinearMemoryConfig, seed: int, batch: int | None = None):
    """The linear PC memory of `x`, memorised `batch` images per update (default: the
    config's), ready to relax partial keys at its stable value step."""
    memory = linear.linear_memory(x.shape[1], key=jax.random.key(seed))
    start = time.perf_counter()
    memory, info = linear.memorise(
        memory,
        x,
        optimizer=optax.sgd(cfg.learning_rate),
        stop=pcn.Tolerance(cfg.memorise_tol, cfg.memorise_steps),
        batch_size=batch or min(cfg.memorise_batch, len(x)),
    )
    seconds = time.perf_counter() - start
    gamma = stable_gamma(memory.graph, 1.0)
    memory = dataclasses.replace(
        memory,
        stop=pcn.Tolerance(cfg.relax_tol, cfg.relax_steps),
        value_optimizer=optax.sgd(gamma, momentum=cfg.momentum),
    )
    energy = info.energy[: info.steps]
    return memory, {
        "steps": info.steps,
        "seconds": seconds,
        "energy_first": float(energy[0]),
        "energy_last": float(energy[-1]),
        "value_step": gamma,
    }


def _best(
    candidates: dict[str, Memory], key: keys.Key, x: np.ndarray, threshold: float
) -> tuple[str, Recall, float]:
    """The candidate that retrieves the most (ties: the lowest MSE), its recall and ms
    (each candidate recalls once; only the chosen one is timed, by a second call)."""
    name, _ = best(candidates, key, hits(x, threshold))
    recall, ms = _timed(candidates[name], key)
    return name, recall, ms


def _hopfield_candidates(x: np.ndarray, cfg: LinearMemoryConfig) -> dict[str, dict[str, Memory]]:
    modern: dict[str, Memory] = {f"beta={b:g}": uh.modern_hopfield(x, beta=b) for b in cfg.betas}
    universal: dict[str, Memory] = {}
    for sim in uh.SIMILARITIES:
        universal[f"{sim}, max"] = uh.universal_hopfield(x, similarity=sim, separation="max")
        for b in cfg.betas:
            universal[f"{sim}, softmax beta={b:g}"] = uh.universal_hopfield(
                x, similarity=sim, separation="softmax", beta=b
            )
    return {"modern_hopfield": modern, "universal_hopfield": universal}


def _autoencoders(x: np.ndarray, cfg: LinearMemoryConfig, seed: int) -> tuple[dict, dict]:
    """Trained autoencoders (one per learning rate), each iterated as a memory."""
    candidates: dict[str, Memory] = {}
    losses = {}
    sizes = (x.shape[1], *([cfg.autoencoder_width] * cfg.autoencoder_depth), x.shape[1])
    for rate in cfg.autoencoder_rates:
        graph = mlp(sizes, activation="relu", output_activation="sigmoid", key=jax.random.key(seed))
        graph, curve = autoencoder.train(
            graph, x, epochs=cfg.autoencoder_epochs, batch_size=len(x), learning_rate=rate
        )
        losses[f"lr={rate:g}"] = curve[-1]
        for it in cfg.autoencoder_iterations:
            candidates[f"lr={rate:g}, iterations={it}"] = autoencoder.autoencoder_memory(
                graph, iterations=it
            )
    return candidates, losses


def _cifar(ctx: RunContext, cfg: LinearMemoryConfig, scorer: _Scorer) -> dict[str, Any]:
    ds = load_subset("cifar10-png", ctx, train=cfg.images, test=1)
    x, shape = _pool(ds.x_train.astype(np.float32), ds.image_shape, cfg.pool)
    key_set = _keys(x, shape, cfg, ctx.seed)
    memory, memorised = _pc_memory(x, cfg, ctx.seed)
    steps = {}
    for name, key in key_set.items():
        recall, ms = _timed(memory, key)
        scorer.add("pc", "cifar10", x, name, recall, ms)
        steps[name] = float(np.mean(recall.steps))
    scorer.strict("pc", "cifar10", memory, x, ctx.seed + 99)
    # the same memory memorised with every image in each update: as many epochs, far
    # fewer updates (the schedule, not the model, decides how well it stores)
    full_batch, full_memorised = _pc_memory(x, cfg, ctx.seed, batch=len(x))
    for name, key in key_set.items():
        recall, ms = _timed(full_batch, key)
        scorer.add("pc_full_batch", "cifar10", x, name, recall, ms)
    scorer.strict("pc_full_batch", "cifar10", full_batch, x, ctx.seed + 99)
    tuned: dict[str, dict[str, str]] = {}
    groups = _hopfield_candidates(x, cfg)
    ae_candidates, ae_losses = _autoencoders(x, cfg, ctx.seed)
    groups["autoencoder"] = ae_candidates
    for model, candidates in groups.items():
        tuned[model] = {}
        for name, key in key_set.items():
            chosen, recall, ms = _best(candidates, key, x, scorer.threshold(name))
            scorer.add(model, "cifar10", x, name, recall, ms)
            tuned[model][name] = chosen
        strict_choice = candidates[tuned[model]["noisy"]]
        scorer.strict(model, "cifar10", strict_choice, x, ctx.seed + 99)
    return {
        "shape": shape,
        "x": x,
        "keys": key_set,
        "memorised": memorised,
        "full_batch_memorised": full_memorised,
        "pc_relaxation_steps": steps,
        "tuned": tuned,
        "autoencoder_final_loss": ae_losses,
    }


def _binary(ctx: RunContext, cfg: LinearMemoryConfig, scorer: _Scorer, name: str) -> np.ndarray:
    ds = load_subset(name, ctx, train=cfg.binary_images, test=1)
    x = (ds.x_train > 0.5).astype(np.float32)
    key_set = _keys(x, ds.image_shape, cfg, ctx.seed)
    memory, _ = _pc_memory(x, cfg, ctx.seed)
    net = hopfield.hopfield_memory(x)
    for model, m in (("pc", memory), ("hopfield", net)):
        for key_name, key in key_set.items():
            recall, ms = _timed(m, key)
            scorer.add(model, name, x, key_name, recall, ms)
        scorer.strict(model, name, m, x, ctx.seed + 99)
    return x


def _bars(results: dict, dataset: str, n: int, models: list[str], key_names: list[str]) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        counts = [results["retrieved"][model][dataset][str(n)][k]["fraction"] for k in key_names]
        ax.bar(np.arange(len(key_names)) + (i - (len(models) - 1) / 2) * width, counts, width,
               label=model)  # fmt: skip
    ax.set_xticks(np.arange(len(key_names)), key_names)
    ax.set_ylabel(f"fraction of {n} retrieved")
    ax.set_ylim(0, 1.05)
    ax.set_title(dataset)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return fig


PAPER = (
    PaperNumber(
        "thesis Fig. 4.3",
        "CIFAR-10, 100 images from 1/2 of the pixels",
        89,
        "retrieved.pc.cifar10.100.partial_2.count",
    ),
    PaperNumber(
        "thesis Fig. 4.3",
        "CIFAR-10, 100 images from 1/4 of the pixels",
        79,
        "retrieved.pc.cifar10.100.partial_4.count",
    ),
    PaperNumber(
        "thesis Fig. 4.3",
        "CIFAR-10, 100 images from 1/8 of the pixels",
        49,
        "retrieved.pc.cifar10.100.partial_8.count",
    ),
    PaperNumber(
        "thesis Fig. 4.3",
        "CIFAR-10, 100 images from noisy keys (variance 0.2)",
        100,
        "retrieved.pc.cifar10.100.noisy.count",
    ),
)


@experiment(
    "memory-linear",
    "Linear recurrent PC memory vs Hopfield networks and an autoencoder (thesis Fig. 4.3)",
    paper=PAPER,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    scorer = _Scorer(cfg)
    cifar = _cifar(ctx, cfg, scorer)
    binary = {name: _binary(ctx, cfg, scorer, name) for name in ("mnist", "fashion-mnist")}
    r = scorer.results
    key_names = list(cifar["keys"])
    save_figure(_bars(r, "cifar10", cfg.images, CIFAR_MODELS, key_names), ctx.out / "cifar10.png")
    for name in binary:
        save_figure(_bars(r, name, cfg.binary_images, ["pc", "hopfield"], key_names),
                    ctx.out / f"{name}.png")  # fmt: skip
    k = min(8, cfg.images)
    rows: dict[str, np.ndarray] = {"original": cifar["x"][:k]}
    for key_name, key in cifar["keys"].items():
        rows[f"{key_name} key"] = key.image[:k]
        for model in CIFAR_MODELS:
            rows[f"{model}, {key_name}"] = scorer.images[(model, "cifar10", key_name)][:k]
    save_figure(image_grid(rows, cifar["shape"]), ctx.out / "examples.png")
    results = {
        "config": dataclasses.asdict(cfg),
        **r,
        "tuned": cifar["tuned"],
        "memorisation": cifar["memorised"],
        "full_batch_memorisation": cifar["full_batch_memorised"],
        "pc_relaxation_steps": cifar["pc_relaxation_steps"],
        "autoencoder_final_loss": cifar["autoencoder_final_loss"],
        "image_shape": list(cifar["shape"]),
    }
    return Report(results, _markdown(cfg, results, key_names, list(binary)))


def _markdown(cfg: LinearMemoryConfig, r: dict[str, Any], key_names: list[str], binary) -> str:
    def table(dataset: str, n: int, models: list[str]) -> str:
        rows = []
        for model in models:
            cells: list[Any] = [model]
            for k in key_names:
                cells.append(
                    f"{r['retrieved'][model][dataset][str(n)][k]['count']} "
                    f"({r['mse'][model][dataset][str(n)][k]:.4f})"
                )
            cells.append(f"{r['strict'][model][dataset]:.2f}")
            rows.append(cells)
        return markdown_table(["model", *key_names, "random keys: strict"], rows)

    grid = ", ".join(f"{b:g}" for b in cfg.betas)
    tuned = "\n".join(
        f"- {model}: " + "; ".join(f"{k}: {v}" for k, v in choice.items())
        for model, choice in r["tuned"].items()
    )
    m = r["memorisation"]
    pc_ms = ", ".join(f"{k} {v:.3g}" for k, v in r["ms_per_retrieval"]["pc"]["cifar10"].items())
    steps = ", ".join(f"{k} {v:.0f}" for k, v in r["pc_relaxation_steps"].items())
    shape = "x".join(map(str, r["image_shape"]))
    d = int(np.prod(r["image_shape"]))
    noise_left = cfg.noise_variance * (cfg.images + 1) / d
    binary_tables = "\n\n".join(
        f"{name}, {cfg.binary_images} binarised images:\n\n"
        + table(name, cfg.binary_images, ["pc", "hopfield"])
        for name in binary
    )
    return f"""# The linear recurrent PC memory (thesis section 4.2.1, Fig. 4.3)

A linear PC memory of d = {np.prod(r["image_shape"])} neurons (one per pixel of a
{shape} image, all d(d-1) directed connections, a bias, no activation) stores
{cfg.images} CIFAR-10 training images: every value clamped, SGD with learning rate
{cfg.learning_rate} on the weights, {cfg.memorise_batch} images per update, epoch after
epoch until the epoch's mean energy changes by less than {cfg.memorise_tol} or
{cfg.memorise_steps} epochs (took {m["steps"]} epochs, {m["seconds"]:.0f} s; mean energy
per image {m["energy_first"]:.4g} -> {m["energy_last"]:.4g}).
Keys: Gaussian noise of variance {cfg.noise_variance} (retrieved by one prediction
x <- Wx + b), and {", ".join(f"{f:g}" for f in cfg.fractions)} of the pixels (random
positions, all channels of a position; the others relaxed from zero with heavy-ball SGD,
momentum {cfg.momentum}, at the stable step {m["value_step"]:.3g}, until |dE| <
{cfg.relax_tol} or {cfg.relax_steps} steps; mean steps {steps}). Retrieved: MSE below
{cfg.noisy_threshold} (noisy) or {cfg.partial_threshold} (partial). Each cell: images
retrieved (mean recall MSE). "strict": the share of {cfg.random_keys} random keys
answered with a stored image (within {cfg.noisy_threshold}).

CIFAR-10, {cfg.images} images:

{table("cifar10", cfg.images, CIFAR_MODELS)}

"pc_full_batch": the same memory memorised with all {cfg.images} images in each update, for
as many epochs ({r["full_batch_memorisation"]["steps"]} epochs, mean energy per image
{r["full_batch_memorisation"]["energy_last"]:.4g} at the end): the same arithmetic per
epoch in {cfg.images // cfg.memorise_batch} times fewer updates.

A memory that stores its images exactly has W close to the projection onto their span
(and the bias), and one prediction keeps the noise's component in that span: an expected
MSE of variance x (N + 1) / d = {cfg.noise_variance} x {cfg.images + 1} / {d} = {noise_left:.4f}
after a noisy key's prediction, against the threshold {cfg.noisy_threshold}.

![CIFAR-10](cifar10.png)

Baselines, tuned on these very keys (each key type keeps its best setting):
- modern Hopfield network: beta in {{{grid}}};
- Universal Hopfield Networks: similarity dot / euclidean / manhattan (on the known
  pixels of a partial key) x separation max or softmax with beta in {{{grid}}};
- autoencoder: {cfg.autoencoder_depth} hidden layers of {cfg.autoencoder_width} (ReLU,
  sigmoid output), full-batch Adam for {cfg.autoencoder_epochs} epochs at learning rates
  {", ".join(f"{a:g}" for a in cfg.autoencoder_rates)} (final losses
  {", ".join(f"{k}: {v:.3g}" for k, v in r["autoencoder_final_loss"].items())}), iterated
  {", ".join(map(str, cfg.autoencoder_iterations))} times, the known pixels put back after
  each iteration.

Chosen:
{tuned}

PC retrieval time per key (ms, CPU, one batch of all keys): {pc_ms}.

{binary_tables}

![MNIST](mnist.png) ![Fashion-MNIST](fashion-mnist.png)

Examples (first rows of the CIFAR-10 keys and what each model returned):

![examples](examples.png)

Thesis (Fig. 4.3, 100 CIFAR-10 images at 32x32, learning rate 0.001, converged within
1500 steps): PC retrieves all 100 from noisy keys and 89 / 79 / 49 from 1/2, 1/4, 1/8 of
the pixels; modern Hopfield networks at most 5 (partial) and 11 (noisy); PC answers
random keys with noise, not with a stored image.
"""
