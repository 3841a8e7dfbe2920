"""`faster-pc-inits`: how the starting values of the neurons decide how many inference
steps PC needs (Faster-PC paper, Fig. 2).

One MLP (784, hidden widths, 10) is trained on Fashion-MNIST by IL from the same initial
weights and batch order with each initialiser: random I_N (`normal`), zero I_0 (`zero`),
null I_null (`null`: the last batch's relaxed values), forward I_fw (`forward`), average
I_avg (`average`, Eq. 7: the last batch's class means) and memory-based I_mem (`memory`,
Eqs. 8-9: modern Hopfield layers answering the image and label), at each number of
relaxation steps T. Test accuracy is taken after every epoch with the forward pass (the
paper's evaluation) and each step's sequential matrix multiplications are measured from
its compiled program (`pcn.cost.step_smm`), so every curve has its cumulative SMMs.

Results: `test_accuracy.<init>.<T>` (per epoch), `best_accuracy.<init>.<T>`,
`smm_per_update.<init>.<T>` (measured, and the paper's formula where it has one),
`cumulative_smm.<init>.<T>` (per epoch).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import optax
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import pcn
from pcn.cost import step_smm
from pcn.data import batches as data_batches
from pcn.data import stream_aligned_batches
from pcn.training import accuracy, supervised_batch

from .common import check_names, check_settings, load_subset
from .output import markdown_table, save_figure
from .registry import Report, RunContext, choose_config, experiment
from .trainer import batch_content_key, fit, train_step_learner

INITIALISERS = ("normal", "zero", "null", "forward", "average", "memory")
BATCHING = ("shuffled", "stream-aligned")


@dataclasses.dataclass(frozen=True)
class InitsConfig:
    hidden: tuple[int, ...]  # hidden widths (the paper: 4 x 512, a 5-layer MLP)
    activation: str
    inits: tuple[str, ...]
    inference_steps: tuple[int, ...]  # T, each a grid point
    epochs: int
    batch_size: int
    batching: str  # "shuffled" (Fig. 2) or "stream-aligned" (Section 4.1)
    gamma: float  # SGD on the neurons
    learning_rate: float  # AdamW on the weights
    weight_decay: float
    normal_std: float  # of I_N
    memory_patterns: int  # of each I_mem Hopfield layer
    memory_rate: float  # Adam on the Hopfield layers (Eq. 9)
    train: int | None  # training examples (None: all 60000)
    test: int | None

    def __post_init__(self) -> None:
        check_settings(self)
        check_names("inits", self.inits, INITIALISERS)
        if self.batching not in BATCHING:
            raise ValueError(
                f"`batching` must be one of {', '.join(BATCHING)}, got {self.batching!r}."
            )
        if not self.inference_steps or min(self.inference_steps) < 1:
            raise ValueError(
                f"`inference_steps` must list values of T >= 1, got {self.inference_steps!r}."
            )


FULL = InitsConfig(
    hidden=(512, 512, 512, 512),
    activation="tanh",
    inits=INITIALISERS,
    inference_steps=(5, 10, 25, 50, 100),
    # the paper trains 16 epochs; 6 initialisers x 5 values of T x 16 epochs of 60,000
    # images are about 8 hours on 2 CPU cores, so the full run takes 4 (about 2 hours)
    epochs=4,
    batch_size=200,
    batching="shuffled",
    gamma=0.1,
    learning_rate=1e-3,
    weight_decay=1e-4,
    normal_std=0.1,
    memory_patterns=64,
    memory_rate=1e-3,
    train=None,
    test=None,
)
QUICK = dataclasses.replace(
    FULL, hidden=(64, 64), inference_steps=(3, 10), epochs=2, train=2000, test=1000
)


def _initialiser(name: str, cfg: InitsConfig) -> pcn.AbstractInitialiser:
    return {
        "normal": lambda: pcn.NormalInit(std=cfg.normal_std),
        "zero": lambda: pcn.zeros_init,
        "null": pcn.NullInit,
        "forward": lambda: pcn.forward_init,
        "average": pcn.AverageInit,
        "memory": lambda: pcn.MemoryInit(
            patterns=cfg.memory_patterns, optimizer=optax.adam(cfg.memory_rate)
        ),
    }[name]()


def _formula(name: str, steps: int, layers: int) -> int | None:
    """The paper's SMMs per update: Eq. 6 (2T + L) for I_fw, Eq. 5 (2T) for the others it
    counts; None for I_mem (the paper gives none)."""
    if name == "memory":
        return None
    return 2 * steps + (layers if name == "forward" else 0)


@experiment(
    "faster-pc-inits",
    "Neuron initialisers against the number of inference steps T (Faster-PC Fig. 2)",
    figure=(
        "Faster-PC Fig. 2 plots accuracy against T: only I_fw trains at low T, I_null "
        "beats I_0 and I_N, all meet at T = 100"
    ),
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    ds = load_subset("fashion-mnist", ctx, train=cfg.train, test=cfg.test)
    sizes = (int(np.prod(ds.image_shape)), *cfg.hidden, ds.num_classes)
    layers = len(sizes) - 1
    graph = pcn.mlp(sizes, activation=cfg.activation, key=jax.random.key(ctx.seed))
    make = supervised_batch(ds.num_classes)

    def order(epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        seed = ctx.seed * 1000 + epoch
        if cfg.batching == "stream-aligned":
            aligned = stream_aligned_batches(
                ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=seed,
                num_classes=ds.num_classes,
            )  # fmt: skip
            return list(aligned)
        return list(data_batches(ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=seed))

    optimizer = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)
    curves: dict[str, dict[str, Any]] = {}
    smm: dict[str, dict[str, Any]] = {}
    for name in cfg.inits:
        for steps in cfg.inference_steps:
            algorithm = pcn.IL(steps, gamma=cfg.gamma, init=_initialiser(name, cfg))
            step = pcn.make_train_step(graph, algorithm, optimizer)
            learner = train_step_learner(
                step,
                graph,
                order,
                lambda b: make(*b),
                lambda g: {"test_accuracy": accuracy(g, ds.x_test, ds.y_test)},
                key=jax.random.key(ctx.seed),
                batch_key=batch_content_key,
            )
            first = order(0)[0]
            measured = step_smm(step, learner.init(), make(*first), batch_content_key(first))
            result = fit(learner, epochs=cfg.epochs, ctx=ctx, label=f"{name}-T{steps}")
            per_epoch = len(order(0))
            acc = [100 * a for a in result.history["test_accuracy"]]
            curves.setdefault(name, {})[str(steps)] = {
                "test_accuracy": acc,
                "cumulative_smm": [measured * per_epoch * (e + 1) for e in range(len(acc))],
                "epoch_seconds": result.history["epoch_seconds"],
            }
            smm.setdefault(name, {})[str(steps)] = {
                "measured": measured,
                "formula": _formula(name, steps, layers),
            }
    out = {
        "dataset": "fashion-mnist",
        "train_examples": len(ds.x_train),
        "test_examples": len(ds.x_test),
        "layers": layers,
        "config": dataclasses.asdict(cfg),
        "test_accuracy": {
            n: {t: c["test_accuracy"] for t, c in v.items()} for n, v in curves.items()
        },
        "best_accuracy": {
            n: {t: max(c["test_accuracy"]) for t, c in v.items()} for n, v in curves.items()
        },
        "cumulative_smm": {
            n: {t: c["cumulative_smm"] for t, c in v.items()} for n, v in curves.items()
        },
        "epoch_seconds": {
            n: {t: c["epoch_seconds"] for t, c in v.items()} for n, v in curves.items()
        },
        "smm_per_update": smm,
    }
    save_figure(_figure(out, cfg), ctx.out / "initialisers.png")
    return Report(out, _markdown(out, cfg))


def _figure(r: dict[str, Any], cfg: InitsConfig) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    grid = cfg.inference_steps
    for name in cfg.inits:
        best = r["best_accuracy"][name]
        best_t = str(max(grid, key=lambda t: best[str(t)]))
        left.plot(r["cumulative_smm"][name][best_t], r["test_accuracy"][name][best_t], "o-",
                  label=f"{name} (T = {best_t})")  # fmt: skip
        right.plot(grid, [best[str(t)] for t in grid], "o-", label=name)
    left.set_xscale("log")
    left.set_xlabel("training SMMs (measured)")
    left.set_ylabel("test accuracy (%)")
    left.set_title("each initialiser at its best T")
    right.set_xscale("log")
    right.set_xticks(grid, [str(t) for t in grid])
    right.minorticks_off()
    right.set_xlabel("inference steps T")
    right.set_ylabel("best test accuracy (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _markdown(r: dict[str, Any], cfg: InitsConfig) -> str:
    header = [
        "initialiser",
        *[f"T = {t}" for t in cfg.inference_steps],
        "SMMs per update (measured / paper)",
    ]
    rows = []
    for name in cfg.inits:
        cells: list[Any] = [name]
        cells += [f"{r['best_accuracy'][name][str(t)]:.2f}" for t in cfg.inference_steps]
        cells.append(", ".join(
            f"{s['measured']} / {s['formula'] if s['formula'] is not None else '-'}"
            for s in r["smm_per_update"][name].values()
        ))  # fmt: skip
        rows.append(cells)
    widths = " x ".join(map(str, cfg.hidden))
    return f"""# Neuron initialisers against inference steps (Faster-PC paper, Fig. 2)

An MLP of {r["layers"]} layers (hidden {widths}, {cfg.activation}) trained by IL on
{r["train_examples"]} Fashion-MNIST images ({cfg.batching} batches of {cfg.batch_size},
{cfg.epochs} epochs; SGD {cfg.gamma} on the neurons, AdamW {cfg.learning_rate} with weight
decay {cfg.weight_decay} on the weights), the same initial weights and batch order for
every initialiser; tested on {r["test_examples"]} images by the forward pass after each
epoch. Best test accuracy (%) over the epochs:

{markdown_table(header, rows)}

SMMs per update are measured from each compiled step (`pcn.cost.step_smm`: the longest
chain of dependent matrix products) beside the paper's Eq. 5 (2T) and Eq. 6 (2T + L).

![initialisers](initialisers.png)

Paper (Fig. 2, 5 layers of 512, 16 epochs, 3 seeds): only I_fw trains at low T; I_null
beats I_0 and I_N; all meet at T = 100.
"""
