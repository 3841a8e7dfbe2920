"""`faster-pc-generative`: a memory-based initialisation makes a generative decoder good
at very few inference steps (Faster-PC paper, Section 4.2, Figs. 7-8).

A PC decoder (latent z -> hidden layers -> image) is trained by IL on Fashion-MNIST with
the image clamped, its other neurons started each batch by I_mem (`memory`: a modern
Hopfield layer per node answering the image, Eqs. 8-9), I_0 (`zero`) or I_N (`normal`),
for T_train relaxation steps. After each epoch every test image is reconstructed: its
neurons started by the same initialiser, relaxed for T_eval steps with the image
clamped, the inferred latent decoded by a forward pass; the loss is the mean squared
error per pixel against the image.

Results: `best_loss.<init>.<T_train>.<T_eval>` (the lowest test loss over the epochs),
`test_loss.<init>.<T_train>.<T_eval>` (per epoch), `smm.<init>.<T_train>` (SMMs per
update measured from the compiled step, and cumulative at each evaluation);
`reconstructions.png` at the smallest T_train and T_eval.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import pcn
from pcn.cost import step_smm
from pcn.data import batches as data_batches
from pcn.graph import PCGraph

from .common import check_names, check_settings, load_subset
from .output import markdown_table, save_figure
from .plots import image_grid
from .registry import Report, RunContext, choose_config, experiment
from .trainer import batch_content_key, fit, train_step_learner

INITIALISERS = ("memory", "zero", "normal")


@dataclasses.dataclass(frozen=True)
class GenerativeInitsConfig:
    decoder_sizes: tuple[int, ...]  # latent -> ... -> image (the paper: 4 layers)
    activation: str
    inits: tuple[str, ...]
    train_inference_steps: tuple[int, ...]  # T_train grid
    eval_inference_steps: tuple[int, ...]  # T_eval grid
    epochs: int
    batch_size: int
    gamma: float  # SGD on the neurons, training and evaluation
    learning_rate: float  # Adam on the weights
    normal_std: float
    memory_nodes: str  # the nodes with a Hopfield layer ("z,h1"), or "all"
    memory_patterns: int
    memory_heads: int
    memory_key_width: int
    memory_beta: float  # delta of Eq. 8
    memory_rate: float
    train: int | None
    test: int | None

    def __post_init__(self) -> None:
        check_settings(self)
        check_names("inits", self.inits, INITIALISERS)
        for name in ("train_inference_steps", "eval_inference_steps"):
            grid = getattr(self, name)
            if not grid or min(grid) < 1:
                raise ValueError(f"`{name}` must list values of T >= 1, got {grid!r}.")


FULL = GenerativeInitsConfig(
    decoder_sizes=(64, 256, 256, 256, 784),
    activation="tanh",
    inits=INITIALISERS,
    train_inference_steps=(3, 5, 10, 20),
    eval_inference_steps=(3, 5, 10, 20),
    epochs=10,
    batch_size=200,
    gamma=0.1,
    learning_rate=1e-3,
    normal_std=0.1,
    # the paper's Hopfield layers (appendix: 16 heads, 24 patterns, embedding 128), on
    # every node as in its Eqs. 8-9 (one memory on z with a forward pass below cannot
    # learn at T = 3: z's first move comes at step 4, after the image's error has
    # climbed the three layers, so Eq. 9's target is the memory's own answer); delta 1
    # (the paper's 200 diverged in a 4-epoch probe)
    memory_nodes="all",
    memory_patterns=24,
    memory_heads=16,
    memory_key_width=8,
    memory_beta=1.0,
    memory_rate=1e-3,
    train=None,
    test=2000,
)
QUICK = dataclasses.replace(
    FULL,
    decoder_sizes=(16, 64, 784),
    train_inference_steps=(3, 20),
    eval_inference_steps=(3, 20),
    epochs=3,
    batch_size=50,
    train=2000,
    test=300,
)


def _initialiser(name: str, cfg: GenerativeInitsConfig) -> pcn.AbstractInitialiser:
    if name == "memory":
        nodes = None if cfg.memory_nodes == "all" else tuple(cfg.memory_nodes.split(","))
        return pcn.MemoryInit(
            nodes=nodes,
            patterns=cfg.memory_patterns,
            heads=cfg.memory_heads,
            key_width=cfg.memory_key_width,
            beta=cfg.memory_beta,
            optimizer=optax.adam(cfg.memory_rate),
        )
    return pcn.zeros_init if name == "zero" else pcn.NormalInit(std=cfg.normal_std)


@eqx.filter_jit
def _reconstruct(graph: PCGraph, start: dict[str, jax.Array], steps: int, gamma: float):
    """Relax from `start` with the image clamped for `steps` steps; decode the latent."""
    relaxed = pcn.infer(graph, start, clamp={"x": True}, stop=steps, gamma=gamma)
    return pcn.forward_init(graph, {"z": relaxed.values["z"]})["x"]


def _started(
    step: pcn.TrainStep, state: Any, init: pcn.AbstractInitialiser, images: jax.Array
) -> tuple[PCGraph, dict[str, jax.Array]]:
    """The trained graph and the test images' starting values, by the training's
    initialiser (a carrying one from the carry in `state`; a random one with key 0)."""
    graph, provided = step.graph(state), {"x": images}
    if isinstance(init, pcn.AbstractCarryingInitialiser):
        return graph, init.initialise(step.carry(state), graph, provided)
    return graph, init(graph, provided, key=jax.random.key(0))


def _evaluator(step: pcn.TrainStep, init: pcn.AbstractInitialiser, x: np.ndarray, cfg):
    """Test losses at every T_eval, each neuron started as in training."""
    images = jnp.asarray(x)

    def evaluate(state) -> dict[str, float]:
        graph, start = _started(step, state, init, images)
        losses = {}
        for t in cfg.eval_inference_steps:
            decoded = _reconstruct(graph, start, t, cfg.gamma)
            losses[f"T{t}"] = float(jnp.mean((decoded - images) ** 2))
        return losses

    return evaluate


@experiment(
    "faster-pc-generative",
    "Memory-based, zero and random initialisation of a PC decoder at T_train x T_eval "
    "(Faster-PC Figs. 7-8)",
    figure=(
        "Faster-PC Figs. 7-8 plot the losses: I_mem hardly depends on T_train and T_eval;"
        " I_0 and I_N still improve at 20 / 20"
    ),
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    ds = load_subset("fashion-mnist", ctx, train=cfg.train, test=cfg.test)
    graph = pcn.generative_mlp(
        cfg.decoder_sizes,
        activation=cfg.activation,
        output_activation="sigmoid",
        key=jax.random.key(ctx.seed),
    )

    def order(epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        seed = ctx.seed * 1000 + epoch
        return list(data_batches(ds.x_train, ds.y_train, cfg.batch_size, key_or_seed=seed))

    losses: dict[str, dict[str, dict[str, list[float]]]] = {}
    examples: dict[str, np.ndarray] = {"original": ds.x_test[:8]}
    smm: dict[str, dict[str, dict[str, Any]]] = {}
    for name in cfg.inits:
        for t_train in cfg.train_inference_steps:
            init = _initialiser(name, cfg)
            algorithm = pcn.IL(t_train, gamma=cfg.gamma, init=init)
            step = pcn.make_train_step(graph, algorithm, optax.adam(cfg.learning_rate))
            learner = train_step_learner(
                step,
                graph,
                order,
                lambda b: {"x": jnp.asarray(b[0])},
                key=jax.random.key(ctx.seed),
                batch_key=batch_content_key,
            )
            learner = dataclasses.replace(learner, evaluate=_evaluator(step, init, ds.x_test, cfg))
            first = order(0)[0]
            measured = step_smm(
                step, learner.init(), {"x": jnp.asarray(first[0])}, batch_content_key(first)
            )
            result = fit(learner, epochs=cfg.epochs, ctx=ctx, label=f"{name}-T{t_train}")
            smm.setdefault(name, {})[str(t_train)] = {
                "per_update": measured,
                "cumulative": [measured * s for s in result.history["step"]],
            }
            losses.setdefault(name, {})[str(t_train)] = {
                str(t): result.history[f"T{t}"] for t in cfg.eval_inference_steps
            }
            if t_train == min(cfg.train_inference_steps):
                t_eval = min(cfg.eval_inference_steps)
                examples[f"{name}, T = {t_train} / {t_eval}"] = _examples(
                    step, result.state, init, ds.x_test[:8], t_eval, cfg
                )
    best = {
        n: {tt: {te: min(v) for te, v in row.items()} for tt, row in by_t.items()}
        for n, by_t in losses.items()
    }
    out = {
        "dataset": "fashion-mnist",
        "train_examples": len(ds.x_train),
        "test_examples": len(ds.x_test),
        "config": dataclasses.asdict(cfg),
        "test_loss": losses,
        "best_loss": best,
        # SMMs per weight update measured from each compiled step, and the training SMMs
        # behind each epoch's evaluation
        "smm": smm,
        "steps": cfg.epochs * len(order(0)),  # weight updates per model
    }
    save_figure(image_grid(examples, ds.image_shape), ctx.out / "reconstructions.png")
    save_figure(_figure(best, cfg), ctx.out / "best_loss.png")
    return Report(out, _markdown(out, cfg))


def _examples(step, state, init, x: np.ndarray, steps: int, cfg) -> np.ndarray:
    graph, start = _started(step, state, init, jnp.asarray(x))
    return np.asarray(_reconstruct(graph, start, steps, cfg.gamma))


def _figure(best: dict[str, Any], cfg: GenerativeInitsConfig) -> Figure:
    """Fig. 7 (left): the best test loss of each (T_train, T_eval), one panel per init."""
    tt, te = cfg.train_inference_steps, cfg.eval_inference_steps
    grids = {n: np.array([[best[n][str(a)][str(b)] for b in te] for a in tt]) for n in cfg.inits}
    low, high = min(g.min() for g in grids.values()), max(g.max() for g in grids.values())
    fig, axes = plt.subplots(1, len(cfg.inits), figsize=(3.6 * len(cfg.inits), 3.4))
    for ax, (name, grid) in zip(np.atleast_1d(axes), grids.items(), strict=True):
        image = ax.imshow(grid, vmin=low, vmax=high, cmap="viridis_r")
        ax.set_xticks(range(len(te)), [str(t) for t in te])
        ax.set_yticks(range(len(tt)), [str(t) for t in tt])
        ax.set_xlabel("T_eval")
        ax.set_ylabel("T_train")
        ax.set_title(name)
        for i in range(len(tt)):
            for j in range(len(te)):
                ax.text(j, i, f"{grid[i, j]:.4f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="best test MSE")
    return fig


def _markdown(r: dict[str, Any], cfg: GenerativeInitsConfig) -> str:
    te = cfg.eval_inference_steps
    rows = [
        [name, tt, *[f"{r['best_loss'][name][str(tt)][str(t)]:.5f}" for t in te]]
        for name in cfg.inits
        for tt in cfg.train_inference_steps
    ]
    table = markdown_table(["init", "T_train", *[f"T_eval = {t}" for t in te]], rows)
    sizes = " -> ".join(map(str, cfg.decoder_sizes))
    where = (
        "a Hopfield layer on every free node"
        if cfg.memory_nodes == "all"
        else f"a Hopfield layer on {cfg.memory_nodes}, the nodes below started by a forward pass"
    )
    memory = (
        f"{where}; {cfg.memory_heads} head(s) of {cfg.memory_patterns} patterns, keys of "
        f"{cfg.memory_key_width}, delta {cfg.memory_beta}, Adam {cfg.memory_rate} on Eq. 9"
    )
    return f"""# Memory-based initialisation of a generative PCN (Faster-PC paper, Figs. 7-8)

A PC decoder ({sizes}, {cfg.activation}, sigmoid image) trained by IL on
{r["train_examples"]} Fashion-MNIST images ({cfg.epochs} epochs of batch
{cfg.batch_size}, SGD {cfg.gamma} on the neurons for T_train steps, Adam
{cfg.learning_rate} on the weights), the neurons started each batch by I_mem ({memory}),
I_0 or I_N (std {cfg.normal_std}). Each of {r["test_examples"]} test images is reconstructed after
every epoch: started by the same initialiser, relaxed for T_eval steps, its latent
decoded; best test MSE per pixel over the epochs:

{table}

![best loss](best_loss.png)

Reconstructions at the smallest T_train / T_eval:

![reconstructions](reconstructions.png)

Paper (Fig. 7): I_mem's loss hardly depends on T_train and T_eval; I_0 and I_N still
improve at 20 / 20, about an order of magnitude more steps for the same quality.
"""
