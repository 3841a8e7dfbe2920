"""Pieces the supervised experiments share: data subsets, side-by-side BP/PC training
from the same initial weights."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optax
from tqdm.auto import tqdm

from pcn import data as pcn_data
from pcn._validation import check_at_least, check_positive
from pcn.algorithms import BP, IL, AbstractAlgorithm, make_train_step
from pcn.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from pcn.graph import PCGraph
from pcn.training import accuracy, supervised_batch, train_epoch

from .registry import RunContext


def load_subset(
    name: str, ctx: RunContext, *, train: int | None, test: int | None
) -> pcn_data.Dataset:
    """Dataset `name`, cut to the first `train`/`test` examples of a seeded shuffle."""
    ds = pcn_data.load(name, data_dir=ctx.data_dir)
    rng = np.random.default_rng(ctx.seed)

    def cut(x, y, n):
        if n is None or n >= len(x):
            return x, y
        idx = rng.permutation(len(x))[:n]
        return x[idx], y[idx]

    x_train, y_train = cut(ds.x_train, ds.y_train, train)
    x_test, y_test = cut(ds.x_test, ds.y_test, test)
    return dataclasses.replace(ds, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@dataclasses.dataclass(frozen=True)
class SupervisedConfig:
    """Budget and hyperparameters of a BP-vs-PC comparison (stated in every report)."""

    sizes: tuple[int, ...]
    activation: str
    epochs: int
    batch_size: int
    steps: int  # T
    gamma: float
    learning_rate: float
    output: str = "gaussian"
    output_precision: float = 1.0  # of a Gaussian output energy (1 / variance)

    def __post_init__(self) -> None:
        check_settings(self)


def check_settings(cfg: Any) -> None:
    """Validate the numeric settings of an experiment config, naming the bad one."""
    for name in ("learning_rate", "gamma", "output_precision"):
        if hasattr(cfg, name):
            check_positive(name, getattr(cfg, name))
    for name in ("epochs", "batch_size", "steps", "train_steps", "eval_steps"):
        if hasattr(cfg, name):
            check_at_least(name, getattr(cfg, name), 1)


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """One model to train in an experiment: its start, algorithm and batch maker."""

    graph: PCGraph
    algorithm: AbstractAlgorithm
    make_batch: Callable[[np.ndarray, np.ndarray], Mapping[str, Any]]


def train_runs(
    runs: dict[str, TrainingRun],
    ds: pcn_data.Dataset,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    metric: str,
    evaluate: Callable[[str, PCGraph], float],
    ctx: RunContext,
) -> tuple[dict[str, dict[str, Any]], dict[str, PCGraph]]:
    """Train every run with Adam(`learning_rate`) on the same batch order, recording
    `evaluate(label, graph)` under `metric` after each epoch, the mean training loss,
    epoch times, the last epoch's mean energy trace and the compiled step time.
    Returns these curves and the trained graphs, by label.

    After every epoch the training state is checkpointed under `ctx.out/checkpoints/`;
    with `ctx.resume` a run continues from the latest checkpoint of each method.
    """
    optimizer = optax.adam(learning_rate)
    curves: dict[str, dict[str, Any]] = {}
    trained: dict[str, PCGraph] = {}
    for label, run in runs.items():
        step = make_train_step(run.graph, run.algorithm, optimizer)
        state = step.init(run.graph)
        folder = ctx.out / "checkpoints" / label
        c = {metric: [], "train_loss": [], "epoch_seconds": [], "energy": []}
        timed_steps, timed_seconds, first_epoch = 0, 0.0, 0
        latest = latest_checkpoint(folder) if ctx.resume else None
        if latest is not None:
            state, meta = load_checkpoint(latest, state)
            c, first_epoch = meta["curves"], meta["epoch"] + 1
            timed_steps, timed_seconds = meta["timed_steps"], meta["timed_seconds"]
        bar = tqdm(
            range(first_epoch, epochs),
            desc=label,
            unit="epoch",
            initial=first_epoch,
            total=epochs,
            disable=not ctx.progress,
        )
        for epoch in bar:
            state, stats = train_epoch(
                step,
                state,
                run.make_batch,
                ds.x_train,
                ds.y_train,
                batch_size=batch_size,
                seed=ctx.seed * 1000 + epoch,
            )
            c[metric].append(evaluate(label, step.graph(state)))
            bar.set_postfix({metric: f"{c[metric][-1]:.4g}", "loss": f"{stats.loss:.3g}"})
            c["train_loss"].append(stats.loss)
            c["epoch_seconds"].append(stats.seconds)
            c["energy"] = stats.energy.tolist()
            if len(c["energy"]) > 1 and c["energy"][-1] > c["energy"][0]:
                c.setdefault("relaxation_rose", []).append(epoch)
                warnings.warn(
                    f"{label}: in epoch {epoch} the mean relaxation energy rose from "
                    f"{c['energy'][0]:.4g} before the first value step to {c['energy'][-1]:.4g} "
                    "before the last: the relaxation is unstable. Lower the value step "
                    "(`gamma`), for the stiffest node at least.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            # the first step of a process compiles; it is left out of the step time
            compiled = epoch == first_epoch
            timed_steps += stats.steps - compiled
            timed_seconds += stats.seconds - (stats.first_step_seconds if compiled else 0.0)
            meta = {"epoch": epoch, "curves": c, "timed_steps": timed_steps}
            meta["timed_seconds"] = timed_seconds
            save_checkpoint(checkpoint_path(folder, epoch), state, metadata=meta)
        c["ms_per_step"] = 1e3 * timed_seconds / max(timed_steps, 1)
        curves[label] = c
        trained[label] = step.graph(state)
    return curves, trained


def compare_bp_pc(
    graph: PCGraph,
    ds: pcn_data.Dataset,
    cfg: SupervisedConfig,
    ctx: RunContext,
    *,
    extra: dict[str, tuple[PCGraph, AbstractAlgorithm]] | None = None,
) -> dict[str, Any]:
    """Train BP and PC (IL) from the same initial `graph` with the same optimiser and
    batch order (plus any `extra` variants, by label); return per-epoch test
    accuracies, losses and times, and PC's mean relaxation energy trace."""
    make_batch = supervised_batch(ds.num_classes)
    pairs = {"bp": (graph, BP()), "pc": (graph, IL(cfg.steps, gamma=cfg.gamma))}
    pairs.update(extra or {})
    curves, _ = train_runs(
        {label: TrainingRun(g, alg, make_batch) for label, (g, alg) in pairs.items()},
        ds,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        metric="test_accuracy",
        evaluate=lambda label, graph: accuracy(graph, ds.x_test, ds.y_test),
        ctx=ctx,
    )
    energy = np.asarray(curves["pc"]["energy"])
    for c in curves.values():
        c.pop("energy")
    return {"curves": curves, "energy_trace": energy}
