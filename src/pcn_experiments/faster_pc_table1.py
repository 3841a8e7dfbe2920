"""`faster-pc-table1`: BP, PC with forward initialisation (PC-I_fw) and PC with
stream-aligned average initialisation (PC-I_avg) on MLPs, at three fractions of the
training data, over seeds (Faster-PC paper, Table 1), with the SMMs and the seconds each
method needs to reach a relative error of the best accuracy (its Fig. 6 and Table 3).

Each method has its own hyperparameters (the `bp_*`, `pc_fw_*` and `pc_avg_*` settings):
`pcn sweep faster-pc-table1 --set methods=M` searches them on a validation split of the
training set (the paper's grid, `search_space`), and the defaults are the sweeps' best.
BP and PC-I_fw train on shuffled batches, PC-I_avg on stream-aligned ones (its Section
4.1: row i of every batch from one class, so the last batch's class means are a start).
Every run evaluates `evals_per_epoch` times per epoch; each evaluation is stored with the
training steps, the measured SMMs (`pcn.cost.step_smm` x steps) and the training seconds
behind it, so the time to any accuracy can be read off afterwards.

Results: `<dataset>.test_accuracy.<fraction>.<method>` (fractions as "25%", ...; mean,
std, per seed: the best evaluation of each run), `<dataset>.curves.<fraction>.<method>`
(per seed),
`smm_per_update.<method>` (measured and the paper's formula),
`smm_to_relative_error.<dataset>.<fraction>.<rel>.<method>` and
`seconds_to_relative_error.<...>` (the fewest over the seeds; None: never reached). With
`validation` > 0 the evaluation set is that fraction of the training set, held out (what
`pcn sweep` scores), and the keys
say `validation_accuracy` instead of `test_accuracy`.
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
from pcn._validation import check_choice
from pcn.data import Dataset

from .classify import MethodRun, image_graph, train_classifier
from .common import check_names, check_settings, load_subset, prefixed_settings
from .output import markdown_table, save_figure
from .registry import PaperNumber, Report, RunContext, Search, choose_config, experiment

METHODS = ("bp", "pc_fw", "pc_avg")
LABELS = {"bp": "BP", "pc_fw": "PC-I_fw", "pc_avg": "PC-I_avg"}
DATASETS = ("fashion-mnist", "mnist", "kmnist", "cifar10-png")
ARCHITECTURES = ("mlp", "cnn")
RELATIVE_ERRORS = (0.005, 0.01, 0.02, 0.05)
# the paper's Table 1 (mean %, over 3 seeds), for the reports
PAPER = {
    "mnist": {1.0: (98.32, 98.26, 98.73), 0.5: (97.61, 97.84, 98.41), 0.25: (96.79, 97.09, 97.70)},
    "fashion-mnist": {
        1.0: (89.55, 88.50, 89.80), 0.5: (88.09, 87.81, 88.88), 0.25: (86.58, 86.55, 87.64)
    },
    "kmnist": {1.0: (92.38, 92.13, 93.37), 0.5: (89.86, 90.13, 91.87), 0.25: (87.18, 87.66, 89.45)},
    # AlexNet on all 50,000 CIFAR-10 training images (here: the 10,000 of the subset)
    "cifar10-png": {
        1.0: (75.82, 66.72, 75.41), 0.5: (70.67, 64.25, 71.37), 0.25: (64.41, 63.83, 66.13)
    },
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Table1Config:
    datasets: tuple[str, ...]
    fractions: tuple[float, ...]  # of the training set, each a grid point (nested subsets)
    seeds: int  # runs per point, seeds ctx.seed, ctx.seed + 1, ...
    methods: tuple[str, ...]
    architecture: str  # "mlp" or "cnn" (the paper's CIFAR-10 row uses AlexNet)
    hidden: tuple[int, ...]  # MLP widths (the paper: 4 x 512); a CNN uses the last
    channels: tuple[int, ...]  # of a CNN's 3x3 convolutions (`pcn.cnn`), unused by an MLP
    epochs: int
    batch_size: int
    weight_decay: float  # of AdamW on the weights (every method)
    evals_per_epoch: int
    validation: float  # > 0: hold this fraction of the training set out, evaluate on it
    bp_learning_rate: float
    bp_activation: str
    pc_fw_learning_rate: float
    pc_fw_activation: str
    pc_fw_gamma: float  # SGD on the neurons
    pc_fw_steps: int  # T
    pc_avg_learning_rate: float
    pc_avg_activation: str
    pc_avg_gamma: float
    pc_avg_steps: int
    pc_avg_forward_layers: int  # m of Eq. 10: hidden layers started by the forward pass
    train: int | None  # training examples before the split (None: all)
    test: int | None

    def __post_init__(self) -> None:
        check_settings(self)
        check_names("datasets", self.datasets, DATASETS)
        check_names("methods", self.methods, METHODS)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(
                f"`fractions` must list fractions of the training set in (0, 1], got "
                f"{self.fractions!r}; e.g. --set fractions=0.25,0.5,1.0."
            )
        if not 0 <= self.validation < 1:
            raise ValueError(
                f"`validation` is the fraction of the training set held out, in [0, 1); got "
                f"{self.validation}."
            )
        hidden = hidden_layers(self)
        if not 0 <= self.pc_avg_forward_layers < hidden:
            raise ValueError(
                f"`pc_avg_forward_layers` (m of Eq. 10) must lie in [0, {hidden - 1}] for "
                f"{hidden} hidden layers, got {self.pc_avg_forward_layers}."
            )


def hidden_layers(cfg: Table1Config) -> int:
    """Hidden layers of the model: the MLP's widths, or a CNN's convolutions and its one
    dense hidden layer."""
    return len(cfg.hidden) if cfg.architecture == "mlp" else len(cfg.channels) + 1


def hyper(cfg: Table1Config, method: str) -> dict[str, Any]:
    """The settings of `method` without its prefix (learning_rate, activation, ...)."""
    return prefixed_settings(cfg, f"{method}_")


# each method's settings: the best of its `pcn sweep faster-pc-table1 --trials 24 --set
# methods=M` on Fashion-MNIST (results/faster-pc-table1-sweep-M/), used on MNIST too
FULL = Table1Config(
    datasets=("fashion-mnist", "mnist"),
    fractions=(0.25, 0.5, 1.0),
    seeds=3,
    methods=METHODS,
    architecture="mlp",
    hidden=(512, 512, 512, 512),
    channels=(32, 64, 128),
    epochs=16,
    batch_size=200,
    weight_decay=1e-4,
    evals_per_epoch=2,
    validation=0.0,
    bp_learning_rate=5e-4,
    bp_activation="gelu",
    pc_fw_learning_rate=3e-4,
    pc_fw_activation="gelu",
    pc_fw_gamma=0.05,
    pc_fw_steps=6,
    pc_avg_learning_rate=1e-4,
    pc_avg_activation="relu",
    pc_avg_gamma=0.05,
    pc_avg_steps=3,
    pc_avg_forward_layers=2,
    train=None,
    test=None,
)
QUICK = dataclasses.replace(
    FULL,
    datasets=("fashion-mnist",),
    fractions=(0.5, 1.0),
    seeds=2,
    hidden=(64, 64, 64, 64),
    epochs=2,
    evals_per_epoch=2,
    # 20 updates of a small net: the full run's rates would leave it near chance
    bp_learning_rate=3e-3,
    pc_fw_learning_rate=3e-3,
    pc_avg_learning_rate=3e-3,
    train=2000,
    test=500,
)


def search_space(fixed: Mapping[str, str]) -> dict[str, tuple[Any, ...]]:
    """The paper's grid (its appendix C.1) for the one method a sweep sets: AdamW rate
    and activation for every method, the value step and T for PC, m for PC-I_avg. T of
    PC-I_avg is kept below the depth (5 layers), where the paper claims its result.
    With `architecture=cnn`, `cnn_search_space`."""
    methods = fixed.get("methods", "")
    if methods not in METHODS:
        raise ValueError(
            "sweep faster-pc-table1 searches one method at a time: add --set methods=M, "
            f"M one of {', '.join(METHODS)}."
        )
    if fixed.get("architecture") == "cnn":
        return cnn_search_space(methods)
    space: dict[str, tuple[Any, ...]] = {
        f"{methods}_learning_rate": (1e-4, 3e-4, 5e-4, 1e-3, 3e-3, 5e-3),
        f"{methods}_activation": ("gelu", "elu", "tanh", "leaky_relu", "relu"),
    }
    if methods != "bp":
        space[f"{methods}_gamma"] = (0.003, 0.005, 0.01, 0.03, 0.05, 0.1, 0.3, 0.5)
        space[f"{methods}_steps"] = (2, 3, 4, 5, 6, 7) if methods == "pc_fw" else (2, 3, 4)
    if methods == "pc_avg":
        space["pc_avg_forward_layers"] = (1, 2, 3)
    return space


def cnn_search_space(method: str) -> dict[str, tuple[Any, ...]]:
    """A subset of the paper's AlexNet grid (appendix C.1: rate {3e-4, 5e-4, 1e-3, 3e-3},
    5 activations, value step {0.01, 0.03, 0.05, 0.1}, T 4-9, m 4-6 of its 7 hidden
    layers), cut so that a few trials of a CNN on 2 CPU cores cover much of it: the
    activation stays each method's setting, T of PC-I_fw is one of the paper's best on
    CIFAR-10 (its Fig. 6: 5, 6, 7), PC-I_avg's T stays below the depth of `pcn.cnn` with
    five convolutions (7 weight layers) and m leaves it the top one or two hidden layers.
    PC's rates stop at 1e-3: at 3e-3 the three PC-I_avg trials run (T 4 and 6, m 4 and 5,
    gamma 0.1) all diverged to 11-13% validation, while BP's search found 3e-3 its best."""
    rates = (3e-4, 1e-3, 3e-3) if method == "bp" else (3e-4, 1e-3)
    space: dict[str, tuple[Any, ...]] = {f"{method}_learning_rate": rates}
    if method != "bp":
        space[f"{method}_gamma"] = (0.03, 0.1)
        space[f"{method}_steps"] = (5, 7) if method == "pc_fw" else (4, 6)
    if method == "pc_avg":
        space["pc_avg_forward_layers"] = (4, 5)
    return space


def validation_score(results: Mapping[str, Any]) -> float:
    """A sweep trial's objective: the mean best validation accuracy of its one point."""
    (dataset,) = results["config"]["datasets"]
    (fraction,) = results[dataset]["validation_accuracy"].values()
    (method,) = fraction.values()
    return float(method["mean"])


SEARCH = Search(
    fixed={"validation": "0.2", "seeds": "1", "fractions": "1.0", "datasets": "fashion-mnist"},
    space=search_space,
    objective=validation_score,
    monitor="accuracy",
    prune_after=8,  # two epochs at 4 evaluations per epoch
    note="best validation accuracy (%) over the evaluations of one run, 20% of the "
    "dataset's training set held out (Fashion-MNIST, the default: 48,000 of its 60,000 to "
    "train on, 12,000 to score; the CIFAR-10 subset: 8,000 and 2,000)",
)


def percent(value: float) -> str:
    """The key of a fraction or relative error in the results: 0.25 -> "25%"."""
    return f"{100 * value:g}%"


def paper_smm(method: str, layers: int, steps: int, forward_layers: int = 0) -> int:
    """The paper's SMMs per weight update: BP 2L - 1 (Eq. 5), PC-I_fw 2T + L (Eq. 6),
    PC-I_avg 2T (Eq. 5) plus m for the hybrid of Eq. 10."""
    if method == "bp":
        return 2 * layers - 1
    return 2 * steps + (layers if method == "pc_fw" else forward_layers)


def train_method(
    ctx: RunContext,
    cfg: Table1Config,
    ds: Dataset,
    method: str,
    seed: int,
    label: str,
    compiled: dict[Any, Any] | None = None,
) -> tuple[MethodRun, int]:
    """Train `method` on `ds` (its test arrays are the evaluation set) from seed `seed`;
    returns the run and the measured SMMs per update (`compiled`: the steps compiled so
    far, by method)."""
    hp = hyper(cfg, method)
    graph = image_graph(
        cfg.architecture, ds, hidden=cfg.hidden, channels=cfg.channels,
        activation=hp["activation"], key=jax.random.key(seed),
    )  # fmt: skip
    if method == "bp":
        algorithm: pcn.AbstractAlgorithm = pcn.BP()
    else:
        init = (
            pcn.forward_init
            if method == "pc_fw"
            else pcn.AverageInit(forward_layers=hp["forward_layers"])
        )
        # a CNN's relaxation runs faster unrolled on XLA:CPU (`pcn.FixedSteps`'s
        # `unroll`); the numbers are the same
        stop = pcn.FixedSteps(hp["steps"], unroll=cfg.architecture == "cnn")
        algorithm = pcn.IL(stop, gamma=hp["gamma"], init=init)
    optimizer = optax.adamw(hp["learning_rate"], weight_decay=cfg.weight_decay)
    return train_classifier(
        ctx, ds, graph, algorithm, optimizer, epochs=cfg.epochs, batch_size=cfg.batch_size,
        evals_per_epoch=cfg.evals_per_epoch, seed=seed, label=label,
        stream_aligned=method == "pc_avg", compiled=compiled, compiled_key=method,
    )  # fmt: skip


def split(ds: Dataset, cfg: Table1Config, fraction: float, seed: int) -> Dataset:
    """`ds` with the evaluation set chosen (the test set, or the `validation` fraction of
    the training set held out) and the first `fraction` of the remaining training set (a
    seeded shuffle, so the fractions of one seed are nested)."""
    x, y = ds.x_train, ds.y_train
    order = np.random.default_rng(seed).permutation(len(x))
    x_eval, y_eval = ds.x_test, ds.y_test
    if cfg.validation:
        held = round(cfg.validation * len(x))
        x_eval, y_eval = x[order[:held]], y[order[:held]]
        order = order[held:]
    keep = order[: max(cfg.batch_size, round(fraction * len(order)))]
    return dataclasses.replace(ds, x_train=x[keep], y_train=y[keep], x_test=x_eval, y_test=y_eval)


def run_grid(ctx: RunContext, cfg: Table1Config) -> dict[str, Any]:
    """Every dataset x fraction x method x seed of `cfg`: accuracies, curves, SMMs and
    the cost of reaching each relative error."""
    score = "validation_accuracy" if cfg.validation else "test_accuracy"
    out: dict[str, Any] = {"score": score, "config": dataclasses.asdict(cfg)}
    layers = hidden_layers(cfg) + 1
    measured_smm: dict[str, int] = {}
    compiled: dict[Any, Any] = {}  # one compiled step per method and model shape
    seeds = [ctx.seed + s for s in range(cfg.seeds)]
    for name in cfg.datasets:
        ds = load_subset(name, ctx, train=cfg.train, test=cfg.test)
        table: dict[str, Any] = {}
        curves: dict[str, Any] = {}
        costs: dict[str, Any] = {"smm": {}, "seconds": {}}
        sizes: dict[str, int] = {}
        for fraction in cfg.fractions:
            runs: dict[str, list[MethodRun]] = {}
            parts = {seed: split(ds, cfg, fraction, seed) for seed in seeds}
            for method in cfg.methods:
                for seed, part in parts.items():
                    label = f"{name}-{fraction}-{method}-s{seed}"
                    run, measured_smm[method] = train_method(
                        ctx, cfg, part, method, seed, label, compiled
                    )
                    runs.setdefault(method, []).append(run)
            f = percent(fraction)
            table[f] = {m: _summary([r.best for r in rs]) for m, rs in runs.items()}
            curves[f] = {m: [dataclasses.asdict(r) for r in rs] for m, rs in runs.items()}
            reference = max(v["mean"] for v in table[f].values())
            for along in ("smm", "seconds"):
                costs[along][f] = {
                    percent(rel): {
                        m: _fewest(rs, reference * (1 - rel), along) for m, rs in runs.items()
                    }
                    for rel in RELATIVE_ERRORS
                }
            sizes[f] = len(parts[ctx.seed].x_train)  # the same for every seed
        out[name] = {
            score: table,
            "curves": curves,
            "train_examples": sizes,
            "evaluation_examples": len(parts[ctx.seed].x_test),
        }
        out.setdefault("smm_to_relative_error", {})[name] = costs["smm"]
        out.setdefault("seconds_to_relative_error", {})[name] = costs["seconds"]
    out["layers"] = layers
    out["smm_per_update"] = {
        m: {
            "measured": measured_smm[m],
            "formula": paper_smm(
                m, layers, hyper(cfg, m).get("steps", 0), hyper(cfg, m).get("forward_layers", 0)
            ),
        }
        for m in cfg.methods
    }
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": values}


def _fewest(runs: list[MethodRun], target: float, along: str) -> float | None:
    reached = [r.first_reaching(target, getattr(r, along)) for r in runs]
    found = [c for c in reached if c is not None]
    return min(found) if found else None


# the same numbers for `pcn report`: pcn's are the means over seeds in results.json
PAPER_NUMBERS = tuple(
    PaperNumber(
        "Faster-PC Table 1",
        f"{name}, {percent(fraction)} of the data, {LABELS[method]} (%)",
        value,
        f"{name}.test_accuracy.{percent(fraction)}.{method}.mean",
    )
    for name, by_fraction in PAPER.items()
    for fraction, values in by_fraction.items()
    for method, value in zip(("bp", "pc_fw", "pc_avg"), values, strict=True)
)


@experiment(
    "faster-pc-table1",
    "BP vs PC-I_fw vs PC-I_avg at 3 training fractions over seeds (Faster-PC Table 1)",
    search=SEARCH,
    paper=PAPER_NUMBERS,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    out = run_grid(ctx, cfg)
    for name in cfg.datasets:
        save_figure(cost_figure(out, cfg, name), ctx.out / f"{name}-cost.png")
    return Report(out, _markdown(out, cfg))


def cost_figure(r: dict[str, Any], cfg: Table1Config, dataset: str) -> Figure:
    """Fig. 6: accuracy against training SMMs (the best seed of each method at the
    largest fraction) and the SMMs needed to reach each relative error."""
    fraction = percent(max(cfg.fractions))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for method in cfg.methods:
        runs = r[dataset]["curves"][fraction][method]
        best = max(runs, key=lambda c: max(c["accuracy"]))
        left.plot(best["smm"], best["accuracy"], ".-", label=LABELS[method])
    width = 0.8 / len(cfg.methods)
    costs = r["smm_to_relative_error"][dataset][fraction]
    for i, method in enumerate(cfg.methods):
        values = [costs[percent(rel)][method] for rel in RELATIVE_ERRORS]
        xs = [j + i * width for j, v in enumerate(values) if v is not None]
        right.bar(xs, [v for v in values if v is not None], width, label=LABELS[method])
    right.set_xticks(
        [j + width * (len(cfg.methods) - 1) / 2 for j in range(len(RELATIVE_ERRORS))],
        [f"{100 * rel:g}%" for rel in RELATIVE_ERRORS],
    )
    right.set_yscale("log")
    right.set_xlabel("relative error of the best mean accuracy")
    right.set_ylabel("training SMMs to reach it")
    left.set_xscale("log")
    left.set_xlabel("training SMMs (measured)")
    left.set_ylabel(f"{r['score'].replace('_', ' ')} (%)")
    left.set_title(f"{dataset}, {fraction} of the training set")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _cost_table(r: dict[str, Any], cfg: Table1Config, dataset: str, along: str) -> str:
    fraction = percent(max(cfg.fractions))
    costs = r[f"{along}_to_relative_error"][dataset][fraction]
    rows = []
    for method in cfg.methods:
        cells = [costs[percent(rel)][method] for rel in RELATIVE_ERRORS]
        rows.append(
            [LABELS[method]]
            + [
                "-" if c is None else (f"{c:.3g}" if along == "seconds" else f"{c:,}")
                for c in cells
            ]
        )
    return markdown_table(["method", *[f"{100 * rel:g}%" for rel in RELATIVE_ERRORS]], rows)


def _markdown(r: dict[str, Any], cfg: Table1Config) -> str:
    score = r["score"].replace("_", " ")
    sections = []
    for name in cfg.datasets:
        rows = []
        for fraction in cfg.fractions:
            cells = r[name][r["score"]][percent(fraction)]
            row = [f"{fraction:g} ({r[name]['train_examples'][percent(fraction)]})"]
            row += [f"{cells[m]['mean']:.2f} ± {cells[m]['std']:.2f}" for m in cfg.methods]
            paper = PAPER[name].get(fraction)
            row.append(" / ".join(f"{p:.2f}" for p in paper) if paper else "-")
            rows.append(row)
        header = ["fraction (examples)", *[LABELS[m] for m in cfg.methods], "paper BP / fw / avg"]
        sections.append(
            f"""## {name}

Best {score} (%) over each run's evaluations, mean ± std over {cfg.seeds} seeds, on
{r[name]["evaluation_examples"]} images:

{markdown_table(header, rows)}

Training SMMs (measured, the fewest over the seeds) to reach a relative error of the best
mean accuracy at fraction {max(cfg.fractions):g}:

{_cost_table(r, cfg, name, "smm")}

Training seconds on this machine (evaluation and the compiling first step left out):

{_cost_table(r, cfg, name, "seconds")}

![cost]({name}-cost.png)
"""
        )
    smm_rows = [
        [LABELS[m], r["smm_per_update"][m]["measured"], r["smm_per_update"][m]["formula"]]
        for m in cfg.methods
    ]
    settings_table = markdown_table(
        ["method", "settings"],
        [[LABELS[m], ", ".join(f"{k} {v}" for k, v in hyper(cfg, m).items())] for m in cfg.methods],
    )
    if cfg.architecture == "cnn":
        channels = ", ".join(map(str, cfg.channels))
        model = (
            f"A CNN of {r['layers']} layers (3x3 convolutions of {channels} channels with 2x2 "
            f"max pooling, a dense layer of {cfg.hidden[-1]})"
        )
    else:
        model = f"An MLP of {r['layers']} layers (hidden {' x '.join(map(str, cfg.hidden))})"
    return f"""# BP, PC-I_fw and PC-I_avg (Faster-PC paper, Table 1, Fig. 6, Table 3)

{model}, batches of {cfg.batch_size} (shuffled for BP
and PC-I_fw, stream-aligned for PC-I_avg), {cfg.epochs} epochs of AdamW (weight decay
{cfg.weight_decay}) on the weights, SGD on the neurons, Gaussian output energy (squared
error) for every method, evaluated {cfg.evals_per_epoch} times per epoch by the forward
pass. Each method's settings (`pcn sweep faster-pc-table1 --set methods=M` searches them):

{settings_table}

SMMs per weight update, measured from the compiled step beside the paper's formula (BP
2L - 1, PC-I_fw 2T + L, PC-I_avg 2T + m). For PC-I_avg the measured chain holds one more
product, the prediction at the relaxed values the weights are updated at, which Eq. 5
leaves out; with m = 1 pcn's fused relaxation of the first hidden layer saves it again:

{markdown_table(["method", "measured", "paper"], smm_rows)}

{chr(10).join(sections)}
Paper (3 seeds, its own grid search per dataset and fraction; GPU): Fashion-MNIST at full
data 89.55 / 88.50 / 89.80, MNIST 98.32 / 98.26 / 98.73; Table 3: PC-I_fw 4.42 s and
PC-I_avg 2.19 s to the best shared accuracy on Fashion-MNIST (4.71 / 1.38 s on MNIST).
"""
