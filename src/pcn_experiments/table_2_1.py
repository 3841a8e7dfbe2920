"""`table-2-1`: BP, PC (inference learning) and PPC (parallel / incremental PC, the weights
updated at every inference step) on the thesis's Table 2.1 rows: an MLP with two hidden
layers of 64 on MNIST and Fashion-MNIST, its CNN (3x3 convolutions of 64-128-64, two
dense layers) on SVHN and CIFAR-10, and an AlexNet-style CNN on CIFAR-10.

Every run holds out `validation` of the training set and stops early on it: a model's
score is its test accuracy at its best validation evaluation; mean and std over seeds.
Each method has its own settings (`bp_*`, `pc_*`, `ppc_*`), searched per row by
`pcn sweep table-2-1 --set rows=R --set methods=M` on the thesis's grid (learning rate,
weight decay, value step; on CNN rows a smaller grid, `search_space`). CIFAR-10 is the
10,000-image training subset of `../shared/datasets/` (the thesis used all 50,000); SVHN
is read from the user's `train_32x32.mat` / `test_32x32.mat` when given. On CNN rows the
control `methods=bp_dense` (asked for by name, not in the default) trains by BP with every
convolution held at its initial weights: the score of a CNN whose convolutions learn
nothing.

Results: `<row>.test_accuracy.<method>` (mean, std, per seed), `seconds_per_epoch.<row>.
<method>` (training only, the compiling step left out), `seconds_to_bp.<row>.<method>`
(training seconds until the test accuracy first reaches BP's mean score; None: never),
`smm_per_update.<row>.<method>` (the compiled step's SMMs per batch, measured, its weight
updates, and their ratio).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import optax
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import pcn
from pcn import layers
from pcn.data import Dataset

from .classify import MethodRun, image_graph, train_classifier
from .common import check_names, check_settings, load_subset, prefixed_settings
from .output import markdown_table, save_figure
from .registry import PaperNumber, Report, RunContext, Search, choose_config, experiment

METHODS = ("bp", "pc", "ppc")  # the thesis's columns
# a control, asked for by name: BP training only the dense layers, every convolution held
# at its initial weights (what a CNN whose convolutions learn nothing reaches)
CONTROLS = ("bp_dense",)
LABELS = {"bp": "BP", "pc": "PC", "ppc": "PPC", "bp_dense": "BP, dense layers only"}
# row -> (dataset, architecture)
ROWS = {
    "mnist-mlp": ("mnist", "mlp"),
    "fashion-mnist-mlp": ("fashion-mnist", "mlp"),
    "svhn-cnn": ("svhn", "cnn"),
    "cifar10-cnn": ("cifar10-png", "cnn"),
    "cifar10-alexnet": ("cifar10-png", "alexnet"),
}
# the thesis's Table 2.1 (mean %, 5 seeds): BP, PC, PPC
THESIS = {
    "mnist-mlp": (98.26, 98.55, 98.54),
    "fashion-mnist-mlp": (88.54, 87.53, 89.13),
    "svhn-cnn": (95.35, 94.53, 96.45),
    "cifar10-cnn": (69.34, 52.75, 72.54),
    "cifar10-alexnet": (75.64, 64.63, 72.42),
}


@dataclasses.dataclass(frozen=True)
class Table21Config:
    rows: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int
    epochs: int
    batch_size: int
    validation: float  # fraction of the training set held out for early stopping
    evals_per_epoch: int
    activation: str
    mlp_hidden: tuple[int, ...]  # the thesis: 64, 64
    cnn_channels: tuple[int, ...]  # the thesis: 64, 128, 64
    cnn_hidden: int
    alexnet_channels: tuple[int, ...]
    alexnet_hidden: int
    bp_learning_rate: float
    bp_weight_decay: float
    pc_learning_rate: float
    pc_weight_decay: float
    pc_gamma: float
    pc_steps: int  # T
    ppc_learning_rate: float
    ppc_weight_decay: float
    ppc_gamma: float
    ppc_steps: int
    ppc_weight_every: int  # k: 1 is iPC
    train: int | None  # training examples before the split (None: all)
    test: int | None

    def __post_init__(self) -> None:
        check_settings(self)
        check_names("rows", self.rows, tuple(ROWS))
        check_names("methods", self.methods, METHODS + CONTROLS)
        if "bp_dense" in self.methods and any(ROWS[r][1] == "mlp" for r in self.rows):
            raise ValueError(
                "`methods=bp_dense` holds a CNN's convolutions still; an MLP row has none: "
                "run it on CNN rows only (e.g. --set rows=cifar10-cnn)."
            )
        if not 0 < self.validation < 1:
            raise ValueError(
                f"`validation` is the fraction of the training set held out for early "
                f"stopping, in (0, 1); got {self.validation}."
            )
        pcn.PPC(self.ppc_steps, weight_every=self.ppc_weight_every)  # names a bad schedule


def settings(cfg: Table21Config, method: str) -> dict[str, Any]:
    """The settings of `method` without its prefix (learning_rate, weight_decay, ...);
    the control `bp_dense` has BP's."""
    return prefixed_settings(cfg, "bp_" if method == "bp_dense" else f"{method}_")


FULL = Table21Config(
    # the row of the target; every row has its own search and result folder
    # (results/table-2-1-ROW/), as each row's bests differ
    rows=("fashion-mnist-mlp",),
    methods=METHODS,
    seeds=3,
    epochs=20,
    batch_size=64,
    validation=0.1,
    evals_per_epoch=1,
    activation="tanh",
    mlp_hidden=(64, 64),
    cnn_channels=(64, 128, 64),
    cnn_hidden=128,
    alexnet_channels=(32, 64, 96, 96, 64),
    alexnet_hidden=256,
    # the bests of `pcn sweep table-2-1 --trials 16 --set rows=fashion-mnist-mlp
    # --set methods=M` on the thesis's grid (results/table-2-1-sweep-fmnist-M/)
    bp_learning_rate=1e-3,
    bp_weight_decay=1e-3,
    pc_learning_rate=1e-3,
    pc_weight_decay=0.1,
    pc_gamma=0.1,
    pc_steps=10,
    ppc_learning_rate=1e-4,
    ppc_weight_decay=1e-2,
    ppc_gamma=0.5,
    ppc_steps=10,
    ppc_weight_every=1,
    train=None,
    test=None,
)
QUICK = dataclasses.replace(
    FULL,
    rows=("fashion-mnist-mlp",),
    seeds=2,
    epochs=2,
    batch_size=50,
    evals_per_epoch=2,
    pc_steps=5,
    ppc_steps=5,
    train=1500,
    test=500,
)

LEARNING_RATES = (1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
# a CNN epoch costs minutes on 2 CPU cores (PC and PPC ~7x BP), so CNN rows search a
# smaller grid of the same size for every method: the three of the thesis's learning
# rates that trained the CNN best in 2 epochs with Adam (3e-5 came last for every method
# in an earlier learning-rate-only search), times two values of the method's second knob
# (gamma for PC and PPC, whose best MLP gamma does not transfer to the CNN; weight decay
# for BP); the other settings stay those of the MLP search
CNN_LEARNING_RATES = (1e-4, 3e-4, 1e-3)
CNN_GAMMAS = (0.1, 0.5)
CNN_WEIGHT_DECAYS = (1e-3, 1e-1)


def search_space(fixed: Mapping[str, str]) -> dict[str, tuple[Any, ...]]:
    """The thesis's grid (section 2.2.3) for the one method and row a sweep sets: 8
    learning rates from 1e-6 to 1e-2, 4 weight decays, and for PC and PPC 3 value steps;
    on CNN rows `CNN_LEARNING_RATES` times `CNN_GAMMAS` (BP: `CNN_WEIGHT_DECAYS`)."""
    method, row = fixed.get("methods", ""), fixed.get("rows", "")
    if method not in METHODS or row not in ROWS:
        raise ValueError(
            "sweep table-2-1 searches one method on one row: add --set methods=M --set rows=R, "
            f"M one of {', '.join(METHODS)}, R one of {', '.join(ROWS)}."
        )
    if ROWS[row][1] != "mlp":
        knob, values = (
            ("weight_decay", CNN_WEIGHT_DECAYS) if method == "bp" else ("gamma", CNN_GAMMAS)
        )
        return {f"{method}_learning_rate": CNN_LEARNING_RATES, f"{method}_{knob}": values}
    space: dict[str, tuple[Any, ...]] = {
        f"{method}_learning_rate": LEARNING_RATES,
        f"{method}_weight_decay": (1e-4, 1e-3, 1e-2, 1e-1),
    }
    if method != "bp":
        space[f"{method}_gamma"] = (0.1, 0.5, 1.0)
    return space


def validation_score(results: Mapping[str, Any]) -> float:
    """A sweep trial's objective: the mean best validation accuracy of its one cell."""
    (row,) = results["config"]["rows"]
    (method,) = results["config"]["methods"]
    return float(np.mean(results[row]["best_validation"][method]))


SEARCH = Search(
    fixed={"seeds": "1"},
    space=search_space,
    objective=validation_score,
    monitor="validation",
    note="best validation accuracy (%) of one run (the held-out `validation` fraction of "
    "the training set; the test set is never seen)",
)


def algorithm_of(cfg: Table21Config, method: str, architecture: str) -> pcn.AbstractAlgorithm:
    hp = settings(cfg, method)
    if method in ("bp", "bp_dense"):
        return pcn.BP()
    # on XLA:CPU a CNN's gradients inside a loop are slow (IL's relaxation 1.6x, PPC's
    # weight gradients 35x): CNN rows unroll the steps; the numbers are the same
    unroll = architecture != "mlp"
    if method == "pc":
        return pcn.IL(pcn.FixedSteps(hp["steps"], unroll=unroll), gamma=hp["gamma"])
    return pcn.PPC(hp["steps"], weight_every=hp["weight_every"], gamma=hp["gamma"],
                   unroll=unroll)  # fmt: skip


def convolutions_held(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """`optimizer` on every weight but those of the convolutions, which stay put."""

    def labels(params: Any) -> Any:
        def label(node: Any) -> Any:
            if isinstance(node, layers.Conv2d):
                return jax.tree.map(lambda _: "held", node)
            return "trained"

        return jax.tree.map(label, params, is_leaf=lambda x: isinstance(x, layers.Conv2d))

    return optax.multi_transform({"trained": optimizer, "held": optax.set_to_zero()}, labels)


def _held_out(ds: Dataset, fraction: float, seed: int) -> tuple[Dataset, tuple]:
    """`ds` without the held-out validation examples, and those examples."""
    order = np.random.default_rng(seed).permutation(len(ds.x_train))
    held = round(fraction * len(order))
    keep, out = order[held:], order[:held]
    trained = dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])
    return trained, (ds.x_train[out], ds.y_train[out])


def _graph(cfg: Table21Config, architecture: str, ds: Dataset, seed: int) -> pcn.PCGraph:
    hidden, channels = {
        "mlp": (cfg.mlp_hidden, ()),
        "cnn": ((cfg.cnn_hidden,), cfg.cnn_channels),
        "alexnet": ((cfg.alexnet_hidden,), cfg.alexnet_channels),
    }[architecture]
    kind = "mlp" if architecture == "mlp" else "cnn"
    return image_graph(kind, ds, hidden=hidden, channels=channels,
                       activation=cfg.activation, key=jax.random.key(seed))  # fmt: skip


# the same numbers for `pcn report` (pcn's: the mean over seeds, in %)
PAPER_NUMBERS = tuple(
    PaperNumber(
        "thesis Table 2.1",
        f"{row}, {method.upper()} (%)",
        value,
        f"{row}.test_accuracy.{method}.mean",
    )
    for row, values in THESIS.items()
    for method, value in zip(METHODS, values, strict=True)
)


@experiment(
    "table-2-1",
    "BP vs PC vs PPC (incremental PC) on MLPs and CNNs (thesis Table 2.1)",
    search=SEARCH,
    paper=PAPER_NUMBERS,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    out: dict[str, Any] = {"config": dataclasses.asdict(cfg)}
    for row in cfg.rows:
        dataset, architecture = ROWS[row]
        ds = load_subset(dataset, ctx, train=cfg.train, test=cfg.test)
        runs: dict[str, list[MethodRun]] = {}
        smm: dict[str, int] = {}
        compiled: dict[Any, Any] = {}  # one compiled step per method of the row
        for method in cfg.methods:
            hp = settings(cfg, method)
            for s in range(cfg.seeds):
                seed = ctx.seed + s
                trained, validation = _held_out(ds, cfg.validation, seed)
                optimizer = optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"])
                if method == "bp_dense":
                    optimizer = convolutions_held(optimizer)
                result, smm[method] = train_classifier(
                    ctx, trained, _graph(cfg, architecture, ds, seed),
                    algorithm_of(cfg, method, architecture),
                    optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size,
                    evals_per_epoch=cfg.evals_per_epoch, seed=seed,
                    label=f"{row}-{method}-s{seed}", validation=validation,
                    compiled=compiled, compiled_key=method,
                )  # fmt: skip
                runs.setdefault(method, []).append(result)
        updates = {m: _updates_per_batch(cfg, m) for m in cfg.methods}
        out[row] = _row_results(runs, smm, updates, cfg)
        out[row]["train_examples"] = len(ds.x_train) - round(cfg.validation * len(ds.x_train))
        out[row]["test_examples"] = len(ds.x_test)
    out["seconds_per_epoch"] = {r: out[r].pop("seconds_per_epoch") for r in cfg.rows}
    out["seconds_to_bp"] = {r: out[r].pop("seconds_to_bp") for r in cfg.rows}
    out["smm_per_update"] = {r: out[r].pop("smm_per_update") for r in cfg.rows}
    save_figure(_figure(out, cfg), ctx.out / "table-2-1.png")
    return Report(out, _markdown(out, cfg))


def _figure(r: dict[str, Any], cfg: Table21Config) -> Figure:
    """Left: each row's scores beside the thesis's; right: test accuracy against
    training seconds, the first seed of each method on the first row."""
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(cfg.methods)
    for i, m in enumerate(cfg.methods):
        xs = np.arange(len(cfg.rows)) + i * width
        table = [r[row]["test_accuracy"][m] for row in cfg.rows]
        bars.bar(xs, [t["mean"] for t in table], width, yerr=[t["std"] for t in table],
                 label=LABELS[m])  # fmt: skip
        thesis = [THESIS[row][METHODS.index(m)] if m in METHODS else np.nan for row in cfg.rows]
        bars.plot(xs, thesis, "k_", markersize=12, label="thesis" if i == 0 else None)
        run = r[cfg.rows[0]]["curves"][m][0]
        curves.plot(run["seconds"], run["accuracy"], ".-", label=LABELS[m])
    bars.set_xticks(np.arange(len(cfg.rows)) + width * (len(cfg.methods) - 1) / 2, cfg.rows)
    bars.set_ylabel("test accuracy (%), early stopped")
    curves.set_xlabel("training seconds")
    curves.set_ylabel("test accuracy (%)")
    curves.set_title(cfg.rows[0])
    for ax in (bars, curves):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _updates_per_batch(cfg: Table21Config, method: str) -> int:
    """Weight updates per batch: one for BP and PC, T / k for PPC."""
    return cfg.ppc_steps // cfg.ppc_weight_every if method == "ppc" else 1


def _row_results(
    runs: dict[str, list[MethodRun]],
    smm: dict[str, int],
    updates: dict[str, int],
    cfg: Table21Config,
) -> dict[str, Any]:
    scores = {m: [r.early_stopped for r in rs] for m, rs in runs.items()}
    table = {
        m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": v}
        for m, v in scores.items()
    }
    target = table["bp"]["mean"] if "bp" in table else None
    to_bp = {}
    for m, rs in runs.items():
        reached = [] if target is None else [r.first_reaching(target, r.seconds) for r in rs]
        found = [c for c in reached if c is not None]
        to_bp[m] = min(found) if found else None
    per_epoch = {
        m: float(np.mean([r.seconds[-1] / cfg.epochs for r in rs])) for m, rs in runs.items()
    }
    return {
        "test_accuracy": table,
        "best_validation": {m: [max(r.validation or [0.0]) for r in rs] for m, rs in runs.items()},
        "curves": {m: [dataclasses.asdict(r) for r in rs] for m, rs in runs.items()},
        "seconds_per_epoch": per_epoch,
        "seconds_to_bp": to_bp,
        # the step's longest chain of products per batch, shared by its weight updates
        "smm_per_update": {
            m: {
                "per_batch": smm[m],
                "updates_per_batch": updates[m],
                "per_update": smm[m] / updates[m],
            }
            for m in smm
        },
    }


SPEED_HEADER = ["row", "method", "s / epoch", "s to BP", "SMMs / batch", "updates / batch"]


def _markdown(r: dict[str, Any], cfg: Table21Config) -> str:
    rows = []
    for row in cfg.rows:
        cells: list[Any] = [row, f"{r[row]['train_examples']} / {r[row]['test_examples']}"]
        for m in cfg.methods:
            t = r[row]["test_accuracy"][m]
            cells.append(f"{t['mean']:.2f} ± {t['std']:.2f}")
        cells.append(" / ".join(f"{v:.2f}" for v in THESIS[row]))
        rows.append(cells)
    header = ["row", "train / test", *[LABELS[m] for m in cfg.methods], "thesis BP / PC / PPC"]
    speed = []
    for row in cfg.rows:
        for m in cfg.methods:
            to_bp = r["seconds_to_bp"][row][m]
            speed.append([
                row, LABELS[m], f"{r['seconds_per_epoch'][row][m]:.2f}",
                "-" if to_bp is None else f"{to_bp:.3g}",
                r["smm_per_update"][row][m]["per_batch"],
                r["smm_per_update"][row][m]["updates_per_batch"],
            ])  # fmt: skip
    settings_rows = [
        [LABELS[m], ", ".join(f"{k} {v}" for k, v in settings(cfg, m).items())] for m in cfg.methods
    ]
    return f"""# BP, PC and PPC (thesis Table 2.1)

Test accuracy (%) at each run's best validation evaluation ({100 * cfg.validation:g}% of the
training set held out, evaluated {cfg.evals_per_epoch} time(s) per epoch), mean ± std over
{cfg.seeds} seeds; {cfg.epochs} epochs of AdamW, batches of {cfg.batch_size}, {cfg.activation}:

{markdown_table(header, rows)}

![scores and curves](table-2-1.png)

Settings (`pcn sweep table-2-1 --set rows=R --set methods=M` searches them):

{markdown_table(["method", "settings"], settings_rows)}

Speed on this machine: training seconds per epoch, seconds until the test accuracy first
reaches BP's mean score (the fewest over the seeds), and the SMMs of one batch's step
measured from the compiled program with the weight updates it makes (PPC: T / k):

{markdown_table(SPEED_HEADER, speed)}

Architectures: MLP hidden {", ".join(map(str, cfg.mlp_hidden))}; CNN 3x3 convolutions of
{", ".join(map(str, cfg.cnn_channels))} channels then a dense layer of {cfg.cnn_hidden};
AlexNet-style 3x3 convolutions of {", ".join(map(str, cfg.alexnet_channels))} then
{cfg.alexnet_hidden} (2x2 max pooling between convolutions). CIFAR-10 rows train on the
10,000-image subset. Thesis: 5 seeds, its grid of 8 learning rates, 4 weight decays and 3
value steps, full datasets.
"""
