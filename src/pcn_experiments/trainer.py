"""The suite's one training loop, `fit`: every experiment trains its models through it,
so batching, evaluation points, checkpoints, `--resume` and the progress bar behave
the same everywhere (and `--resume` works for every experiment that uses it).

A model enters through a `Learner`: how to start (`init`), one training step on one
batch (`step`), the batches of an epoch in order (`batches`) and what to measure
(`evaluate`). The state must be a pytree `pcn.checkpoint.save_checkpoint` can store
(a `TrainState` of `pcn.make_train_step` is one); `train_step_learner` makes the
Learner of a `TrainStep`.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pcn._validation import check_at_least
from pcn.algorithms import UNSTABLE_RELAXATION_HINT, TrainStep
from pcn.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    step_checkpoints,
)
from pcn.data import batches as data_batches
from pcn.graph import PCGraph

from .registry import RunContext
from .run_folder import RunFolderError, identity_differences, mismatch_message

S = TypeVar("S")
BEST_FILE = "best.ckpt"


@dataclasses.dataclass(frozen=True)
class Learner(Generic[S]):
    """What `fit` needs of a model. `step(state, batch)` returns the new state and an
    info with a scalar `loss` (and, for a relaxation, an `energy_trace`); `batches(epoch)`
    lists the epoch's batches in training order (the same list for the same epoch, so a
    resumed run sees the batches an uninterrupted one would); `evaluate(state)` returns
    named numbers, recorded at every evaluation point."""

    init: Callable[[], S]
    step: Callable[[S, Any], tuple[S, Any]]
    batches: Callable[[int], Sequence[Any]]
    evaluate: Callable[[S], Mapping[str, float]] = lambda state: {}
    # the advice when the relaxation's energy rose (the algorithm's `rising_energy_hint`)
    energy_hint: str = UNSTABLE_RELAXATION_HINT


@dataclasses.dataclass(frozen=True)
class FitResult(Generic[S]):
    """The trained state, the state of the best evaluation (with `best`), the recorded
    history (evaluation names, "step" of each evaluation, per epoch "train_loss" and
    "epoch_seconds", the last epoch's mean "energy" trace, epochs whose relaxation
    energy rose in "relaxation_rose") and the step time without the compiling step."""

    state: S
    best_state: S | None
    history: dict[str, Any]
    timed_steps: int
    timed_seconds: float

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.timed_seconds / max(self.timed_steps, 1)

    @property
    def train_seconds(self) -> float:
        return float(np.sum(self.history["epoch_seconds"]))


def shuffled_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, seed: int
) -> Callable[[int], list[tuple[np.ndarray, np.ndarray]]]:
    """Epoch -> its `(x, y)` batches, shuffled with seed `seed * 1000 + epoch` by
    `pcn.data.batches` (the order `pcn.training.train_epoch` uses)."""
    return lambda epoch: list(data_batches(x, y, batch_size, key_or_seed=seed * 1000 + epoch))


def batch_content_key(batch: Sequence[np.ndarray]) -> jax.Array:
    """A PRNG key drawn from a batch's inputs alone (a random initialiser's), so a resumed
    run draws what an uninterrupted one would."""
    return jax.random.key(zlib.crc32(np.ascontiguousarray(batch[0]).tobytes()))


def train_step_learner(
    step: TrainStep,
    graph: PCGraph,
    batches: Callable[[int], Sequence[Any]],
    make_batch: Callable[[Any], Mapping[str, Any]],
    evaluate: Callable[[PCGraph], Mapping[str, float]] = lambda graph: {},
    key: Any = None,
    batch_key: Callable[[Any], Any] | None = None,
) -> Learner:
    """The Learner of a compiled `TrainStep` started at `graph`: each batch of
    `batches(epoch)` becomes node values by `make_batch(batch)`, and `evaluate` sees
    the trained graph. A step that carries values between batches (a carrying
    initialiser) starts from the first batch of epoch 0, with `key` (a checkpoint
    holds the carry, so a resumed run continues it). `batch_key(batch)` gives each step
    its PRNG key (a random initialiser's); derived from the batch, a resumed run draws
    what an uninterrupted one would."""

    def init() -> Any:
        if not step.algorithm.carries:
            return step.init(graph)
        return step.init(graph, batch=make_batch(batches(0)[0]), key=key)

    return Learner(
        init=init,
        step=lambda state, batch: step(
            state, make_batch(batch), None if batch_key is None else batch_key(batch)
        ),
        batches=batches,
        evaluate=lambda state: evaluate(step.graph(state)),
        energy_hint=step.algorithm.rising_energy_hint,
    )


def _eval_points(per_epoch: int, evals_per_epoch: int) -> set[int]:
    """Steps within an epoch (1-based) after which to evaluate, the last always."""
    return set(np.linspace(0, per_epoch, evals_per_epoch + 1).astype(int)[1:].tolist())


def fit(
    learner: Learner[S],
    *,
    epochs: int,
    ctx: RunContext,
    label: str,
    evals_per_epoch: int = 1,
    eval_points: Callable[[int], Collection[int]] | None = None,
    evaluate_first: bool = False,
    best: str | None = None,
    minimize: bool = False,
    step_losses: bool = False,
    keep: int | None = None,
) -> FitResult[S]:
    """Train `learner` for `epochs`, evaluating `evals_per_epoch` times per epoch
    (evenly spaced, the last after the epoch's last batch; or after the steps, counted
    from 1 within the epoch, that `eval_points(batches in the epoch)` names) and, with
    `evaluate_first`, before training; each evaluation is stored with its step and the
    training seconds before it (history "seconds": evaluations and the compiling first
    step left out), and is passed to `ctx.monitor` if set. With `step_losses` every
    step's loss is kept too (history "step_loss"); an info without `loss` (a baseline's
    step) records none.

    After every epoch the state and the history are checkpointed in
    `ctx.out/checkpoints/<label>/`; with `ctx.resume` training continues after the
    latest checkpoint there. With `best` (an evaluation name), a copy of the state of
    the best value so far (largest, or smallest with `minimize`) is also kept, in
    `best.ckpt`. With `keep`, only the latest `keep` epoch checkpoints stay on disk
    (for many short epochs of a large state).
    """
    check_at_least("epochs", epochs, 1)
    check_at_least("evals_per_epoch", evals_per_epoch, 1)
    if keep is not None:
        check_at_least("keep", keep, 1, hint="None keeps every checkpoint.")
    folder = Path(ctx.out) / "checkpoints" / label
    state = learner.init()
    history: dict[str, Any] = {"step": [], "train_loss": [], "epoch_seconds": [], "energy": []}
    timed_steps, timed_seconds, first_epoch, done = 0, 0.0, 0, 0
    best_state, best_value = None, None
    run = ctx.run_record()
    intact = _latest_intact(folder) if ctx.resume else None
    if intact is not None:
        latest, saved = intact
        differences = identity_differences(saved.get("run", {}), run)
        if differences:
            raise RunFolderError(mismatch_message(latest, differences))
        state, meta = load_checkpoint(latest, state)
        history, first_epoch = meta["curves"], meta["epoch"] + 1
        history.setdefault("step", [])
        timed_steps, timed_seconds = meta["timed_steps"], meta["timed_seconds"]
        done = meta.get("steps_done")
        if best is not None and (folder / BEST_FILE).is_file():
            best_state, best_meta = load_checkpoint(folder / BEST_FILE, state)
            best_value = best_meta["value"]

    def record(done: int, trained: float) -> None:
        nonlocal best_state, best_value
        values = learner.evaluate(state)
        history["step"].append(done)
        history.setdefault("seconds", []).append(trained)
        for name, value in values.items():
            history.setdefault(name, []).append(value)
        if best is not None:
            value = values[best]
            if best_value is None or (value < best_value if minimize else value > best_value):
                best_state, best_value = _copy(state), value
                save_checkpoint(folder / BEST_FILE, state, metadata={"value": value, "step": done})
        bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()})
        if ctx.monitor is not None:
            ctx.monitor(done, values)

    bar = tqdm(
        desc=label, unit="epoch", initial=first_epoch, total=epochs, disable=not ctx.progress
    )
    if evaluate_first and first_epoch == 0:
        record(0, 0.0)
    if done is None:  # a checkpoint of train_runs before `fit`
        done = sum(len(learner.batches(e)) for e in range(first_epoch))
    for epoch in range(first_epoch, epochs):
        pieces = learner.batches(epoch)
        if not pieces:
            raise ValueError(
                f"{label}: epoch {epoch} has no batches; lower `batch_size` or give more data."
            )
        eval_at = (eval_points or (lambda n: _eval_points(n, evals_per_epoch)))(len(pieces))
        losses, traces = [], []
        seconds, first = 0.0, 0.0
        # the first step of a process compiles; it is left out of the step time
        compiled = epoch == first_epoch
        start = time.perf_counter()
        for i, batch in enumerate(pieces):
            state, info = learner.step(state, batch)
            if getattr(info, "loss", None) is not None:
                losses.append(info.loss)
            if getattr(info, "energy_trace", None) is not None:
                traces.append(info.energy_trace)
            if i == 0:
                jax.block_until_ready(info)
                first = time.perf_counter() - start
            done += 1
            if i + 1 in eval_at:
                jax.block_until_ready(state)
                seconds += time.perf_counter() - start
                record(done, timed_seconds + seconds - (first if compiled else 0.0))
                start = time.perf_counter()
        if losses:
            losses = np.asarray(jax.device_get(jnp.stack(losses)))
            history["train_loss"].append(float(losses.mean()))
            if step_losses:
                history.setdefault("step_loss", []).extend(losses.tolist())
        history["epoch_seconds"].append(seconds)
        if traces:
            history["energy"] = np.asarray(
                jax.device_get(jnp.mean(jnp.stack(traces), axis=0))
            ).tolist()
            _check_energy(history, label, epoch, learner.energy_hint)
        timed_steps += len(pieces) - compiled
        timed_seconds += seconds - (first if compiled else 0.0)
        meta = {"epoch": epoch, "curves": history, "timed_steps": timed_steps, "run": run}
        meta.update(timed_seconds=timed_seconds, steps_done=done)
        save_checkpoint(checkpoint_path(folder, epoch), state, metadata=meta)
        if keep is not None and epoch >= keep:
            checkpoint_path(folder, epoch - keep).unlink(missing_ok=True)
        bar.update()
    bar.close()
    return FitResult(state, best_state, history, timed_steps, timed_seconds)


def _latest_intact(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest epoch checkpoint in `folder` whose file verifies, with its metadata, or
    None if there is none. A newer one that does not (corrupt or truncated) is skipped
    with a warning naming it: training resumes from the epoch before it."""
    skipped = []
    for path in reversed(step_checkpoints(folder)):
        try:
            meta = read_metadata(path)
        except ValueError as error:
            skipped.append(f"{path.name} ({error})")
            continue
        if skipped:
            warnings.warn(
                f"--resume: skipped unreadable checkpoints {'; '.join(skipped)}; resuming "
                f"from {path.name}, the newest intact one.",
                RuntimeWarning,
                stacklevel=3,
            )
        return path, meta
    if skipped:
        raise RunFolderError(
            f"--resume: no checkpoint in {folder} reads back ({'; '.join(skipped)}); "
            "run without --resume and with --overwrite to start afresh."
        )
    return None


def _copy(tree: Any) -> Any:
    """A copy of the arrays of `tree` that a step donating its state cannot overwrite."""
    return jax.tree.map(lambda a: a.copy() if isinstance(a, jax.Array) else a, tree)


def _check_energy(history: dict[str, Any], label: str, epoch: int, hint: str) -> None:
    """Record and warn when the epoch's mean relaxation energy rose over the steps."""
    energy = history["energy"]
    if len(energy) > 1 and energy[-1] > energy[0]:
        history.setdefault("relaxation_rose", []).append(epoch)
        warnings.warn(
            f"{label}: in epoch {epoch} the mean relaxation energy rose from "
            f"{energy[0]:.4g} before the first value step to {energy[-1]:.4g} "
            f"before the last. {hint}",
            RuntimeWarning,
            stacklevel=3,
        )
