"""`ppc-signal`: why PPC (incremental PC) falls behind PC on the CNN of Table 2.1 but not
on its MLP: inside one batch, the weight gradient of each layer at each of PPC's steps
against BP's, with the weights moving as PPC moves them and held still
(`pcn.ppc_step_alignment`).

Each row trains PPC with the settings of its committed Table 2.1 run for `warm_epochs`,
then looks at `measure_batches` batches from the trained weights and optimiser state.
Held still, a layer's gradient is zero until the label's error reaches it and then
points along BP's; moving, it also holds the errors that PPC's own weight steps induce
(each step moves the predictions away from the values), and where those dominate the
layer learns from them instead of from the label.

Results: `<row>.moving.<array>` and `<row>.still.<array>` (mean cosine with BP's gradient
at each step t = 0 .. T), `<row>.rms_ratio.<array>` (the gradient's size at the last step,
moving over still), `<row>.settings`.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import numpy as np
import optax
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import pcn
from pcn.data import batches as data_batches
from pcn.training import supervised_batch

from .classify import image_graph
from .common import check_names, check_settings, load_subset
from .output import markdown_table, save_figure
from .registry import Report, RunContext, choose_config, experiment
from .trainer import fit, train_step_learner

ROWS = {  # dataset, architecture
    "fashion-mnist-mlp": ("fashion-mnist", "mlp"),
    "cifar10-cnn": ("cifar10-png", "cnn"),
}


@dataclasses.dataclass(frozen=True)
class SignalConfig:
    rows: tuple[str, ...]
    warm_epochs: int  # of PPC training before looking
    measure_batches: int  # batches looked at (cosines averaged over them)
    batch_size: int
    mlp_hidden: tuple[int, ...]
    cnn_channels: tuple[int, ...]
    cnn_hidden: int
    train: int | None  # training examples (None: all)
    # PPC on each row, by default as in its committed Table 2.1 run (results/table-2-1*,
    # each row's search best): a weight step at every value step, AdamW, tanh
    mlp_gamma: float
    mlp_steps: int
    cnn_gamma: float
    cnn_steps: int
    learning_rate: float
    weight_decay: float

    def __post_init__(self) -> None:
        check_settings(self)
        check_names("rows", self.rows, tuple(ROWS))


FULL = SignalConfig(
    rows=tuple(ROWS),
    warm_epochs=2,
    measure_batches=8,
    batch_size=64,
    mlp_hidden=(64, 64),
    cnn_channels=(64, 128, 64),
    cnn_hidden=128,
    train=None,
    mlp_gamma=0.5,
    mlp_steps=10,
    cnn_gamma=0.1,
    cnn_steps=5,
    learning_rate=1e-4,
    weight_decay=1e-2,
)
QUICK = dataclasses.replace(
    FULL, warm_epochs=1, measure_batches=2, cnn_channels=(8, 8, 8), cnn_hidden=16, train=640
)


def _signal(ctx: RunContext, cfg: SignalConfig, row: str) -> dict[str, Any]:
    dataset, architecture = ROWS[row]
    cnn = architecture == "cnn"
    hp = {
        "learning_rate": cfg.learning_rate,
        "weight_decay": cfg.weight_decay,
        "gamma": cfg.cnn_gamma if cnn else cfg.mlp_gamma,
        "steps": cfg.cnn_steps if cnn else cfg.mlp_steps,
    }
    ds = load_subset(dataset, ctx, train=cfg.train, test=0)
    graph = image_graph(
        architecture, ds, hidden=(cfg.cnn_hidden,) if cnn else cfg.mlp_hidden,
        channels=cfg.cnn_channels, activation="tanh", key=jax.random.key(ctx.seed),
    )  # fmt: skip
    ppc = pcn.PPC(hp["steps"], gamma=hp["gamma"], unroll=cnn)
    optimizer = optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"])
    step = pcn.make_train_step(graph, ppc, optimizer)
    shape = tuple(graph.node("x").shape)
    supervised = supervised_batch(ds.num_classes)

    def make(piece: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        x, y = piece
        return supervised(x.reshape(len(x), *shape), y)

    def order(epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        seed = ctx.seed * 1000 + epoch
        return list(data_batches(ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=seed))

    learner = train_step_learner(step, graph, order, make)
    state = fit(learner, epochs=cfg.warm_epochs, ctx=ctx, label=row).state
    trained, opt_state = step.graph(state), step.opt_state(state)
    looked = order(cfg.warm_epochs)[: cfg.measure_batches]
    measured = [
        pcn.ppc_step_alignment(trained, ppc, make(p), optimizer=optimizer, opt_state=opt_state)
        for p in looked
    ]
    names = [n for n in measured[0] if n.endswith(".weight")]

    def mean(field: str, name: str) -> list[float]:
        with warnings.catch_warnings():  # a step with no gradient in any batch stays nan
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean([getattr(m[name], field) for m in measured], axis=0).tolist()

    return {
        "settings": hp,
        "moving": {n: mean("moving", n) for n in names},
        "still": {n: mean("still", n) for n in names},
        "rms_ratio": {
            n: float(np.mean([m[n].moving_rms[-1] / m[n].still_rms[-1] for m in measured]))
            for n in names
        },
        "batches": len(looked),
    }


@experiment(
    "ppc-signal",
    "Why PPC lags on the CNN: each layer's gradient per step against BP's, weights moving vs held",
    figure=(
        "thesis Table 2.1 has PPC above PC on both rows (CNN on CIFAR-10: 72.54 vs 52.75); "
        "the thesis shows no per-step gradients, this looks for why the CNN's PPC lags here"
    ),
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    results: dict[str, Any] = {"config": dataclasses.asdict(cfg)}
    for row in cfg.rows:
        results[row] = _signal(ctx, cfg, row)
    save_figure(_figure(results, cfg), ctx.out / "ppc-signal.png")
    return Report(results, _markdown(results, cfg))


def _figure(r: dict[str, Any], cfg: SignalConfig) -> Figure:
    fig, axes = plt.subplots(1, len(cfg.rows), figsize=(5.5 * len(cfg.rows), 3.8), squeeze=False)
    for ax, row in zip(axes[0], cfg.rows, strict=True):
        for i, name in enumerate(r[row]["moving"]):
            color = f"C{i}"
            ax.plot(r[row]["moving"][name], "o-", color=color, label=name)
            ax.plot(r[row]["still"][name], "x--", color=color, alpha=0.6)
        ax.set_title(f"{row} (solid: weights moving, dashed: held)", fontsize=9)
        ax.set_xlabel("step t of the batch")
        ax.set_ylabel("cosine with BP's gradient")
        ax.set_ylim(-1.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _markdown(r: dict[str, Any], cfg: SignalConfig) -> str:
    parts = []
    for row in cfg.rows:
        s = r[row]["settings"]
        rows = [
            [name, " ".join(f"{c:+.2f}" for c in r[row]["moving"][name]),
             " ".join(f"{c:+.2f}" for c in r[row]["still"][name]),
             f"{r[row]['rms_ratio'][name]:.3g}"]
            for name in r[row]["moving"]
        ]  # fmt: skip
        parts.append(
            f"## {row}\n\nPPC, T = {s['steps']}, gamma {s['gamma']}, AdamW "
            f"{s['learning_rate']} (weight decay {s['weight_decay']}), after {cfg.warm_epochs} "
            f"epochs; mean over {r[row]['batches']} batches.\n\n"
            + markdown_table(
                [
                    "weights",
                    "cosine per step, moving",
                    "cosine per step, held",
                    "gradient size at T, moving / held",
                ],
                rows,
            )  # fmt: skip
        )
    return (
        "# Where PPC's learning signal goes (thesis Algorithm 3 on Table 2.1's rows)\n\n"
        "Each layer's weight gradient at each step t of one batch, as a cosine with BP's "
        "gradient from the weights the batch started with: with the weights updated at every "
        "step as PPC does, and held still (inference learning's view of the same batch). "
        "With forward initialisation a held layer has no gradient (nan) until the label's "
        "error reaches it, L - 1 - l steps for the l-th of L layers; in float32 such a step "
        "may show round-off instead, whose cosine means nothing.\n\n"
        + "\n\n".join(parts)
        + "\n\n![signal](ppc-signal.png)\n"
    )
