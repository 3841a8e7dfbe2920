"""`memory-hierarchical`: generative PC memories clean noisy keys by iterating F
(thesis section 4.3, Figs. 4.4-4.9, Table 4.1), against iterated autoencoders.

For each hidden width n and number of images N, a generative PCN (a top code, two ReLU
layers of width n, a linear sensory layer) stores N images by Algorithm 6. A noisy key
(Gaussian noise of each variance) is cleaned by F of Fig. 4.4: the sensory values fixed
to the current image, every other value relaxed, the image replaced by the sensory
prediction; F is iterated and the error after each listed iteration recorded. An
autoencoder of three hidden layers of width n, trained by full-batch Adam and iterated
as a memory (its iteration count tuned on the keys), stands beside it. Retrieved: MSE
below 0.005. Retrieval time is measured per width for 1, 5 and 10 applications of F.

Results: `retrieved.<model>.<dataset>.<N>.noisy_var<variance>` (after the last listed
iteration; `noisy_var0_2` for 0.2), `by_iteration.<model>.<N>.<key>.<iterations>`
(count, MSE),
`ms_per_retrieval.<width>.<iterations>`, `strict.<model>.<N>` (the share of N random keys
answered with a stored image), `storage`, `autoencoder`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from pcn.associative import generative, keys, scores

from .memory_common import (
    AUTOENCODER,
    QUICK_AUTOENCODER,
    QUICK_STORAGE,
    STORAGE,
    AutoencoderSettings,
    MemorySettings,
    Results,
    autoencoders,
    best,
    check_grid,
    hits,
    load_images,
    model_name,
    pc_memory,
    store,
    timed,
)
from .output import markdown_table, save_figure
from .plots import image_grid
from .registry import PaperNumber, Report, RunContext, choose_config, experiment


@dataclasses.dataclass(frozen=True)
class HierarchicalConfig(MemorySettings, AutoencoderSettings):
    widths: tuple[int, ...]
    images: tuple[int, ...]  # N, each a grid point (nested: the first N of one shuffle)
    layers: int  # ReLU layers of width n under the top code (the thesis: 2)
    autoencoder_layers: int  # hidden layers of the autoencoder (the thesis: 3)
    variances: tuple[float, ...]  # of the Gaussian noise of the keys
    iterations: tuple[int, ...]  # applications of F after which the error is recorded
    timing_iterations: tuple[int, ...]
    threshold: float

    def __post_init__(self) -> None:
        MemorySettings.__post_init__(self)
        AutoencoderSettings.__post_init__(self)
        for name in ("widths", "images", "iterations", "timing_iterations"):
            check_grid(name, getattr(self, name))
        if not self.variances or not all(v > 0 for v in self.variances):
            raise ValueError(f"`variances` must list noise variances > 0, got {self.variances!r}.")
        if list(self.iterations) != sorted(set(self.iterations)):
            raise ValueError(f"`iterations` must increase, got {self.iterations!r}; e.g. 1,6,11.")


FULL = HierarchicalConfig(
    **STORAGE,
    **AUTOENCODER,
    widths=(256, 512, 1024),
    images=(100, 250),
    layers=2,
    autoencoder_layers=3,
    variances=(0.2, 1.0),
    iterations=(1, 6, 11),
    timing_iterations=(1, 5, 10),
    threshold=scores.NOISY_THRESHOLD,
)
QUICK = dataclasses.replace(
    FULL,
    **{**QUICK_STORAGE, "top": 8, "relax_steps": 200},
    **QUICK_AUTOENCODER,
    widths=(64, 128),
    images=(20,),
    variances=(0.05,),
    iterations=(1, 4),
    timing_iterations=(1, 2),
)


def _key_name(variance: float) -> str:
    """`noisy_var0_2` for noise of variance 0.2 (no dot: results keys are dotted paths)."""
    return f"noisy_var{variance:g}".replace(".", "_")


def _with_iterations(memory: generative.GenerativeMemory, iterations: int):
    return generative.GenerativeMemory(
        memory.graph, iterations, memory.stop, memory.value_optimizer
    )


def _bars(results: Results, cfg: HierarchicalConfig, dataset: str) -> Figure:
    key = _key_name(cfg.variances[0])
    fig, axes = plt.subplots(1, len(cfg.images), figsize=(4.2 * len(cfg.images), 3.2),
                             squeeze=False)  # fmt: skip
    x = np.arange(len(cfg.widths))
    for ax, n in zip(axes[0], cfg.images, strict=True):
        for i, (kind, layers) in enumerate(
            (("pc", cfg.layers), ("autoencoder", cfg.autoencoder_layers))
        ):
            fractions = [results.fraction(model_name(kind, layers, w), dataset, n, key)
                         for w in cfg.widths]  # fmt: skip
            ax.bar(x + (i - 0.5) * 0.38, fractions, 0.38, label=kind)
        ax.set_xticks(x, [str(w) for w in cfg.widths])
        ax.set_xlabel("hidden width n")
        ax.set_ylabel(f"fraction of {n} retrieved")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"N = {n}, noise variance {cfg.variances[0]:g}")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    return fig


def _iteration_curves(by_iteration: dict, cfg: HierarchicalConfig) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    key = _key_name(cfg.variances[0])
    for model, by_n in by_iteration.items():
        for n, by_key in by_n.items():
            its = [int(i) for i in by_key[key]]
            ax.plot(its, [by_key[key][str(i)]["mse"] for i in its], "o-", label=f"{model}, N={n}")
    ax.axhline(cfg.threshold, color="k", lw=0.8, ls="--", label="threshold")
    ax.set_xlabel("applications of F")
    ax.set_ylabel("mean recall MSE")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return fig


# Table 4.1 (two GTX 1080 Ti) and the thesis's claim for width 2048, for `pcn report`
PAPER_NUMBERS = (
    *(
        PaperNumber(
            "thesis Table 4.1",
            f"ms for one application of F, width {width} (GPU; pcn: this CPU)",
            ms,
            f"ms_per_retrieval.{width}.1",
        )
        for width, ms in ((256, 20), (512, 40), (1024, 90), (2048, 150))
    ),
    PaperNumber(
        "thesis section 4.3",
        "width 2048, 500 Tiny ImageNet images from noisy keys (fraction, >= 0.99)",
        0.99,
        "retrieved.pc-L2-n2048.tiny-imagenet-val.500.noisy_var0_2.fraction",
    ),
)


@experiment(
    "memory-hierarchical",
    "Generative PC memories clean noisy keys by iterating F, against autoencoders "
    "(thesis Figs. 4.5-4.9)",
    paper=PAPER_NUMBERS,
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    x_all, shape = load_images(ctx, cfg, max(cfg.images))
    dataset = cfg.dataset
    results = Results()
    by_iteration: dict[str, dict[str, dict[str, dict[str, dict[str, float]]]]] = {}
    storage: dict[str, dict[str, Any]] = {}
    ae_record: dict[str, dict[str, Any]] = {}
    ms: dict[str, dict[str, float]] = {}
    strict: dict[str, dict[str, float]] = {}
    examples: dict[str, np.ndarray] = {}
    for width in cfg.widths:
        pc = model_name("pc", cfg.layers, width)
        ae = model_name("autoencoder", cfg.autoencoder_layers, width)
        for n in cfg.images:
            x = x_all[:n]
            memory = pc_memory(x.shape[1], cfg.layers, width, cfg, ctx.seed)
            memory, storage.setdefault(pc, {})[str(n)] = store(ctx, memory, x, cfg, f"{pc}-N{n}")
            candidates, loss = autoencoders(
                ctx, x, cfg.autoencoder_layers, width, cfg, f"{ae}-N{n}", ctx.seed
            )
            ae_record.setdefault(ae, {})[str(n)] = {"final_loss": loss, "tuned": {}}
            for i, variance in enumerate(cfg.variances):
                name = _key_name(variance)
                key = keys.noisy(x, variance, seed=ctx.seed + 1 + i)
                path = memory.trajectory(key, max(cfg.iterations))
                record = by_iteration.setdefault(pc, {}).setdefault(str(n), {}).setdefault(name, {})
                for it in cfg.iterations:
                    s = scores.score(path[it - 1], x, threshold=cfg.threshold)
                    record[str(it)] = {"count": s.retrieved, "mse": s.mse}
                results.add(pc, dataset, x, name, path[-1], cfg.threshold)
                chosen, recall = best(candidates, key, hits(x, cfg.threshold))
                results.add(ae, dataset, x, name, recall.images, cfg.threshold)
                ae_record[ae][str(n)]["tuned"][name] = chosen
                if width == cfg.widths[-1] and n == cfg.images[0] and i == 0:
                    k = min(8, n)
                    examples = {"original": x[:k], "noisy key": key.image[:k]}
                    for it in cfg.iterations:
                        examples[f"PC, F x{it}"] = path[it - 1][:k]
                    examples[f"autoencoder ({chosen})"] = recall.images[:k]
            # random keys belong to no memory: the share answered with a stored image
            random = keys.random_keys(n, x.shape[1], seed=ctx.seed + 99)
            answers = {
                pc: memory.trajectory(random, max(cfg.iterations))[-1],
                ae: candidates[ae_record[ae][str(n)]["tuned"][_key_name(cfg.variances[0])]]
                .recall(random)
                .images,
            }
            for model, answer in answers.items():
                strict.setdefault(model, {})[str(n)] = scores.strict_retrievals(
                    answer, x, threshold=cfg.threshold
                )
            if n == cfg.images[0]:
                key = keys.noisy(x, cfg.variances[0], seed=ctx.seed + 1)
                for it in cfg.timing_iterations:
                    _, per_key = timed(_with_iterations(memory, it), key)
                    ms.setdefault(str(width), {})[str(it)] = per_key
    save_figure(_bars(results, cfg, dataset), ctx.out / "retrieved.png")
    save_figure(_iteration_curves(by_iteration, cfg), ctx.out / "iterations.png")
    save_figure(image_grid(examples, shape), ctx.out / "examples.png")
    out = {
        "config": dataclasses.asdict(cfg),
        **results.tree,
        "by_iteration": by_iteration,
        "ms_per_retrieval": ms,
        "strict": strict,
        "storage": storage,
        "autoencoder": ae_record,
        "image_shape": list(shape),
    }
    return Report(out, _markdown(cfg, out, dataset, shape))


def _markdown(cfg: HierarchicalConfig, r: dict[str, Any], dataset: str, shape: tuple) -> str:
    names = [_key_name(v) for v in cfg.variances]
    rows = []
    for width in cfg.widths:
        pc = model_name("pc", cfg.layers, width)
        ae = model_name("autoencoder", cfg.autoencoder_layers, width)
        for n in cfg.images:
            st = r["storage"][pc][str(n)]
            cells: list[Any] = [width, n, f"{st['steps']} ({st['energy']:.2g})"]
            for k in names:
                its = r["by_iteration"][pc][str(n)][k]
                cells.append(" / ".join(str(its[str(i)]["count"]) for i in cfg.iterations))
                cells.append(
                    f"{r['retrieved'][ae][dataset][str(n)][k]['count']} "
                    f"({r['autoencoder'][ae][str(n)]['tuned'][k]})"
                )
            cells.append(f"{r['autoencoder'][ae][str(n)]['final_loss']:.3g}")
            cells.append(f"{r['strict'][pc][str(n)]:.2f} / {r['strict'][ae][str(n)]:.2f}")
            rows.append(cells)
    its = " / ".join(map(str, cfg.iterations))
    header = ["width", "N", "storage steps (energy)"]
    for v in cfg.variances:
        header += [f"PC, var {v:g}, F x {its}", f"AE, var {v:g}"]
    header += ["AE final loss", "random keys: strict, PC / AE"]
    timing = markdown_table(
        ["width", *[f"F x {i} (ms / key)" for i in cfg.timing_iterations]],
        [[w, *[f"{r['ms_per_retrieval'][str(w)][str(i)]:.3g}" for i in cfg.timing_iterations]]
         for w in cfg.widths],
    )  # fmt: skip
    side = "x".join(map(str, shape))
    return f"""# Generative PC memories clean noisy keys (thesis 4.3, Figs. 4.5-4.9, Table 4.1)

Generative PCNs (a top code of {cfg.top}, {cfg.layers} ReLU layers of width n, a linear
sensory layer) store N {dataset} images ({side}) by Algorithm 6 (every image keeps its
own hidden values; each step one Adam update of the values, rate {cfg.store_value_rate},
and of the weights, rate {cfg.store_weight_rate}; until the mean energy per image
changes by less than {cfg.store_tol} or {cfg.store_steps} steps). A key is the image plus
Gaussian noise of variance {", ".join(f"{v:g}" for v in cfg.variances)}. F (Fig. 4.4):
the sensory values fixed to the current image, the rest relaxed from the forward pass
of a zero top code (Adam {cfg.relax_rate}, |dE| < {cfg.relax_tol} or {cfg.relax_steps}
steps), the image replaced by the sensory prediction. Retrieved: MSE below
{cfg.threshold}, counted after {its} applications of F (images of N). "strict": the
share of N random keys (uniform noise) that come back within {cfg.threshold} of a stored
image (PC after {max(cfg.iterations)} applications of F; AE as tuned for the first noise).

Autoencoders (AE): {cfg.autoencoder_layers} hidden ReLU layers of width n, sigmoid
output, Adam {cfg.autoencoder_rate} on shuffled batches of {cfg.autoencoder_batch} for
{cfg.autoencoder_epochs} epochs,
iterated {", ".join(map(str, cfg.autoencoder_iterations))} times as a memory (the count
that retrieves most on these very keys is kept, in brackets).

{markdown_table(header, rows)}

![retrieved](retrieved.png)

Mean recall error after each application of F (variance {cfg.variances[0]:g}):

![iterations](iterations.png)

![examples](examples.png)

Retrieval time per key (CPU, 2 cores, the {cfg.images[0]} keys of the smallest N in one
batch; Table 4.1, two GTX 1080 Ti: 20 / 40 / 90 / 150 ms for one iteration at widths
256 / 512 / 1024 / 2048):

{timing}

F relaxes on an exact reduction of the clamped sensory layer (`pcn.associative.generative`:
the energy taken to the width of the layer above by a QR factorisation), which is what
makes these times a fraction of a relaxation over all {int(np.prod(shape))} pixels.

Thesis (Figs. 4.5-4.7, trained to convergence on GPUs): width 256 stores 250 images of
CIFAR-10 and Tiny ImageNet, width 2048 every set tried (up to 1500), autoencoders under
width 1024 retrieve nothing on Tiny ImageNet. Larger grids run with
`--set widths=256,512,1024,2048 --set images=100,250,500,1000,1500`.
"""
