"""`zil-training`: BP and Z-IL train the same Fashion-MNIST MLP from the same start in
float64 and produce the same loss sequence (thesis chapter 3, Theorem 1)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from matplotlib.figure import Figure

from pcn.algorithms import BP, make_train_step
from pcn.data import batches, one_hot
from pcn.models import mlp
from pcn.zero_divergence import ZIL

from .common import check_settings, load_subset
from .output import markdown_table, save_figure
from .registry import PaperNumber, Report, RunContext, choose_config, experiment
from .trainer import fit, train_step_learner


@dataclasses.dataclass(frozen=True)
class ZILTrainingConfig:
    sizes: tuple[int, ...]
    activation: str
    steps: int  # weight updates
    batch_size: int
    learning_rate: float

    def __post_init__(self) -> None:
        check_settings(self)


FULL = ZILTrainingConfig(
    sizes=(784, 128, 128, 10), activation="tanh", steps=200, batch_size=20, learning_rate=0.01
)
QUICK = dataclasses.replace(FULL, steps=30)


def _loss_figure(losses: dict[str, np.ndarray]) -> Figure:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 5), sharex=True)
    for label, values in losses.items():
        top.plot(values, label=label, lw=1.2, ls="-" if label == "BP" else "--")
    top.set_ylabel("training loss (batch)")
    top.legend()
    top.grid(alpha=0.3)
    diff = np.abs(losses["BP"] - losses["Z-IL"])
    bottom.plot(np.maximum(diff, 1e-300))
    bottom.set_yscale("log")
    bottom.set_ylabel("|BP - Z-IL|")
    bottom.set_xlabel("weight update")
    bottom.grid(alpha=0.3)
    return fig


@experiment(
    "zil-training",
    "BP and Z-IL train a Fashion-MNIST MLP with identical losses (float64)",
    paper=(
        PaperNumber(
            "thesis Theorem 1 (ch. 3)",
            "largest difference between the BP and Z-IL losses",
            0.0,
            "max_abs_loss_diff",
        ),
    ),
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    ds = load_subset("fashion-mnist", ctx, train=cfg.steps * cfg.batch_size, test=0)
    losses: dict[str, np.ndarray] = {}
    with jax.enable_x64(True):
        graph = mlp(cfg.sizes, activation=cfg.activation, key=jax.random.key(ctx.seed))
        pieces = list(batches(ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=ctx.seed))[
            : cfg.steps
        ]

        def make_batch(piece: tuple[np.ndarray, np.ndarray]) -> dict[str, jax.Array]:
            xb, yb = piece
            return {
                "x": jnp.asarray(xb, jnp.float64),
                "y": jnp.asarray(one_hot(yb, ds.num_classes), jnp.float64),
            }

        for label, algorithm in (("BP", BP()), ("Z-IL", ZIL())):
            step = make_train_step(graph, algorithm, optax.sgd(cfg.learning_rate))
            # one epoch of `steps` batches, every step's loss kept
            learner = train_step_learner(step, graph, lambda epoch: pieces, make_batch)
            result = fit(learner, epochs=1, ctx=ctx, label=label.lower(), step_losses=True)
            losses[label] = np.asarray(result.history["step_loss"])
            final = np.concatenate([np.ravel(np.asarray(x)) for x in result.state.leaves])
            losses[label + "_final_weights"] = final
    weight_diff = float(
        np.max(np.abs(losses.pop("BP_final_weights") - losses.pop("Z-IL_final_weights")))
    )
    max_diff = float(np.max(np.abs(losses["BP"] - losses["Z-IL"])))
    save_figure(_loss_figure(losses), ctx.out / "losses.png")
    results = {
        "dataset": "fashion-mnist",
        "config": dataclasses.asdict(cfg),
        "dtype": "float64",
        "max_abs_loss_diff": max_diff,
        "max_abs_final_weight_diff": weight_diff,
        "loss": {"bp": losses["BP"], "zil": losses["Z-IL"]},
    }
    rows = [
        ["max abs loss difference", f"{max_diff:.3g}"],
        ["max abs final weight difference", f"{weight_diff:.3g}"],
        ["final loss BP", float(losses["BP"][-1])],
        ["final loss Z-IL", float(losses["Z-IL"][-1])],
    ]
    md = f"""# Z-IL trains exactly like backprop (thesis Theorem 1)

MLP {"-".join(map(str, cfg.sizes))}, {cfg.activation}, squared error, float64; the same
initial weights and the same {cfg.steps} batches of {cfg.batch_size} Fashion-MNIST images;
SGD with learning rate {cfg.learning_rate}. Z-IL: forward-initialised values, gamma = 1,
T = 3 steps, the edges into the nodes at distance d from the output updated at step d.

{markdown_table(["quantity", "value"], rows)}

![losses](losses.png)
"""
    return Report(results, md)
