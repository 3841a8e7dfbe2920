"""`zil-divergence`: one update of BP and of Z-IL from the same weights, in float64, on
an MLP, a CNN, an RNN, a residual MLP and a transformer block (thesis Tables 3.1 and 3.2,
and the ablations of Appendix H of the CNN/RNN paper).

Divergence = Euclidean distance between the weights after one SGD update of BP and of the
algorithm, over all parameters. Unlevelled: Z-IL's full dynamics on the graph as built
(skips cross several levels in the ResNet and the transformer); levelled: Z-IL on the
graph levelled with identity nodes. Ablations (on the levelled graph, full dynamics):
gamma = 0.5, no forward initialisation, no level-dependent update.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from pcn.algorithms import bp_loss
from pcn.architectures import cnn, resnet, rnn, rnn_batch, transformer
from pcn.data import one_hot
from pcn.graph import PCGraph
from pcn.levels import is_levelled, level_graph
from pcn.models import mlp
from pcn.zero_divergence import zil_gradients

from .common import check_settings, load_subset
from .output import markdown_table, save_figure
from .registry import PaperNumber, Report, RunContext, choose_config, experiment

ARCHITECTURES = ("mlp", "cnn", "rnn", "resnet", "transformer")
ABLATIONS = {
    "gamma_0.5": {"gamma": 0.5},
    "no_forward_init": {"forward_initialise": False},
    "no_level_dependent_update": {"level_scheduled": False},
}


@dataclasses.dataclass(frozen=True)
class DivergenceConfig:
    batch_size: int
    learning_rate: float
    side: int  # images are average-pooled to side x side (28: the originals)

    def __post_init__(self) -> None:
        check_settings(self)


FULL = DivergenceConfig(batch_size=20, learning_rate=0.01, side=28)
QUICK = DivergenceConfig(batch_size=4, learning_rate=0.01, side=14)


def build_model(
    arch: str,
    images: np.ndarray,
    labels: np.ndarray,
    side: int,
    key: jax.Array,
    dtype: jnp.dtype = jnp.float64,
):
    """The graph and the batch of `arch` on Fashion-MNIST images pooled to side x side."""
    y = jnp.asarray(one_hot(labels, 10), dtype)
    pool = 28 // side
    rows = jnp.asarray(images, dtype).reshape(-1, side, pool, side, pool).mean((2, 4))
    flat = rows.reshape(len(rows), -1)
    if arch == "mlp":
        return mlp((side * side, 64, 64, 10), key=key), {"x": flat, "y": y}
    if arch == "cnn":
        graph = cnn((1, side, side), channels=(4, 8), hidden=32, classes=10, key=key)
        return graph, {"x": rows[:, None], "y": y}
    if arch == "rnn":  # the image read row by row
        graph = rnn(side, 32, 10, steps=side, key=key)
        return graph, rnn_batch(graph, rows, y)
    if arch == "resnet":
        return resnet((side * side, 64, 10), blocks=3, key=key), {"x": flat, "y": y}
    return transformer(side, side, 10, heads=2, key=key), {"x": rows, "y": y}


def _bp_grads(graph: PCGraph, batch: dict) -> PCGraph:
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    return jax.grad(lambda p: bp_loss(eqx.combine(p, static), batch))(params)


def _distance(a, b, lr: float) -> float:
    squares = [
        jnp.sum((x - y) ** 2) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    ]
    return float(lr * jnp.sqrt(sum(squares)))


def _figure(divergence: dict) -> Figure:
    labels = ["unlevelled", "levelled", *ABLATIONS]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        values = [
            divergence[a][label] if label in divergence[a] else divergence[a]["ablation"][label]
            for a in ARCHITECTURES
        ]
        ax.bar(
            np.arange(len(ARCHITECTURES)) + i * width, np.maximum(values, 1e-18), width, label=label
        )
    ax.set_xticks(np.arange(len(ARCHITECTURES)) + 0.4 - width / 2, ARCHITECTURES)
    ax.set_yscale("log")
    ax.set_ylabel("distance to BP's update")
    ax.legend(fontsize=7)
    return fig


# Tables 3.1 (Z-IL as first defined: exact on MLPs, CNNs, RNNs only) and 3.2 (on levelled
# computational graphs: exact everywhere), for `pcn report`
ARCHITECTURES = ("mlp", "cnn", "rnn", "resnet", "transformer")
PAPER_NUMBERS = (
    *(
        PaperNumber(
            "thesis Table 3.1", f"{arch}, unlevelled", value, f"divergence.{arch}.unlevelled"
        )
        for arch, value in zip(ARCHITECTURES, (0, 0, 0, 4.53e7, 7.29e4), strict=True)
    ),
    *(
        PaperNumber("thesis Table 3.2", f"{arch}, levelled", 0, f"divergence.{arch}.levelled")
        for arch in ARCHITECTURES
    ),
)


@experiment(
    "zil-divergence",
    "Distance between one BP and one Z-IL update (Tables 3.1, 3.2)",
    resumable=False,
    paper=PAPER_NUMBERS,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    ds = load_subset("fashion-mnist", ctx, train=cfg.batch_size, test=0)
    divergence: dict[str, dict] = {}
    levelled_already: dict[str, bool] = {}
    with jax.enable_x64(True):
        for i, arch in enumerate(ARCHITECTURES):
            graph, batch = build_model(
                arch, ds.x_train, ds.y_train, cfg.side, jax.random.key(ctx.seed + i)
            )
            levelled_already[arch] = is_levelled(graph, ["y"])
            bp = _bp_grads(graph, batch)
            unlevelled, _, _ = zil_gradients(graph, batch, faithful=True)
            levelled_graph = level_graph(graph, ["y"])
            exact, _, _ = zil_gradients(levelled_graph, batch)
            row = {
                "unlevelled": _distance(unlevelled, bp, cfg.learning_rate),
                "levelled": _distance(exact, _bp_grads(levelled_graph, batch), cfg.learning_rate),
                "ablation": {},
            }
            for name, kwargs in ABLATIONS.items():
                ablated, _, _ = zil_gradients(levelled_graph, batch, faithful=True, **kwargs)
                row["ablation"][name] = _distance(ablated, bp, cfg.learning_rate)
            divergence[arch] = row
    save_figure(_figure(divergence), ctx.out / "divergence.png")
    results = {
        "dataset": "fashion-mnist",
        "config": dataclasses.asdict(cfg),
        "dtype": "float64",
        "levelled_as_built": levelled_already,
        "divergence": divergence,
    }
    rows = [
        [
            a,
            f"{divergence[a]['unlevelled']:.3g}",
            f"{divergence[a]['levelled']:.3g}",
            *[f"{divergence[a]['ablation'][n]:.3g}" for n in ABLATIONS],
        ]
        for a in ARCHITECTURES
    ]
    header = ["model", "Z-IL unlevelled", "Z-IL levelled", *[f"ablation: {n}" for n in ABLATIONS]]
    md = f"""# Z-IL vs BP: divergence of one update (thesis Tables 3.1 and 3.2)

Euclidean distance between the weights after one SGD update (learning rate
{cfg.learning_rate}) of BP and of Z-IL, from the same initial weights, on one batch of
{cfg.batch_size} Fashion-MNIST images (average-pooled to {cfg.side} x {cfg.side}; the RNN
reads them row by row, the transformer takes rows as tokens), in float64. "Unlevelled"
runs Z-IL's full dynamics on the graph as built; "levelled" runs Z-IL on the graph
with identity nodes inserted (thesis Algorithm 4). The ablations (Appendix H of the
CNN/RNN paper) run the full dynamics on the levelled graph with one condition of Z-IL
removed.

{markdown_table(header, rows)}

Graphs levelled as built: {", ".join(a for a, v in levelled_already.items() if v)}.
Thesis: Table 3.1 has non-zero divergence only for ResNet and the transformer; Table 3.2
has zero for all after levelling.

![divergence](divergence.png)
"""
    return Report(results, md)
