"""Pieces the supervised experiments share: data subsets, side-by-side BP/PC training
from the same initial weights."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import jax
import numpy as np
import optax

from pcn import data as pcn_data
from pcn._validation import check_at_least, check_positive
from pcn.algorithms import BP, IL, AbstractAlgorithm, make_train_step
from pcn.graph import PCGraph
from pcn.models import mlp
from pcn.training import accuracy, supervised_batch

from .registry import RunContext
from .trainer import fit, shuffled_batches, train_step_learner


def load_subset(
    name: str, ctx: RunContext, *, train: int | None, test: int | None
) -> pcn_data.Dataset:
    """Dataset `name`, cut to the first `train`/`test` examples of a seeded shuffle."""
    ds = pcn_data.load(name, data_dir=ctx.data_dir)
    if ctx.data_dir is not None:
        root, found = Path(ctx.data_dir).expanduser().resolve(), Path(ds.source)
        if found.is_absolute() and not found.resolve().is_relative_to(root):
            raise ValueError(
                f"--data-dir {ctx.data_dir} does not hold {name} (it was found at "
                f"{ds.source} instead); put the files there, or leave --data-dir out to use "
                "that copy."
            )
    rng = np.random.default_rng(ctx.seed)

    def cut(x, y, n):
        if n is None or n >= len(x):
            return x, y
        idx = rng.permutation(len(x))[:n]
        return x[idx], y[idx]

    x_train, y_train = cut(ds.x_train, ds.y_train, train)
    x_test, y_test = cut(ds.x_test, ds.y_test, test)
    # the run's record: which copy was read, and a hash of exactly the arrays used (part
    # of the identity a resumed run must match)
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    ctx.identity.setdefault("data_sha256", {})[name] = digest.hexdigest()
    ctx.data_sources[name] = ds.source
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


def prefixed_settings(cfg: Any, prefix: str) -> dict[str, Any]:
    """The settings of `cfg` named `prefix...`, without the prefix: one method's own
    settings in a config that holds several methods' (`bp_learning_rate` -> for "bp_":
    `learning_rate`)."""
    return {
        f.name[len(prefix) :]: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if f.name.startswith(prefix)
    }


def check_names(setting: str, names: tuple[str, ...], choices: tuple[str, ...]) -> None:
    """A setting that lists some of `choices` (at least one), naming them all if not."""
    if not names or set(names) - set(choices):
        raise ValueError(f"`{setting}` must list some of {', '.join(choices)}, got {names!r}.")


def check_settings(cfg: Any) -> None:
    """Validate the numeric settings of an experiment config, naming the bad one."""
    for name in ("learning_rate", "gamma", "output_precision", "threshold"):
        if hasattr(cfg, name):
            check_positive(name, getattr(cfg, name))
    for name in ("epochs", "batch_size", "steps", "train_steps", "eval_steps"):
        if hasattr(cfg, name):
            check_at_least(name, getattr(cfg, name), 1)


def supervised_mlp(cfg: SupervisedConfig, seed: int) -> PCGraph:
    """The MLP of a supervised config: its widths, activation and output energy."""
    return mlp(
        cfg.sizes,
        activation=cfg.activation,
        output=cast(Any, cfg.output),
        output_precision=cfg.output_precision,
        key=jax.random.key(seed),
    )


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

    Each run trains through `trainer.fit` (checkpoints under `ctx.out/checkpoints/<label>/`
    after every epoch; with `ctx.resume` a run continues from the latest one).
    """
    optimizer = optax.adam(learning_rate)
    curves: dict[str, dict[str, Any]] = {}
    trained: dict[str, PCGraph] = {}
    order = shuffled_batches(ds.x_train, ds.y_train, batch_size, ctx.seed)
    for label, run in runs.items():
        step = make_train_step(run.graph, run.algorithm, optimizer)
        learner = train_step_learner(
            step,
            run.graph,
            order,
            lambda b, make=run.make_batch: make(*b),
            lambda g, label=label: {metric: evaluate(label, g)},
        )
        result = fit(learner, epochs=epochs, ctx=ctx, label=label)
        h = result.history
        c = {metric: h[metric], "train_loss": h["train_loss"]}
        c.update({"epoch_seconds": h["epoch_seconds"], "energy": h["energy"]})
        if "relaxation_rose" in h:
            c["relaxation_rose"] = h["relaxation_rose"]
        c["ms_per_step"] = result.ms_per_step
        curves[label] = c
        trained[label] = step.graph(result.state)
    return curves, trained


def compare_bp_pc(
    graph: PCGraph,
    ds: pcn_data.Dataset,
    cfg: SupervisedConfig,
    ctx: RunContext,
    *,
    extra: Mapping[str, tuple[PCGraph, AbstractAlgorithm]] | None = None,
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
