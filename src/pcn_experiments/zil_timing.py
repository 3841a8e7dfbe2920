"""`zil-timing`: milliseconds per weight update of BP, standard PC (IL with the T the
literature uses) and Z-IL, on an MLP, a CNN, an RNN, a residual MLP and a transformer
block (thesis Table 3.3). Z-IL is timed on the trainer path (`pcn.ZIL` on the levelled PC
graph, one compiled step) and traced (`pcn.zil.grad` on the forward function, jitted).
All configurations of one architecture are timed in turns in one process."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from matplotlib.figure import Figure

from pcn import zil as traced_zil
from pcn.algorithms import BP, IL, make_train_step
from pcn.init import forward_init
from pcn.levels import level_graph
from pcn.zero_divergence import ZIL

from .bench.timing import interleaved_medians
from .common import check_settings, load_subset
from .output import markdown_table, save_figure
from .registry import PaperNumber, Report, RunContext, choose_config, experiment
from .zil_divergence import ARCHITECTURES, build_model

PC_STEPS = {"mlp": 20, "cnn": 100, "rnn": 100, "resnet": 100, "transformer": 100}
"""T of standard PC: 20 for small MLPs, 100-200 for CNNs and RNNs (thesis section 3.7)."""


@dataclasses.dataclass(frozen=True)
class TimingConfig:
    batch_size: int
    learning_rate: float
    side: int
    timed_steps: int
    warmup_steps: int

    def __post_init__(self) -> None:
        check_settings(self)


FULL = TimingConfig(batch_size=20, learning_rate=0.01, side=28, timed_steps=100, warmup_steps=5)
QUICK = TimingConfig(batch_size=20, learning_rate=0.01, side=14, timed_steps=5, warmup_steps=1)


def _traced_runner(graph, batch, learning_rate, *, by_zil: bool):
    """SGD on 1/2 sum((f(params, x) - y)^2) of the graph's forward function f, with the
    gradient from `pcn.zil.grad` (by_zil) or from `jax.grad` (the baseline)."""
    params, static = eqx.partition(graph, eqx.is_inexact_array)
    inputs = {n: v for n, v in batch.items() if not graph.incoming(n)}

    def forward(p, x):
        return forward_init(eqx.combine(p, static), x)["y"]

    def loss(p, x, y):
        return 0.5 * jnp.sum((forward(p, x) - y) ** 2)

    zil_grad = traced_zil.grad(forward) if by_zil else jax.grad(loss)

    @jax.jit
    def update(p, x, y):
        g = zil_grad(p, x, y)
        return jax.tree.map(lambda w, d: w - learning_rate * d, p, g)

    holder = {"params": params}

    def run(i):
        holder["params"] = update(holder["params"], inputs, batch["y"])
        return holder["params"]

    return run


def _trainer_runner(graph, algorithm, batch, learning_rate):
    step = make_train_step(graph, algorithm, optax.sgd(learning_rate))
    holder = {"state": step.init(graph)}

    def run(i):
        holder["state"], _ = step(holder["state"], batch)
        return holder["state"]

    return run


def _figure(ms: dict) -> Figure:
    methods = ["bp", "zil", "zil_traced", "pc"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        ax.bar(
            np.arange(len(ARCHITECTURES)) + i * width,
            [ms[a][m] for a in ARCHITECTURES],
            width,
            label=m,
        )
    ax.set_xticks(np.arange(len(ARCHITECTURES)) + 0.4 - width / 2, ARCHITECTURES)
    ax.set_yscale("log")
    ax.set_ylabel("ms per weight update")
    ax.legend(fontsize=8)
    return fig


# Table 3.3 (ms per update on the thesis's GPU, its own models: AlexNet for "cnn",
# ResNet18), for `pcn report`; this experiment's models are smaller and run on a CPU
PAPER_NUMBERS = tuple(
    PaperNumber(
        "thesis Table 3.3",
        f"{arch}, {method.upper()} ms (GPU; pcn: this CPU)",
        value,
        f"ms_per_update.{arch}.{method}",
    )
    for arch, values in {
        "mlp": (3.72, 594.25, 3.81),
        "cnn": (8.61, 661.53, 8.86),
        "rnn": (5.64, 420.01, 5.67),
        "resnet": (12.43, 1452.34, 12.53),
        "transformer": (20.43, 1842.64, 20.53),
    }.items()
    for method, value in zip(("bp", "pc", "zil"), values, strict=True)
)


@experiment(
    "zil-timing",
    "ms per weight update of BP, PC and Z-IL on five architectures (Table 3.3)",
    resumable=False,
    paper=PAPER_NUMBERS,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    ds = load_subset("fashion-mnist", ctx, train=cfg.batch_size, test=0)
    ms: dict[str, dict] = {}
    for i, arch in enumerate(ARCHITECTURES):
        graph, batch = build_model(
            arch, ds.x_train, ds.y_train, cfg.side, jax.random.key(ctx.seed + i), jnp.float32
        )
        levelled = level_graph(graph, ["y"])
        runners = {
            "bp": _trainer_runner(graph, BP(), batch, cfg.learning_rate),
            "pc": _trainer_runner(graph, IL(PC_STEPS[arch], gamma=0.1), batch, cfg.learning_rate),
            "zil": _trainer_runner(levelled, ZIL(), batch, cfg.learning_rate),
            "zil_traced": _traced_runner(graph, batch, cfg.learning_rate, by_zil=True),
            "bp_traced": _traced_runner(graph, batch, cfg.learning_rate, by_zil=False),
        }
        ms[arch] = interleaved_medians(runners, warmup=cfg.warmup_steps, steps=cfg.timed_steps)
        ms[arch]["pc_T"] = PC_STEPS[arch]
    ratios = {
        a: {
            "zil_over_bp": ms[a]["zil"] / ms[a]["bp"],
            "zil_traced_over_jax_grad": ms[a]["zil_traced"] / ms[a]["bp_traced"],
            "pc_over_bp": ms[a]["pc"] / ms[a]["bp"],
        }
        for a in ARCHITECTURES
    }
    save_figure(_figure(ms), ctx.out / "timing.png")
    results = {
        "dataset": "fashion-mnist",
        "config": dataclasses.asdict(cfg),
        "dtype": "float32",
        "ms_per_update": ms,
        "ratios": ratios,
        "machine": {"backend": jax.default_backend(), "jax": jax.__version__},
    }
    rows = [
        [
            a,
            ms[a]["bp"],
            ms[a]["zil"],
            ms[a]["zil_traced"],
            f"{ms[a]['pc']:.4g} (T = {PC_STEPS[a]})",
            f"{ratios[a]['zil_over_bp']:.2f}",
            ms[a]["bp_traced"],
            f"{ratios[a]['zil_traced_over_jax_grad']:.2f}",
        ]
        for a in ARCHITECTURES
    ]
    header = [
        "model",
        "BP",
        "Z-IL (trainer)",
        "Z-IL (traced)",
        "PC",
        "Z-IL/BP",
        "jax.grad (traced)",
        "traced Z-IL / jax.grad",
    ]
    md = f"""# Time per weight update: BP, PC and Z-IL (thesis Table 3.3)

Median ms per weight update over {cfg.timed_steps} updates after {cfg.warmup_steps}
warm-up updates, configurations of one model timed in turns; batch {cfg.batch_size},
SGD {cfg.learning_rate}, float32, Fashion-MNIST images average-pooled to {cfg.side} x
{cfg.side}; {jax.default_backend()} backend. Z-IL (trainer): `pcn.ZIL` on the levelled
PC graph, one compiled step. Z-IL (traced): `pcn.zil.grad` of the model's forward
function (traced to one vertex per JAX operation), jitted, plus the SGD update; its
baseline "jax.grad (traced)" is `jax.grad` of the same function and loss, plus the update.
PC: inference learning with T relaxation steps (gamma 0.1).

{markdown_table(header, rows)}

Thesis (GPU, larger models): Z-IL / BP about 1.02; PC two orders of magnitude slower.

![timing](timing.png)
"""
    return Report(results, md)
