"""`nongauss-transformer`: BP vs PC_F vs PC_FKL training a causal transformer language
model (section 4.3 and Fig. 7 of `papers/pc-beyond-gaussian-distributions.md`).

The paper trains one block / one head / width 128 on 32-token inputs of One Billion
Word with an 8001-piece BPE vocabulary. Here the corpus is tiny-shakespeare (offline),
with a smaller BPE vocabulary trained on its training split. PC_F gives every node a
Gaussian energy (the attention and output softmaxes included); PC_FKL gives the
attention node a `SoftmaxCategorical` energy and the output a `Categorical` one
(Eq. 10); BP trains the PC_FKL graph by backprop. Per seed, all three start from the
same weights and see the same batches. Perplexity is measured by forward passes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import equinox as eqx
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax
from matplotlib.figure import Figure

from pcn import data as pcn_data
from pcn._validation import check_at_least, check_positive
from pcn.algorithms import BP, IL, AbstractAlgorithm, make_train_step
from pcn.alignment import update_alignment
from pcn.data.text import EOL_ID
from pcn.graph import PCGraph
from pcn.language_model import (
    VARIANTS,
    Variant,
    check_vocabulary,
    language_model,
    lm_batch,
    next_token_log_probs,
    perplexity,
)
from pcn.memory import step_memory

from .common import check_settings
from .output import markdown_table, save_figure
from .registry import Report, RunContext, choose_config, experiment
from .trainer import fit, train_step_learner

LABELS = {"bp": "BP", "pc_f": "PC_F", "pc_fkl": "PC_FKL", "bp_repeat": "BP, k updates"}


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    seq_len: int
    dim: int
    train_sequences: int  # first N of a seeded shuffle of the training windows (0: all)
    dev_sequences: int  # dev windows for the curves (0: all); test uses the whole split
    epochs: int
    batch_size: int
    steps: int  # T
    gamma: float  # value step of PC_F
    gamma_fkl: float  # value step of PC_FKL
    learning_rate: float
    weight_updates: int  # per batch, PC_FKL only (PC_F and BP: 1)
    seeds: int
    evals_per_epoch: int
    bp_control: bool  # also train BP with `weight_updates` steps per batch, like PC_FKL
    # precision of the Gaussian hidden nodes (1: the paper's identity covariances)
    hidden_precision: float = 1.0
    attention_precision: float = 1.0  # weight of the attention node's energy
    # train and evaluate every method in float64: at small value steps the errors that
    # reach the first layers fall below float32's resolution of the values
    float64: bool = False
    # Adam's epsilon (optax's default 1e-8); PC's updates of the first layers can be far
    # smaller than BP's at a small value step, and an epsilon above them stalls those layers
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        check_settings(self)
        check_positive("gamma_fkl", self.gamma_fkl)
        check_positive("hidden_precision", self.hidden_precision, hint="1 is the paper's.")
        check_positive("attention_precision", self.attention_precision, hint="1 is the paper's.")
        check_positive("adam_eps", self.adam_eps, hint="optax's default is 1e-8.")
        for name in ("vocab_size", "seq_len", "dim", "weight_updates", "seeds"):
            check_at_least(name, getattr(self, name), 1)
        check_at_least("evals_per_epoch", self.evals_per_epoch, 1)
        check_at_least("train_sequences", self.train_sequences, 0, hint="0 means all.")
        check_at_least("dev_sequences", self.dev_sequences, 0, hint="0 means all.")


# the committed headline (results/nongauss-transformer): all training windows, stiff hidden
# nodes and a small value step, in float64, T = 10
FULL = TransformerConfig(
    vocab_size=512,
    seq_len=32,
    dim=128,
    train_sequences=0,
    dev_sequences=512,
    epochs=3,
    batch_size=32,
    steps=10,
    gamma=1e-4,
    gamma_fkl=1e-4,
    learning_rate=1e-3,
    weight_updates=1,
    seeds=3,
    evals_per_epoch=3,
    bp_control=False,
    hidden_precision=100.0,
    float64=True,
)
# the paper's unit precisions at a large value step, on a small budget (under two minutes)
QUICK = TransformerConfig(
    vocab_size=256,
    seq_len=32,
    dim=32,
    train_sequences=384,
    dev_sequences=128,
    epochs=2,
    batch_size=32,
    steps=5,
    gamma=0.1,
    gamma_fkl=0.1,
    learning_rate=1e-2,
    weight_updates=3,
    seeds=1,
    evals_per_epoch=2,
    bp_control=False,
)


def algorithm_of(method: str, cfg: TransformerConfig) -> AbstractAlgorithm:
    """BP, or IL with T steps of SGD on the values (several weight updates for PC_FKL),
    or (`"bp_repeat"`) BP with PC_FKL's number of weight updates per batch."""
    if method == "bp":
        return BP()
    if method == "bp_repeat":
        return BP(weight_updates=cfg.weight_updates)
    variant = method
    if variant == "pc_fkl":
        return IL(cfg.steps, gamma=cfg.gamma_fkl, weight_updates=cfg.weight_updates)
    return IL(cfg.steps, gamma=cfg.gamma)


def train_one(
    graph: PCGraph,
    algorithm: AbstractAlgorithm,
    train: np.ndarray,
    dev: np.ndarray,
    cfg: TransformerConfig,
    *,
    seed: int,
    label: str,
    ctx: RunContext,
) -> tuple[PCGraph, dict[str, Any]]:
    """Adam on the weights over `cfg.epochs` shuffled epochs of `train` (whole batches;
    checkpointed under `label`); dev perplexity `cfg.evals_per_epoch` times per epoch
    (and before training)."""
    step = make_train_step(graph, algorithm, optax.adam(cfg.learning_rate, eps=cfg.adam_eps))
    per_epoch = len(train) // cfg.batch_size

    def batches(epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([seed, epoch]).permutation(len(train))
        return [
            train[order[i * cfg.batch_size : (i + 1) * cfg.batch_size]] for i in range(per_epoch)
        ]

    learner = train_step_learner(
        step,
        graph,
        batches,
        lambda rows: lm_batch(graph, rows),
        lambda g: {"dev_perplexity": perplexity(g, dev)},
    )
    result = fit(
        learner,
        epochs=cfg.epochs,
        ctx=ctx,
        label=label,
        evals_per_epoch=cfg.evals_per_epoch,
        evaluate_first=True,
    )
    h = result.history
    curve = {
        "step": h["step"],
        "dev_perplexity": h["dev_perplexity"],
        "train_loss": h["train_loss"],
    }
    curve["train_seconds"] = result.train_seconds
    curve["ms_per_step"] = result.ms_per_step
    return step.graph(result.state), curve


def _alignment(graph: PCGraph, rows: np.ndarray, cfg: TransformerConfig) -> dict[str, dict]:
    """Per weight array, cosine and norm ratio of PC_FKL's update (its T and value step,
    ONE weight update: with `weight_updates` > 1 their sum would not compare with one BP
    step) to BP's at the trained seed-0 PC_FKL weights, on the windows `rows`."""
    pc = IL(cfg.steps, gamma=cfg.gamma_fkl)
    result = update_alignment(graph, pc, BP(), lm_batch(graph, rows))
    return {name: a._asdict() for name, a in result.items()}


def _pieces(text: pcn_data.TokenizedText, ids) -> str:
    """Readable text of `ids`: SentencePiece's word marks as spaces, end of line as ' / '."""
    words = []
    for i in ids:
        piece = text.tokenizer.id_to_piece(int(i))
        words.append(" /" if int(i) == EOL_ID else piece.replace("\u2581", " "))
    return "".join(words).strip()


def predictions(
    models: dict[str, PCGraph], text: pcn_data.TokenizedText, count: int, *, seed: int
) -> list[dict[str, Any]]:
    """Top-3 next tokens of each model at the last position of `count` test windows."""
    rng = np.random.default_rng(seed)
    rows = text.test[rng.choice(len(text.test), size=count, replace=False)]
    out = []
    for row in rows:
        example: dict[str, Any] = {
            "context": _pieces(text, row[-13:-1]),
            "next": _pieces(text, row[-1:]),
        }
        for variant, graph in models.items():
            probs = np.exp(np.asarray(next_token_log_probs(graph, row[None, :-1]))[0, -1])
            top = np.argsort(probs)[::-1][:3]
            example[variant] = [(_pieces(text, [t]), float(probs[t])) for t in top]
        out.append(example)
    return out


def _figure(curves: dict[str, list[dict]], per_epoch: int) -> Figure:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (method, runs) in enumerate(curves.items()):
        x = np.asarray(runs[0]["step"]) / per_epoch
        y = np.asarray([r["dev_perplexity"] for r in runs])
        mean, std = y.mean(axis=0), y.std(axis=0)
        style = "--" if method == "bp_repeat" else "-"
        ax.plot(x, mean, style, color=f"C{i}", marker=".", label=LABELS[method])
        ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.25)
    ax.set_xlabel("epoch")
    ax.set_ylabel("dev perplexity")
    ax.set_yscale("log")
    ax.set_title("Dev perplexity (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    tests = [[r["test_perplexity"] for r in runs] for runs in curves.values()]
    bx.bar(
        [LABELS[m] for m in curves],
        [np.mean(t) for t in tests],
        yerr=[np.std(t) for t in tests],
        capsize=6,
        color=[f"C{i}" for i in range(len(curves))],
    )
    bx.set_ylabel("test perplexity")
    bx.set_title("Test perplexity (mean ± std)")
    bx.grid(alpha=0.3, axis="y")
    return fig


@experiment(
    "nongauss-transformer",
    "BP vs PC_F vs PC_FKL training a causal transformer LM (beyond-Gaussians paper, Fig. 7)",
    figure="the beyond-Gaussians paper's Fig. 7 plots the perplexities (no table of numbers)",
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    with jax.enable_x64(cfg.float64):
        return _run(ctx, cfg)


def _run(ctx: RunContext, cfg: TransformerConfig) -> Report:
    text = pcn_data.load_text(
        "tiny-shakespeare", vocab_size=cfg.vocab_size, seq_len=cfg.seq_len, data_dir=ctx.data_dir
    )
    rng = np.random.default_rng(ctx.seed)
    train = text.train[rng.permutation(len(text.train))]
    train = train[: cfg.train_sequences] if cfg.train_sequences else train
    dev = text.dev[: cfg.dev_sequences] if cfg.dev_sequences else text.dev
    optimizer = optax.adam(cfg.learning_rate, eps=cfg.adam_eps)
    methods = [*VARIANTS, "bp_repeat"] if cfg.bp_control else list(VARIANTS)
    curves: dict[str, list[dict]] = {m: [] for m in methods}
    trained: dict[str, PCGraph] = {}
    memory: dict[str, dict[str, int]] = {}
    for s in range(cfg.seeds):
        seed = ctx.seed * 1000 + s
        for method in methods:
            variant = cast(Variant, "bp" if method == "bp_repeat" else method)
            graph = language_model(
                text.vocab_size,
                seq_len=cfg.seq_len,
                dim=cfg.dim,
                variant=variant,
                hidden_precision=cfg.hidden_precision,
                attention_precision=cfg.attention_precision,
                key=jax.random.key(seed),
            )
            check_vocabulary(graph, text.vocab_size)
            algorithm = algorithm_of(method, cfg)
            if s == 0 and method in VARIANTS:
                batch = lm_batch(graph, train[: cfg.batch_size])
                memory[variant] = step_memory(graph, algorithm, optimizer, batch).as_dict()
            graph, curve = train_one(
                graph, algorithm, train, dev, cfg, seed=seed, label=f"{method}-seed{s}", ctx=ctx
            )
            curve["test_perplexity"] = perplexity(graph, text.test)
            curves[method].append(curve)
            if s == 0 and method in VARIANTS:
                trained[method] = graph
    per_epoch = len(train) // cfg.batch_size
    save_figure(_figure(curves, per_epoch), ctx.out / "perplexity.png")
    tests = {m: [c["test_perplexity"] for c in curves[m]] for m in methods}
    test_mean = {m: float(np.mean(tests[m])) for m in methods}
    test_std = {m: float(np.std(tests[m])) for m in methods}
    train_seconds = {m: float(np.sum([c["train_seconds"] for c in curves[m]])) for m in methods}
    ms_step = {m: float(np.mean([c["ms_per_step"] for c in curves[m]])) for m in methods}
    examples = predictions(trained, text, 4 if not ctx.quick else 2, seed=ctx.seed)
    ratio = {v: memory[v]["temp"] / memory["bp"]["temp"] for v in ("pc_f", "pc_fkl")}
    total_ratio = {v: memory[v]["total"] / memory["bp"]["total"] for v in ("pc_f", "pc_fkl")}
    gap = test_mean["pc_fkl"] / test_mean["bp"] - 1.0
    alignment = _alignment(trained["pc_fkl"], text.test[:128], cfg)
    if cfg.bp_control:
        results_extra = {
            "pc_fkl_vs_bp_repeat_relative_gap": test_mean["pc_fkl"] / test_mean["bp_repeat"] - 1.0
        }
    else:
        results_extra = {}
    results = {
        "config": dataclasses.asdict(cfg),
        "data": {
            "corpus": text.name,
            "source": text.source,
            "vocab_size": text.vocab_size,
            "train_sequences": len(train),
            "dev_sequences": len(dev),
            "test_sequences": len(text.test),
            "tokens_per_sequence": cfg.seq_len,
        },
        "seeds": cfg.seeds,
        "test_perplexity": test_mean,
        "test_perplexity_std": test_std,
        "test_perplexity_per_seed": tests,
        "pc_fkl_vs_bp_relative_gap": gap,
        **results_extra,
        "curves": curves,
        "train_seconds": train_seconds,
        "ms_per_step": ms_step,
        "step_memory_bytes": memory,
        "memory_ratio_to_bp_temp": ratio,
        "memory_ratio_to_bp_total": total_ratio,
        "examples": examples,
        "update_alignment": alignment,
        "weight_dtype": str(
            jax.tree.leaves(eqx.filter(trained["bp"], eqx.is_inexact_array))[0].dtype
        ),
    }
    rows = [
        [
            LABELS[v],
            f"{test_mean[v]:.2f} ± {test_std[v]:.2f}",
            f"{curves[v][0]['dev_perplexity'][-1]:.2f}",
            f"{ms_step[v]:.0f}",
            f"{train_seconds[v]:.0f}",
            f"{memory[v]['temp'] / 2**20:.1f}" if v in memory else "-",
            f"{memory[v]['total'] / 2**20:.1f}" if v in memory else "-",
        ]
        for v in methods
    ]
    example_rows = [
        [
            f"…{e['context']}",
            f"**{e['next']}**",
            *[", ".join(f"{w!r} {100 * p:.0f}%" for w, p in e[v]) for v in VARIANTS],
        ]
        for e in examples
    ]
    align_rows = [
        [name, f"{a['cosine']:.3f}", f"{a['norm_ratio']:.3g}"]
        for name, a in results["update_alignment"].items()
    ]
    control = ""
    if cfg.bp_control:
        control_gap = test_mean["pc_fkl"] / test_mean["bp_repeat"] - 1.0
        control = f"""

PC_FKL takes {cfg.weight_updates} optimiser steps on the weights per batch, BP one. The
control "{LABELS["bp_repeat"]}" gives BP the same {cfg.weight_updates} steps per batch
(same batches, initial weights and learning rate): PC_FKL is {100 * control_gap:+.1f}%
relative to it (BP's test perplexity: {test_mean["bp"]:.2f} with one step per batch,
{test_mean["bp_repeat"]:.2f} with {cfg.weight_updates})."""
    md = f"""# Predictive coding beyond Gaussians: transformer language model (Fig. 7)

A causally masked transformer LM with one block, one head and width {cfg.dim} (token +
position embedding, attention, MLP of {cfg.dim} units, output softmax; pre-norm) on
inputs of {cfg.seq_len} tokens, predicting the next token at every position. Corpus:
tiny-shakespeare (first 90% of lines train, 5% dev, 5% test) with a SentencePiece BPE
vocabulary of {text.vocab_size} pieces trained on the training split (the paper: One
Billion Word, 8001 pieces). Training: {len(train)} windows of the training split
(a seeded sample), dev perplexity on {len(dev)} dev windows during training, test
perplexity on all {len(text.test)} test windows.

PC_F: Gaussian energies on every node (the softmaxes included); PC_FKL: the attention
node holds logits with a KL energy (`SoftmaxCategorical`, Eq. 10) and the output is
`Categorical` (cross-entropy to the next token); BP trains the PC_FKL graph.
PC: T = {cfg.steps} relaxation steps of SGD on the values (gamma {cfg.gamma} for PC_F,
{cfg.gamma_fkl} for PC_FKL), forward initialisation, Gaussian hidden nodes (embed, h, z)
of precision {cfg.hidden_precision} (1: the paper's identity covariances), the attention
node's energy weighted by {cfg.attention_precision},
{cfg.weight_updates} weight updates per batch for PC_FKL (1 for PC_F: the paper found
more unstable there). All: Adam (lr {cfg.learning_rate}, eps {cfg.adam_eps:g}), batch
{cfg.batch_size}, {cfg.epochs} epochs; {cfg.seeds} seed(s) (each: new initial weights, the
same for every method, and a new batch order); {"float64" if cfg.float64 else "float32"}
arithmetic for every method. Wall time measured on this shared
2-core CPU.

{
        markdown_table(
            [
                "method",
                "test perplexity (mean ± std)",
                "dev perplexity (seed 0, end)",
                "ms / step",
                "train s (all seeds)",
                "step temp MiB",
                "step total MiB",
            ],
            rows,
        )
    }

PC_FKL's test perplexity is {100 * gap:+.1f}% relative to BP's (paper: close to BP,
PC_F clearly worse).{control}

**Memory.** Measured with XLA's plan for one compiled training step at batch
{cfg.batch_size} (`jax.jit(step).lower(...).compile().memory_analysis()`): temp buffers
(activations, relaxed values, gradients) of PC_F / PC_FKL are {ratio["pc_f"]:.2f}x /
{ratio["pc_fkl"]:.2f}x BP's, and temp + arguments + outputs {total_ratio["pc_f"]:.2f}x /
{total_ratio["pc_fkl"]:.2f}x (paper's bound: M_PC < 2 M_BP).

**How far PC_FKL's update is from BP's** (`pcn.update_alignment`), at the trained seed-0
PC_FKL weights on {len(text.test[:128])} test windows, one weight update from the same
weights: cosine between the two updates and the ratio of their norms (Adam, the weight
optimiser, undoes a uniform scale per weight, not a wrong direction).

{markdown_table(["weights", "cosine", "norm ratio"], align_rows)}

![perplexity](perplexity.png)

Next-token predictions of the seed-0 models at the last position of random test
windows (top 3 with probabilities; ' /' is the end of a line):

{markdown_table(["context", "true next", "BP", "PC_F", "PC_FKL"], example_rows)}
"""
    return Report(results, md)
