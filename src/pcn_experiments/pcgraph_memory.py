"""`pcgraph-memory`: associative memory in a fully connected PC graph (thesis section
5.2.1, Fig. 5.4).

A fully connected PC graph (`fully_connected`, the pixels as sensory neurons) is trained
on 50, 100 or 200 training images (Algorithm 8; Fashion-MNIST, or the thesis's CIFAR-10
with `--set dataset=cifar10-png --set neurons=3500`) and asked to retrieve each of them
from a corrupted version: the top half removed, or Gaussian noise added. A
memory counts as retrieved when the MSE between the original and the retrieved image is
below 0.001 (the thesis' criterion). Each corruption is queried both ways:

- by conditioning (Eq. 5.5): half images fix the known bottom half and relax the rest
  (`complete`); noisy images fix the noisy pixels and relax the hidden neurons, and the
  retrieved image is the graph's prediction `mu` of the pixels at equilibrium (the fixed
  pixels themselves cannot move);
- by initialisation (Eq. 5.6): the pixels start at the corrupted image (the missing half
  at zero) and every neuron relaxes (`complete(..., by="initialisation")`, `denoise`).
Results: `retrieved_fraction.<n>.<half|noise>.<condition|initialisation>`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

import pcn
from pcn import pcgraphs as pg
from pcn.graph import PCGraph

from .common import check_settings, load_subset
from .output import markdown_table, save_figure
from .plots import image_grid
from .registry import Report, RunContext, choose_config, experiment
from .trainer import fit, shuffled_batches, train_step_learner

CORRUPTIONS = ("half", "noise")
DATASETS = ("fashion-mnist", "cifar10-png")
QUERIES = ("condition", "initialisation")


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """Budget and hyperparameters (stated in the report)."""

    dataset: str  # one of DATASETS
    memories: tuple[int, ...]  # training-set sizes
    neurons: int  # total neurons of the fully connected graph (the pixels among them)
    activation: str
    epochs: int
    batch_size: int
    steps: int  # T of training
    gamma: float
    learning_rate: float
    weight_decay: float
    noise_variance: float
    threshold: float  # retrieved when MSE < threshold
    query_gamma: float
    query_tol: float
    query_max_steps: int
    weight_scale: float

    def __post_init__(self) -> None:
        check_settings(self)
        if self.dataset not in DATASETS:
            raise ValueError(
                f"`dataset` must be one of {', '.join(DATASETS)}, got {self.dataset!r}."
            )


FULL = MemoryConfig(
    dataset="fashion-mnist",
    memories=(50, 100, 200),
    neurons=1000,
    activation="tanh",
    epochs=2000,
    batch_size=50,
    steps=5,
    gamma=0.5,
    learning_rate=1e-3,
    weight_decay=0.0,
    noise_variance=0.2,
    threshold=1e-3,
    query_gamma=0.2,
    query_tol=1e-6,
    query_max_steps=5000,
    weight_scale=0.1,
)
QUICK = dataclasses.replace(FULL, memories=(10, 20), neurons=850, epochs=40, query_max_steps=300)


def _train(
    graph: PCGraph, x: np.ndarray, cfg: MemoryConfig, ctx: RunContext, label: str
) -> PCGraph:
    """Store the images `x` by training through `trainer.fit` (checkpoints under `label`)."""
    step = pg.trainer(
        graph, steps=cfg.steps, gamma=cfg.gamma, learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
    )  # fmt: skip
    labels = np.zeros(len(x), dtype=np.int64)
    # epoch e is shuffled with seed ctx.seed * 100000 + e, as before `fit`
    order = shuffled_batches(x, labels, min(cfg.batch_size, len(x)), ctx.seed * 100)
    learner = train_step_learner(step, graph, order, lambda b: pg.batch(graph, jnp.asarray(b[0])))
    return step.graph(fit(learner, epochs=cfg.epochs, ctx=ctx, label=label, keep=1).state)


def _retrieve(graph: PCGraph, x: np.ndarray, noisy: np.ndarray, known, cfg) -> dict:
    """The retrieved images of every (corruption, query)."""
    gamma = pg.stable_gamma(graph, cfg.query_gamma)
    relax = {"stop": pcn.Tolerance(cfg.query_tol, cfg.query_max_steps), "gamma": gamma}
    xs, ns = jnp.asarray(x), jnp.asarray(noisy)
    out = {
        ("half", "condition"): pg.complete(graph, xs, known, **relax),
        ("half", "initialisation"): pg.complete(graph, xs, known, by="initialisation", **relax),
        ("noise", "initialisation"): pg.denoise(graph, ns, **relax),
    }
    held = pg.condition(graph, {"sensory": ns}, **relax)
    mu = graph.node("sensory").energy.mean(graph.predict(held.values, "sensory"))
    images = {k: np.asarray(v.output) for k, v in out.items()}
    images[("noise", "condition")] = np.asarray(mu)
    converged = {k: float(np.mean(v.query.example_converged)) for k, v in out.items()}
    converged[("noise", "condition")] = float(np.mean(held.example_converged))
    return {"images": images, "converged": converged, "gamma": gamma}


def _fraction_figure(fractions: dict[int, dict[str, dict[str, float]]]) -> Figure:
    sizes = list(fractions)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / (len(CORRUPTIONS) * len(QUERIES))
    for i, (c, q) in enumerate((c, q) for c in CORRUPTIONS for q in QUERIES):
        values = [fractions[n][c][q] for n in sizes]
        ax.bar(np.arange(len(sizes)) + (i - 1.5) * width, values, width, label=f"{c}, {q}")
    ax.set_xticks(np.arange(len(sizes)), [f"{n} images" for n in sizes])
    ax.set_ylabel("fraction retrieved (MSE < threshold)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return fig


def _examples_figure(x, noisy, known, images, shape, k: int = 8) -> Figure:
    rows = {
        "original": x[:k],
        "half given": np.where(known, x, 0.0)[:k],
        "half, cond.": images[("half", "condition")][:k],
        "half, init.": images[("half", "initialisation")][:k],
        "noisy": noisy[:k],
        "noise, cond. (mu)": images[("noise", "condition")][:k],
        "noise, init.": images[("noise", "initialisation")][:k],
    }
    return image_grid(rows, shape)


@experiment(
    "pcgraph-memory",
    "Associative memory of a fully connected PC graph on Fashion-MNIST or CIFAR-10 (Fig. 5.4)",
    figure="thesis Fig. 5.4 plots the retrieved fractions (no table of numbers)",
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    if not cfg.memories or min(cfg.memories) < 1:
        raise ValueError(
            f"`memories` must list one or more training-set sizes >= 1, got {cfg.memories!r}."
        )
    ds = load_subset(cfg.dataset, ctx, train=max(cfg.memories), test=1)
    pixels = int(np.prod(ds.image_shape))
    if cfg.neurons <= pixels:
        raise ValueError(
            f"`neurons` must exceed the {pixels} pixels of {cfg.dataset} (the rest are "
            f"hidden), got {cfg.neurons}; e.g. --set neurons={pixels + 216}."
        )
    rng = np.random.default_rng(ctx.seed)
    known = np.zeros(ds.image_shape, bool)
    known[..., ds.image_shape[-2] // 2 :, :] = True  # the top half of the rows is removed
    known = known.reshape(-1)
    fractions: dict[int, dict[str, dict[str, float]]] = {}
    mse: dict[int, dict[str, dict[str, float]]] = {}
    converged: dict[int, dict[str, dict[str, float]]] = {}
    seconds: dict[int, float] = {}
    gammas: dict[int, float] = {}
    examples = None
    for n in cfg.memories:
        start = time.perf_counter()
        x = ds.x_train[:n]
        noisy = (x + np.sqrt(cfg.noise_variance) * rng.standard_normal(x.shape)).astype(x.dtype)
        topology = pg.fully_connected(cfg.neurons, sensory=pixels)
        graph = pg.pc_graph(
            topology, activation=cfg.activation, key=jax.random.key(ctx.seed + n),
            weight_scale=cfg.weight_scale,
        )  # fmt: skip
        graph = _train(graph, x, cfg, ctx, f"{n}-images")
        out = _retrieve(graph, x, noisy, known, cfg)
        per_image = {k: np.mean((v - x) ** 2, axis=1) for k, v in out["images"].items()}
        fractions[n], mse[n], converged[n] = {}, {}, {}
        for (c, q), errors in per_image.items():
            fractions[n].setdefault(c, {})[q] = float(np.mean(errors < cfg.threshold))
            mse[n].setdefault(c, {})[q] = float(np.mean(errors))
            converged[n].setdefault(c, {})[q] = out["converged"][(c, q)]
        seconds[n] = time.perf_counter() - start
        gammas[n] = out["gamma"]
        if examples is None or n == 100:
            examples = (x, noisy, out["images"])
    assert examples is not None  # `memories` is not empty
    save_figure(_fraction_figure(fractions), ctx.out / "retrieved.png")
    save_figure(_examples_figure(examples[0], examples[1], known, examples[2], ds.image_shape),
                ctx.out / "examples.png")  # fmt: skip
    results = {
        "dataset": cfg.dataset,
        "config": dataclasses.asdict(cfg),
        "retrieved_fraction": fractions,
        "mean_mse": mse,
        "converged_fraction": converged,
        "seconds": seconds,
        "query_gamma": gammas,
        "corrupted_mse": {
            "half": float(np.mean((np.where(known, examples[0], 0.0) - examples[0]) ** 2)),
            "noise": float(np.mean((examples[1] - examples[0]) ** 2)),
        },
    }
    return Report(results, _markdown(cfg, results, len(examples[0]), pixels))


def _markdown(cfg: MemoryConfig, r: dict[str, Any], shown_n: int, pixels: int) -> str:
    rows = [
        [n, c, q, f"{r['retrieved_fraction'][n][c][q]:.2f}", f"{r['mean_mse'][n][c][q]:.5f}",
         f"{r['converged_fraction'][n][c][q]:.2f}"]
        for n in r["retrieved_fraction"] for c in CORRUPTIONS for q in QUERIES
    ]  # fmt: skip
    table = markdown_table(
        ["images", "corruption", "query", "retrieved", "mean MSE", "converged"], rows
    )
    secs = ", ".join(f"{n} images {s:.0f} s" for n, s in r["seconds"].items())
    used = ", ".join(f"{n} images {g:.3g}" for n, g in r["query_gamma"].items())
    return f"""# Associative memory in a fully connected PC graph (thesis Fig. 5.4)

A fully connected PC graph of {cfg.neurons} neurons ({pixels} pixels, {cfg.neurons - pixels}
hidden; every ordered pair connected, {cfg.activation}; initial weights x{cfg.weight_scale})
is trained on the first n {cfg.dataset} training images (Algorithm 8: pixels fixed,
the hidden values relaxed from zero for T = {cfg.steps} steps with gamma = {cfg.gamma},
then one adamw step, lr {cfg.learning_rate}, weight decay {cfg.weight_decay}) for
{cfg.epochs} epochs of batch {cfg.batch_size}. Each training image is then retrieved from
its bottom half (top half removed) or from it plus N(0, {cfg.noise_variance}) noise, by
conditioning and by initialisation (noisy images by conditioning: the noisy pixels fixed,
the hidden neurons relaxed, the retrieved image is the prediction mu of the pixels).
Queries relax with gamma = min({cfg.query_gamma}, 1.8 / L) (`pg.stable_gamma`: L a bound
on the energy's curvature from the trained weights; used: {used}) until every
|dE| < {cfg.query_tol} or {cfg.query_max_steps} steps. Retrieved: MSE < {cfg.threshold}
(thesis' criterion).
Time per training-set size (train + queries): {secs}.

{table}

MSE of the corrupted inputs themselves: half {r["corrupted_mse"]["half"]:.4f}, noise
{r["corrupted_mse"]["noise"]:.4f}.

![fraction retrieved](retrieved.png)

Examples ({shown_n} memories):

![examples](examples.png)

Thesis: fully connected graphs of 3500 and 7000 neurons on 50/100/200 CIFAR-10 and SVHN
images (eta = 1e-4, gamma = 0.5, T = 5); CIFAR-10 runs with `--set dataset=cifar10-png
--set neurons=3500` (or 7000).
"""
