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
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pcn
from pcn import data as pcn_data
from pcn.baselines import almeida_pineda, boltzmann, hopfield
from pcn.pcgraphs import (
    batch,
    classify,
    complete,
    denoise,
    fully_connected,
    generate,
    pc_graph,
    read_label,
    trainer,
)

from .common import check_settings, load_subset
from .output import markdown_table, save_figure
from .plots import curves as curves_figure
from .plots import image_grid
from .registry import PaperNumber, Report, RunContext, choose_config, experiment
from .trainer import Learner, fit

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
    query_momentum: float  # heavy-ball momentum of the queries' SGD (0: Eq. 5.3)
    query_tol: float
    query_max_steps: int
    noise_variance: float  # of the Gaussian noise in the denoising query
    boltzmann_learning_rate: float
    boltzmann_gibbs_steps: int  # chain updates per training step (PCD)
    almeida_pineda_learning_rate: float
    train_examples: int  # 0: the whole training set
    validation_examples: int  # held out of the training set for early stopping
    evaluations_per_epoch: int  # validation checks per epoch (the best model is kept)
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
        if self.validation_examples < 1 or self.evaluations_per_epoch < 1:
            raise ValueError("`validation_examples` and `evaluations_per_epoch` must be >= 1.")


FULL = FullyConnectedConfig(
    datasets=("fashion-mnist",),
    hidden=256,
    epochs=2,
    batch_size=64,
    steps=20,
    gamma=0.5,
    learning_rate=5e-5,
    weight_decay=1e-2,
    weight_scale=0.3,
    query_gamma=0.2,
    query_momentum=0.0,  # 0.9: all but generation converge in 500 steps, but classify -0.3
    query_tol=1e-4,
    query_max_steps=2000,  # the thesis's T; at 500 generation and completion stopped early
    noise_variance=0.5,
    boltzmann_learning_rate=1e-3,
    boltzmann_gibbs_steps=5,
    almeida_pineda_learning_rate=1e-3,
    train_examples=0,
    validation_examples=1000,
    evaluations_per_epoch=3,
    test_examples=0,
    panel_examples=1000,
)
QUICK = dataclasses.replace(
    FULL,
    hidden=32,
    epochs=1,
    steps=10,
    learning_rate=1e-3,  # a few dozen steps: a larger weight step than the full run
    query_max_steps=100,
    train_examples=2500,
    validation_examples=200,
    evaluations_per_epoch=1,
    test_examples=300,
    panel_examples=100,
)


def _batches(cfg: FullyConnectedConfig, ds: pcn_data.Dataset, epoch: int, seed: int):
    """The batches of one epoch; every model sees the same order."""
    return pcn_data.batches(ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=seed * 1000 + epoch)


@dataclasses.dataclass
class _Learner:
    """One model's training: its state, jitted step, the model the state holds (a copy
    that later steps cannot overwrite) and its classifier."""

    state: Any
    # (state, x, y, key) -> (state, info: None, or with the step's `loss`)
    step: Callable[[Any, jax.Array, jax.Array, jax.Array], tuple[Any, Any]]
    model: Callable[[Any], Any]
    predict: Callable[[Any, jax.Array], jax.Array]  # (model, images) -> classes


def _copy(tree: Any) -> Any:
    return jax.tree.map(lambda a: jnp.array(a, copy=True) if eqx.is_array(a) else a, tree)


def _pc_learner(cfg, ds, seed: int) -> _Learner:
    """Algorithm 8 on the fully connected graph (`trainer`)."""
    topology = fully_connected(
        ds.num_features + ds.num_classes + cfg.hidden,
        sensory=ds.num_features,
        labels=ds.num_classes,
    )
    graph = pc_graph(
        topology, activation="tanh", key=jax.random.key(seed), weight_scale=cfg.weight_scale
    )
    train = trainer(
        graph,
        steps=cfg.steps,
        gamma=cfg.gamma,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
    )

    def step(state, x, y, key):
        return train(state, batch(graph, x, y))

    return _Learner(
        train.init(graph),
        step,
        lambda state: _copy(train.graph(state)),  # its own arrays: the state may be donated
        lambda model, x: classify(model, x, **_relax(cfg)).output,
    )


def _hopfield_learner(cfg, ds, seed: int) -> _Learner:
    return _Learner(
        hopfield.hopfield(ds.num_features, ds.num_classes),
        lambda net, x, y, key: (hopfield.train_step(net, x, y), None),
        lambda net: net,
        lambda net, x: hopfield.classify(net, x, max_steps=cfg.query_max_steps).output,
    )


def _boltzmann_learner(cfg, ds, seed: int) -> _Learner:
    key = jax.random.key(seed + 1)
    machine = boltzmann.boltzmann_machine(ds.num_features, ds.num_classes, cfg.hidden, key=key)
    optimizer = optax.adam(cfg.boltzmann_learning_rate)
    train = boltzmann.make_train_step(
        optimizer, steps=cfg.steps, gibbs_steps=cfg.boltzmann_gibbs_steps
    )
    return _Learner(
        boltzmann.init(machine, optimizer, cfg.batch_size, key),
        lambda state, x, y, k: (train(state, x, y, k)[0], None),
        lambda state: state.machine,
        lambda machine, x: boltzmann.classify(machine, x, steps=cfg.steps).output,
    )


def _almeida_pineda_learner(cfg, ds, seed: int) -> _Learner:
    net = almeida_pineda.recurrent_network(
        ds.num_features, ds.num_classes, cfg.hidden, key=jax.random.key(seed + 2)
    )
    optimizer = optax.adam(cfg.almeida_pineda_learning_rate)
    train = almeida_pineda.make_train_step(optimizer, steps=cfg.steps)

    def step(state, x, y, key):
        net, opt_state = state
        net, opt_state, _ = train(net, opt_state, x, y)
        return (net, opt_state), None

    return _Learner(
        (net, optimizer.init(eqx.filter(net, eqx.is_inexact_array))),
        step,
        lambda state: state[0],
        lambda net, x: almeida_pineda.classify(net, x, steps=cfg.steps).output,
    )


def _fit(
    learner: _Learner, cfg, ds, val, ctx: RunContext, label: str
) -> tuple[Any, dict[str, Any], list[float]]:
    """Train for `cfg.epochs` on the shared batch order through `trainer.fit`
    (checkpoints under `label`), measuring the validation accuracy
    `cfg.evaluations_per_epoch` times an epoch; return the best model (early stopping,
    as the thesis reports), the validation curve and every step's loss (if any)."""
    n_batches = len(ds.x_train) // cfg.batch_size
    points = {
        round(n_batches * (k + 1) / cfg.evaluations_per_epoch)
        for k in range(cfg.evaluations_per_epoch)
    }
    key = jax.random.key(ctx.seed + 3)

    def batches(epoch: int) -> list[tuple[np.ndarray, np.ndarray, jax.Array]]:
        pieces = _batches(cfg, ds, epoch, ctx.seed)
        return [
            (x, y, jax.random.fold_in(key, epoch * n_batches + i))
            for i, (x, y) in enumerate(pieces)
        ]

    def validate(state) -> dict[str, float]:
        model = learner.model(state)
        return {"validation_accuracy": _accuracy(lambda x: learner.predict(model, x), *val)}

    result = fit(
        Learner(
            init=lambda: learner.state,
            step=lambda state, b: learner.step(state, jnp.asarray(b[0]), jnp.asarray(b[1]), b[2]),
            batches=batches,
            evaluate=validate,
        ),
        epochs=cfg.epochs,
        ctx=ctx,
        label=label,
        eval_points=lambda n: points,
        best="validation_accuracy",
        step_losses=True,
    )
    h = result.history
    curve: dict[str, Any] = {
        "epoch": [s // n_batches + (s % n_batches) / n_batches for s in h["step"]],
        "validation_accuracy": h["validation_accuracy"],
    }
    curve["best_epoch"] = curve["epoch"][int(np.argmax(curve["validation_accuracy"]))]
    return learner.model(result.best_state), curve, h.get("step_loss", [])


def _chunks(x: np.ndarray, size: int = 1000):
    for start in range(0, len(x), size):
        yield x[start : start + size]


def _query_stats(results: list[pcn.Inference]) -> dict[str, float]:
    """Steps and convergence of the examples of one query (over its chunks)."""
    steps = np.concatenate([np.asarray(r.example_steps) for r in results])
    done = np.concatenate([np.asarray(r.example_converged) for r in results])
    return {
        "mean_steps": float(steps.mean()),
        "max_steps": int(steps.max()),
        "converged_fraction": float(done.mean()),
    }


def _pc_accuracy(cfg, graph, x_all, y_all) -> tuple[dict[str, float], dict[str, float]]:
    """Accuracy of the classification query, read from the label neurons' values (the
    thesis's readout) and from their prediction at the same equilibrium; query stats."""
    relax = _relax(cfg)
    correct, results = {"value": 0, "prediction": 0}, []
    for x, y in zip(_chunks(x_all), _chunks(y_all), strict=True):
        out = classify(graph, jnp.asarray(x), **relax)
        for read in correct:
            predicted = read_label(graph, out.query.values, read=read)
            correct[read] += int(np.sum(np.asarray(predicted) == y))
        results.append(out.query)
    return {k: c / len(x_all) for k, c in correct.items()}, _query_stats(results)


def _relax(cfg) -> dict[str, Any]:
    """The queries' stop and value optimiser."""
    return {
        "stop": pcn.Tolerance(cfg.query_tol, cfg.query_max_steps),
        "value_optimizer": pcn.SGD(cfg.query_gamma, momentum=cfg.query_momentum),
    }


def _accuracy(predict: Callable[[jax.Array], jax.Array], x_all, y_all) -> float:
    correct = 0
    for x, y in zip(_chunks(x_all), _chunks(y_all), strict=True):
        correct += int(np.sum(np.asarray(predict(jnp.asarray(x))) == y))
    return correct / len(x_all)


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


def _split_validation(ds, n: int, seed: int):
    """Hold out `n` random training images for early stopping (the test set is only
    used once, for the reported numbers)."""
    order = np.random.default_rng(seed + 17).permutation(len(ds.x_train))
    held, kept = order[:n], order[n:]
    val = (ds.x_train[held], ds.y_train[held])
    return dataclasses.replace(ds, x_train=ds.x_train[kept], y_train=ds.y_train[kept]), val


def _run_dataset(cfg, ctx, name: str) -> tuple[dict, dict[str, dict]]:
    subset = {"train": cfg.train_examples or None, "test": cfg.test_examples or None}
    ds = load_subset(name, ctx, **subset)
    if ds.num_features != SIDE * SIDE:
        raise ValueError(
            f"Dataset {name!r} has {ds.num_features} pixels; this experiment draws 28 x 28 "
            "images (use fashion-mnist or mnist)."
        )
    ds, val = _split_validation(ds, cfg.validation_examples, ctx.seed)
    seconds, accuracy, curves = {}, {}, {}
    learners = {
        "pc_graph": lambda: _pc_learner(cfg, ds, ctx.seed),
        "hopfield": lambda: _hopfield_learner(cfg, ds, ctx.seed),
        "boltzmann": lambda: _boltzmann_learner(cfg, ds, ctx.seed),
        "almeida_pineda": lambda: _almeida_pineda_learner(cfg, ds, ctx.seed),
    }
    best = {}
    for model, make in learners.items():
        start = time.perf_counter()
        learner = make()
        best[model], curves[model], step_losses = _fit(
            learner, cfg, ds, val, ctx, f"{name}-{model}"
        )
        if model == "pc_graph":
            losses = step_losses
        seconds[f"train_{model}"] = time.perf_counter() - start
        if model != "pc_graph":
            start = time.perf_counter()
            accuracy[model] = _accuracy(
                lambda x, m=best[model], f=learner.predict: f(m, x), ds.x_test, ds.y_test
            )
            seconds[f"classify_{model}"] = time.perf_counter() - start
    graph = best["pc_graph"]
    start = time.perf_counter()
    by_readout, classify_stats = _pc_accuracy(cfg, graph, ds.x_test, ds.y_test)
    accuracy["pc_graph"] = by_readout["value"]
    val_by_readout, _ = _pc_accuracy(cfg, graph, *val)
    seconds["classify_pc_graph"] = time.perf_counter() - start
    per_epoch = len(ds.x_train) // cfg.batch_size
    energy = np.asarray(jax.device_get(losses), dtype=float)
    energy = energy[: len(energy) // per_epoch * per_epoch].reshape(-1, per_epoch).mean(1)

    start = time.perf_counter()
    rows, mse, stats = _panels(cfg, graph, ds, ctx.seed)
    seconds["panels"] = time.perf_counter() - start
    stats = {"classify": classify_stats, **stats}
    results = {
        "test_accuracy": accuracy,
        # the same query of the same graph, read from the label neurons' prediction
        "label_prediction_readout": {
            "test_accuracy": by_readout["prediction"],
            "validation_accuracy": val_by_readout["prediction"],
            "validation_accuracy_value_readout": val_by_readout["value"],
        },
        "mse": mse,
        "queries": stats,
        "validation": curves,
        "train_energy": energy.tolist(),  # PC graph, mean per epoch
        "seconds": seconds,
        "train_examples": len(ds.x_train),
        "validation_examples": len(val[0]),
        "test_examples": len(ds.x_test),
        "neurons": ds.num_features + ds.num_classes + cfg.hidden,
    }
    return results, rows


def _markdown(cfg, results: dict, wall: float) -> str:
    acc_rows, query_rows, sections, stopping, margins = [], [], [], [], []
    for name, r in results.items():
        thesis = THESIS_TABLE.get(name, {})
        acc_rows.append(
            [name]
            + [
                f"{100 * r['test_accuracy'][m]:.2f}% (thesis {thesis.get(m, 'n/a')}%)"
                for m in MODELS
            ]
        )
        acc = r["test_accuracy"]
        margins.append(
            f"{name}: the PC graph minus each baseline, in points: "
            + ", ".join(
                f"{m} {100 * (acc['pc_graph'] - acc[m]):+.2f}"
                f" ({'beaten' if acc['pc_graph'] > acc[m] else 'NOT beaten'})"
                for m in MODELS[1:]
            )
            + "."
        )
        readout = r["label_prediction_readout"]
        margins.append(
            f"{name}: the same classification query read from the label neurons' "
            f'prediction mu instead of their values (`classify(read="prediction")`): '
            f"{100 * readout['test_accuracy']:.2f}% test, "
            f"{100 * readout['validation_accuracy']:.2f}% validation (values: "
            f"{100 * readout['validation_accuracy_value_readout']:.2f}% validation). "
            "Table 5.1 uses the values, the thesis's readout."
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
        best = ", ".join(f"{m} {r['validation'][m]['best_epoch']:.2f}" for m in MODELS)
        stopping.append(
            f"{name}: best validation check at epoch {best}.\n\n"
            f"![{name} validation]({name}_validation.png)"
        )
        sections.append(f"{sizes}.\n\n{images}")
    first = next(iter(results.values()))
    noise = results[next(iter(results))]["mse"]["denoise_input"]
    return f"""# Fully connected PC graph: Table 5.1 and Fig. 5.3 (thesis section 5.2)

One fully connected PC graph (every ordered pair of the {first["neurons"]} neurons
connected: 784 pixels, 10 labels, {cfg.hidden} hidden; tanh, no bias, Eq. 5.1) trained
by Algorithm 8: pixels and one-hot label clamped, T = {cfg.steps} value steps of SGD
(gamma {cfg.gamma}) from zero, one AdamW step on the weights (lr {cfg.learning_rate},
weight decay {cfg.weight_decay}), batch {cfg.batch_size}, {cfg.epochs} epochs. Every query
is on this one graph: SGD on the free values (gamma {cfg.query_gamma}, heavy-ball
momentum {cfg.query_momentum}) until each
example's energy changes by less than {cfg.query_tol} in a step, capped at
{cfg.query_max_steps} steps.

Baselines on the same fully connected structure, same batches and epochs: a Hopfield
network (pixels binarised at 0.5 and bipolar labels, Hebb's rule, labels relaxed by
synchronous sign updates with the pixels held; it has no hidden neurons, as Hebb's rule
needs every neuron's state); a fully connected Boltzmann machine (same {first["neurons"]}
neurons; data term by T = {cfg.steps} mean-field sweeps, model term from {cfg.batch_size}
persistent chains advanced {cfg.boltzmann_gibbs_steps} Gibbs sweeps per update (PCD),
Adam lr {cfg.boltzmann_learning_rate}; classified by mean-field with the pixels
held); Almeida–Pineda recurrent backprop (same neurons, tanh, T = {cfg.steps} forward and
T adjoint relaxation steps, squared error on the labels, Adam lr
{cfg.almeida_pineda_learning_rate}).

## Table 5.1: test accuracy

{markdown_table(["dataset", *MODELS], acc_rows)}

{(chr(10) * 2).join(margins)}

Every model is early-stopped the same way: its validation accuracy on
{first["validation_examples"]} held-out training images is checked
{cfg.evaluations_per_epoch} times an epoch and the best checkpoint is the one tested.
The thesis trains 2000 neurons (1206 hidden) for 20 epochs with early stopping, and
queries with T = 2000; this run is sized for a 2-core CPU (see the budget below).

{(chr(10) * 2).join(stopping)}

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


# Table 5.1 for `pcn report` (results hold fractions)
PAPER_NUMBERS = tuple(
    PaperNumber(
        "thesis Table 5.1",
        f"{name}, {model} (fraction)",
        value / 100,
        f"{name}.test_accuracy.{model}",
    )
    for name, by_model in THESIS_TABLE.items()
    for model, value in by_model.items()
)


@experiment(
    "pcgraph-fully-connected",
    "Fully connected PC graph vs Hopfield/Boltzmann/Almeida-Pineda, and its queries "
    "(thesis Table 5.1, Fig. 5.3)",
    paper=PAPER_NUMBERS,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    start = time.perf_counter()
    results, all_rows = {}, {}
    for name in cfg.datasets:
        results[name], all_rows[name] = _run_dataset(cfg, ctx, name)
    for name, rows in all_rows.items():
        curves = results[name]["validation"]
        fig = curves_figure(
            {m: curves[m]["validation_accuracy"] for m in MODELS},
            "validation accuracy (%)",
            f"{name}: early stopping checks",
            x={m: curves[m]["epoch"] for m in MODELS},
            scale=100,
        )
        save_figure(fig, ctx.out / f"{name}_validation.png")
        for panel in PANELS:
            save_figure(
                image_grid(rows[panel], (SIDE, SIDE), f"{name}: {panel}"),
                ctx.out / f"{name}_{panel}.png",
            )
    wall = time.perf_counter() - start
    out = {"config": dataclasses.asdict(cfg), **results, "wall_seconds": wall}
    return Report(out, _markdown(cfg, results, wall))
