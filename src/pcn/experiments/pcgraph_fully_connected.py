"""`pcgraph-fully-connected`: one fully connected PC graph, many queries (thesis section
5.2, Table 5.1, Fig. 5.3).

One PC graph on `784 + 10 + hidden` neurons, every ordered pair connected (Eq. 5.1), is
trained by Algorithm 8 with the pixels and the one-hot label clamped. The SAME trained
graph then answers every query: classification (pixels fixed, label read), generation
per label, completion of the bottom half from the top half (with and without the label
given) by conditioning, and denoising (Gaussian noise of variance 0.5) by
initialisation. Table 5.1's baselines are trained on the same fully connected structure
with the same epochs, batches and relaxation steps: a Hopfield network (Hebb's rule), a
fully connected Boltzmann machine and Almeida–Pineda recurrent backpropagation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from tqdm.auto import tqdm

from .. import data as pcn_data
from ..baselines import almeida_pineda, boltzmann, hopfield
from ..graph import PCGraph
from ..pcgraphs import (
    QueryResult,
    batch,
    classify,
    complete,
    denoise,
    fully_connected,
    generate,
    pc_graph,
    trainer,
)
from .common import check_settings, load_subset
from .output import markdown_table, save_figure
from .registry import Report, RunContext, choose_config, experiment

MODELS = ("pc_graph", "hopfield", "boltzmann", "almeida_pineda")
PANELS = ("generate", "complete", "denoise", "complete_label")
THESIS_TABLE = {  # Table 5.1, test accuracy (%)
    "mnist": {"pc_graph": 91.76, "hopfield": 65.23, "boltzmann": 79.23, "almeida_pineda": 76.36},
    "fashion-mnist": {
        "pc_graph": 83.72,
        "hopfield": 51.74,
        "boltzmann": 61.31,
        "almeida_pineda": 69.63,
    },
}
SIDE = 28  # images are 28 x 28


@dataclasses.dataclass(frozen=True)
class FullyConnectedConfig:
    datasets: tuple[str, ...]
    hidden: int  # neurons besides the 784 pixels and 10 labels
    epochs: int
    batch_size: int
    steps: int  # T: relaxation steps per training step (PC graph and baselines)
    gamma: float  # value step in training
    learning_rate: float  # Adam(W) on the PC graph's weights
    weight_decay: float
    weight_scale: float
    query_gamma: float
    query_tol: float
    query_max_steps: int
    noise_variance: float  # of the Gaussian noise in the denoising query
    boltzmann_learning_rate: float
    almeida_pineda_learning_rate: float
    train_examples: int  # 0: the whole training set
    test_examples: int  # 0: the whole test set
    panel_examples: int  # test images the completion / denoising MSEs average over

    def __post_init__(self) -> None:
        check_settings(self)
        for name in ("query_gamma", "noise_variance", "boltzmann_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)!r}.")
        if self.hidden < 0 or self.query_max_steps < 1 or self.panel_examples < 10:
            raise ValueError(
                "`hidden` must be >= 0, `query_max_steps` >= 1 and `panel_examples` >= 10."
            )


FULL = FullyConnectedConfig(
    datasets=("fashion-mnist",),
    hidden=256,
    epochs=4,
    batch_size=64,
    steps=20,
    gamma=0.5,
    learning_rate=1e-4,
    weight_decay=1e-2,
    weight_scale=0.3,
    query_gamma=0.2,
    query_tol=1e-4,
    query_max_steps=500,
    noise_variance=0.5,
    boltzmann_learning_rate=1e-3,
    almeida_pineda_learning_rate=1e-3,
    train_examples=0,
    test_examples=0,
    panel_examples=1000,
)
QUICK = dataclasses.replace(
    FULL,
    hidden=64,
    epochs=1,
    steps=10,
    query_max_steps=200,
    train_examples=3000,
    test_examples=500,
    panel_examples=100,
)


def _batches(cfg: FullyConnectedConfig, ds: pcn_data.Dataset, epoch: int, seed: int):
    """The batches of one epoch; every model sees the same order."""
    return pcn_data.batches(ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=seed * 1000 + epoch)


def _train_pc_graph(cfg, ds, ctx, bar) -> tuple[PCGraph, list[float]]:
    """Algorithm 8 on the fully connected graph; the mean training energy per epoch."""
    topology = fully_connected(
        ds.num_features + ds.num_classes + cfg.hidden,
        sensory=ds.num_features,
        labels=ds.num_classes,
    )
    graph = pc_graph(
        topology, activation="tanh", key=jax.random.key(ctx.seed), weight_scale=cfg.weight_scale
    )
    step = trainer(
        graph,
        steps=cfg.steps,
        gamma=cfg.gamma,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
    )
    state = step.init(graph)
    losses = []
    for epoch in range(cfg.epochs):
        total, count = 0.0, 0
        for x, y in _batches(cfg, ds, epoch, ctx.seed):
            state, info = step(state, batch(graph, jnp.asarray(x), jnp.asarray(y)))
            total, count = total + float(info.loss), count + 1
        losses.append(total / count)
        bar.update(1)
    return step.graph(state), losses


def _train_hopfield(cfg, ds, ctx, bar) -> hopfield.Hopfield:
    net = hopfield.hopfield(ds.num_features, ds.num_classes)
    for epoch in range(cfg.epochs):
        for x, y in _batches(cfg, ds, epoch, ctx.seed):
            net = hopfield.train_step(net, jnp.asarray(x), jnp.asarray(y))
        bar.update(1)
    return net


def _train_boltzmann(cfg, ds, ctx, bar) -> boltzmann.BoltzmannMachine:
    key = jax.random.key(ctx.seed + 1)
    machine = boltzmann.boltzmann_machine(ds.num_features, ds.num_classes, cfg.hidden, key=key)
    optimizer = optax.adam(cfg.boltzmann_learning_rate)
    state = boltzmann.init(machine, optimizer, cfg.batch_size, key)
    step = boltzmann.make_train_step(optimizer, steps=cfg.steps)
    for epoch in range(cfg.epochs):
        for i, (x, y) in enumerate(_batches(cfg, ds, epoch, ctx.seed)):
            k = jax.random.fold_in(jax.random.fold_in(key, epoch), i)
            state, _ = step(state, jnp.asarray(x), jnp.asarray(y), k)
        bar.update(1)
    return state.machine


def _train_almeida_pineda(cfg, ds, ctx, bar) -> almeida_pineda.RecurrentNetwork:
    net = almeida_pineda.recurrent_network(
        ds.num_features, ds.num_classes, cfg.hidden, key=jax.random.key(ctx.seed + 2)
    )
    optimizer = optax.adam(cfg.almeida_pineda_learning_rate)
    opt_state = optimizer.init(net)
    step = almeida_pineda.make_train_step(optimizer, steps=cfg.steps)
    for epoch in range(cfg.epochs):
        for x, y in _batches(cfg, ds, epoch, ctx.seed):
            net, opt_state, _ = step(net, opt_state, jnp.asarray(x), jnp.asarray(y))
        bar.update(1)
    return net


def _chunks(x: np.ndarray, size: int = 1000):
    for start in range(0, len(x), size):
        yield x[start : start + size]


def _query_stats(results: list[QueryResult]) -> dict[str, float]:
    """Steps and convergence of the examples of one query (over its chunks)."""
    steps = np.concatenate([np.asarray(r.example_steps) for r in results])
    done = np.concatenate([np.asarray(r.example_converged) for r in results])
    return {
        "mean_steps": float(steps.mean()),
        "max_steps": int(steps.max()),
        "converged_fraction": float(done.mean()),
    }


def _pc_accuracy(cfg, graph, ds) -> tuple[float, dict[str, float]]:
    relax = _relax(cfg)
    correct, results = 0, []
    for x, y in zip(_chunks(ds.x_test), _chunks(ds.y_test), strict=True):
        out = classify(graph, jnp.asarray(x), **relax)
        correct += int(np.sum(np.asarray(out.output) == y))
        results.append(out.query)
    return correct / len(ds.x_test), _query_stats(results)


def _relax(cfg) -> dict[str, float | int]:
    return {"tol": cfg.query_tol, "max_steps": cfg.query_max_steps, "gamma": cfg.query_gamma}


def _accuracy(predict: Callable[[jax.Array], jax.Array], ds) -> float:
    correct = 0
    for x, y in zip(_chunks(ds.x_test), _chunks(ds.y_test), strict=True):
        correct += int(np.sum(np.asarray(predict(jnp.asarray(x))) == y))
    return correct / len(ds.x_test)


def _panels(cfg, graph, ds, seed: int) -> tuple[dict, dict, dict]:
    """Fig. 5.3's queries on the same graph: image rows for the grids, MSEs, query stats.

    Completion MSEs are over the missing bottom half; denoising and generation over the
    whole image (generation against the mean test image of the label)."""
    n = min(cfg.panel_examples, len(ds.x_test))
    x, y = ds.x_test[:n], ds.y_test[:n]
    shown = np.array([int(np.flatnonzero(y == c)[0]) for c in range(ds.num_classes)])
    known = np.zeros(ds.num_features, bool)
    known[: ds.num_features // 2] = True  # the top 14 rows
    rng = np.random.default_rng(seed)
    noisy = (x + np.sqrt(cfg.noise_variance) * rng.standard_normal(x.shape)).astype(x.dtype)
    relax = _relax(cfg)
    rows, mse, stats = {}, {}, {}

    labels = np.arange(ds.num_classes)
    means = np.stack([ds.x_test[ds.y_test == c].mean(0) for c in labels])
    out = generate(graph, jnp.asarray(labels), **relax)
    rows["generate"] = {"generated": np.asarray(out.output), "class mean": means}
    mse["generate"] = float(np.mean((np.asarray(out.output) - means) ** 2))
    stats["generate"] = _query_stats([out.query])

    def query(name, fn, given, missing_only):
        outputs, results = [], []
        for start in range(0, n, 1000):
            res = fn(slice(start, start + 1000))
            outputs.append(np.asarray(res.output))
            results.append(res.query)
        recon = np.concatenate(outputs)
        err = (recon - x) ** 2
        mse[name] = float(err[:, ~known].mean() if missing_only else err.mean())
        stats[name] = _query_stats(results)
        rows[name] = {"given": given[shown], "output": recon[shown], "original": x[shown]}

    half = np.where(known, x, 0.0)
    query(
        "complete",
        lambda s: complete(graph, jnp.asarray(x[s]), known, **relax),
        half,
        missing_only=True,
    )
    query("denoise", lambda s: denoise(graph, jnp.asarray(noisy[s]), **relax), noisy, False)
    query(
        "complete_label",
        lambda s: complete(graph, jnp.asarray(x[s]), known, labels=jnp.asarray(y[s]), **relax),
        half,
        missing_only=True,
    )
    mse["denoise_input"] = float(np.mean((noisy - x) ** 2))
    return rows, mse, stats


def _grid(rows: dict[str, np.ndarray], title: str) -> plt.Figure:
    """One image per column, one row per entry of `rows`."""
    names = list(rows)
    cols = len(next(iter(rows.values())))
    fig, axes = plt.subplots(len(names), cols, figsize=(1.1 * cols, 1.2 * len(names) + 0.4))
    axes = np.asarray(axes).reshape(len(names), cols)
    for r, name in enumerate(names):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(np.clip(rows[name][c].reshape(SIDE, SIDE), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def _run_dataset(cfg, ctx, name: str) -> tuple[dict, dict[str, dict]]:
    subset = {"train": cfg.train_examples or None, "test": cfg.test_examples or None}
    ds = load_subset(name, ctx, **subset)
    if ds.num_features != SIDE * SIDE:
        raise ValueError(
            f"Dataset {name!r} has {ds.num_features} pixels; this experiment draws 28 x 28 "
            "images (use fashion-mnist or mnist)."
        )
    seconds, accuracy = {}, {}
    trainers = {
        "pc_graph": _train_pc_graph,
        "hopfield": _train_hopfield,
        "boltzmann": _train_boltzmann,
        "almeida_pineda": _train_almeida_pineda,
    }
    trained = {}
    for model, train in trainers.items():
        bar = tqdm(total=cfg.epochs, desc=f"{name} {model}", unit="epoch", disable=not ctx.progress)
        start = time.perf_counter()
        trained[model] = train(cfg, ds, ctx, bar)
        bar.close()
        seconds[f"train_{model}"] = time.perf_counter() - start
    graph, losses = trained["pc_graph"]

    start = time.perf_counter()
    accuracy["pc_graph"], classify_stats = _pc_accuracy(cfg, graph, ds)
    seconds["classify_pc_graph"] = time.perf_counter() - start
    start = time.perf_counter()
    steps = cfg.query_max_steps
    accuracy["hopfield"] = _accuracy(
        lambda x: hopfield.classify(trained["hopfield"], x, max_steps=steps).output, ds
    )
    accuracy["boltzmann"] = _accuracy(
        lambda x: boltzmann.classify(trained["boltzmann"], x, steps=cfg.steps).output, ds
    )
    accuracy["almeida_pineda"] = _accuracy(
        lambda x: almeida_pineda.classify(trained["almeida_pineda"], x, steps=cfg.steps).output,
        ds,
    )
    seconds["classify_baselines"] = time.perf_counter() - start

    start = time.perf_counter()
    rows, mse, stats = _panels(cfg, graph, ds, ctx.seed)
    seconds["panels"] = time.perf_counter() - start
    stats = {"classify": classify_stats, **stats}
    results = {
        "test_accuracy": accuracy,
        "mse": mse,
        "queries": stats,
        "train_energy": losses,
        "seconds": seconds,
        "train_examples": len(ds.x_train),
        "test_examples": len(ds.x_test),
        "neurons": ds.num_features + ds.num_classes + cfg.hidden,
    }
    return results, rows


def _markdown(cfg, results: dict, wall: float) -> str:
    acc_rows, query_rows, sections = [], [], []
    for name, r in results.items():
        thesis = THESIS_TABLE.get(name, {})
        acc_rows.append(
            [name]
            + [
                f"{100 * r['test_accuracy'][m]:.2f}% (thesis {thesis.get(m, 'n/a')}%)"
                for m in MODELS
            ]
        )
        for q, s in r["queries"].items():
            error = r["mse"].get(q, float("nan")) if q != "classify" else float("nan")
            query_rows.append(
                [
                    name,
                    q,
                    f"{error:.4f}" if np.isfinite(error) else "-",
                    f"{s['mean_steps']:.1f}",
                    s["max_steps"],
                    f"{100 * s['converged_fraction']:.1f}%",
                ]
            )
        sizes = (
            f"{name}: {r['train_examples']} training / {r['test_examples']} test images, "
            f"{r['neurons']} neurons; training seconds "
            + ", ".join(f"{m} {r['seconds'][f'train_{m}']:.0f}" for m in MODELS)
            + f"; PC classification {r['seconds']['classify_pc_graph']:.0f} s, "
            f"Fig. 5.3 queries {r['seconds']['panels']:.0f} s"
        )
        images = "\n".join(f"![{name} {panel}]({name}_{panel}.png)" for panel in PANELS)
        sections.append(f"{sizes}.\n\n{images}")
    first = next(iter(results.values()))
    noise = results[next(iter(results))]["mse"]["denoise_input"]
    return f"""# Fully connected PC graph: Table 5.1 and Fig. 5.3 (thesis section 5.2)

One fully connected PC graph (every ordered pair of the {first["neurons"]} neurons
connected: 784 pixels, 10 labels, {cfg.hidden} hidden; tanh, no bias, Eq. 5.1) trained
by Algorithm 8: pixels and one-hot label clamped, T = {cfg.steps} value steps of SGD
(gamma {cfg.gamma}) from zero, one AdamW step on the weights (lr {cfg.learning_rate},
weight decay {cfg.weight_decay}), batch {cfg.batch_size}, {cfg.epochs} epochs. Every query
is on this one graph: SGD on the free values (gamma {cfg.query_gamma}) until each
example's energy changes by less than {cfg.query_tol} in a step, capped at
{cfg.query_max_steps} steps.

Baselines on the same fully connected structure, same batches and epochs: a Hopfield
network (pixels binarised at 0.5 and bipolar labels, Hebb's rule, labels relaxed by
synchronous sign updates with the pixels held; it has no hidden neurons, as Hebb's rule
needs every neuron's state); a fully connected Boltzmann machine (same {first["neurons"]}
neurons; mean-field data term and {cfg.batch_size} persistent chains with T = {cfg.steps}
sweeps, Adam lr {cfg.boltzmann_learning_rate}; classified by mean-field with the pixels
held); Almeida–Pineda recurrent backprop (same neurons, tanh, T = {cfg.steps} forward and
T adjoint relaxation steps, squared error on the labels, Adam lr
{cfg.almeida_pineda_learning_rate}).

## Table 5.1: test accuracy

{markdown_table(["dataset", *MODELS], acc_rows)}

The thesis trains 2000 neurons (1206 hidden) for 20 epochs with early stopping, and
queries with T = 2000; this run is sized for a 2-core CPU (see the budget below).

## Fig. 5.3: queries of the same graph

Completion: the top half (14 rows) given, MSE over the missing bottom half; denoising:
Gaussian noise of variance {cfg.noise_variance} added (input MSE {noise:.4f}), query by
initialisation, MSE over the whole image; generation: MSE against the label's mean test
image.

{markdown_table(["dataset", "query", "MSE", "mean steps", "max steps", "converged"], query_rows)}

{(chr(10) * 2).join(sections)}

## Compute budget

{cfg.epochs} epochs, T = {cfg.steps}, batch {cfg.batch_size}, queries capped at
{cfg.query_max_steps} steps; wall time {wall:.0f} s for everything on this machine's 2 CPU
cores (shared with other jobs).
"""


@experiment(
    "pcgraph-fully-connected",
    "Fully connected PC graph vs Hopfield/Boltzmann/Almeida-Pineda, and its queries "
    "(thesis Table 5.1, Fig. 5.3)",
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    start = time.perf_counter()
    results, all_rows = {}, {}
    for name in cfg.datasets:
        results[name], all_rows[name] = _run_dataset(cfg, ctx, name)
    for name, rows in all_rows.items():
        for panel in PANELS:
            save_figure(_grid(rows[panel], f"{name}: {panel}"), ctx.out / f"{name}_{panel}.png")
    wall = time.perf_counter() - start
    out = {"config": dataclasses.asdict(cfg), **results, "wall_seconds": wall}
    return Report(out, _markdown(cfg, results, wall))
