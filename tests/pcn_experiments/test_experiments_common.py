"""`train_runs` (the side-by-side trainer of the experiments) flags an unstable
relaxation: a mean energy that rises over the relaxation gets a warning naming the run,
and the epoch is recorded, instead of training on silently."""

import warnings

import jax
import numpy as np
import pytest

from pcn import IL, mlp
from pcn.data import Dataset
from pcn.training import supervised_batch
from pcn_experiments.common import TrainingRun, train_runs
from pcn_experiments.registry import RunContext


def _tiny_dataset() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.random((64, 6)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    return Dataset("tiny", x, y, x[:16], y[:16], (6,), 2, "generated in the test")


def _train(gamma: float, tmp_path):
    ds = _tiny_dataset()
    graph = mlp([6, 16, 2], activation="tanh", key=jax.random.key(0))
    run = TrainingRun(graph, IL(20, gamma=gamma), supervised_batch(2))
    curves, _ = train_runs(
        {"pc": run},
        ds,
        epochs=1,
        batch_size=16,
        learning_rate=1e-3,
        metric="loss",
        evaluate=lambda label, g: 0.0,
        ctx=RunContext(out=tmp_path, progress=False),
    )
    return curves["pc"]


def test_a_stable_relaxation_trains_without_a_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curve = _train(0.1, tmp_path)
    assert curve["energy"][-1] < curve["energy"][0]
    assert "relaxation_rose" not in curve


def test_a_rising_relaxation_energy_is_flagged_with_the_run_and_the_fix(tmp_path):
    with pytest.warns(RuntimeWarning, match=r"pc: in epoch 0 .* rose .* lower the value step"):
        curve = _train(3.0, tmp_path)
    assert curve["relaxation_rose"] == [0]
