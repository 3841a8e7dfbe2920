"""`memory-partial`: completing images from a fraction of their pixels with a
hierarchical generative PC memory (thesis sections 4.4-4.5, Algorithm 7, Fig. 4.16).

Generative PCNs (a top code, two ReLU layers of width n, the sensory layer) store N
Tiny ImageNet images by Algorithm 6; each is then shown with only 1/2, 1/4, 1/8 or 1/16
of its pixel positions (random positions, all three channels of a position together),
the known pixels clamped and everything else relaxed (Algorithm 7). An image counts as
retrieved when its MSE to the original is below the threshold (0.001).

Results: `retrieved.pc-L2-n<width>.<dataset>.<N>.partial_<k>` (count and fraction),
`mse...`, `ms_per_retrieval.pc-L2-n<width>.<N>.partial_<k>`, `storage...`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from pcn.associative import keys, scores

from .memory_common import (
    QUICK_STORAGE,
    STORAGE,
    MemorySettings,
    Results,
    check_fractions,
    check_grid,
    fraction_name,
    load_images,
    model_name,
    pc_memory,
    store,
    timed,
)
from .output import markdown_table, save_figure
from .plots import image_grid
from .registry import Report, RunContext, choose_config, experiment


@dataclasses.dataclass(frozen=True)
class PartialConfig(MemorySettings):
    widths: tuple[int, ...]
    images: tuple[int, ...]  # N, each a grid point (nested: the first N of one shuffle)
    layers: int  # ReLU layers of width n under the top code
    fractions: tuple[float, ...]
    threshold: float

    def __post_init__(self) -> None:
        super().__post_init__()
        check_grid("widths", self.widths)
        check_grid("images", self.images)
        check_fractions(self.fractions)


FULL = PartialConfig(
    **STORAGE,
    widths=(512,),
    images=(50, 100, 250),
    layers=2,
    fractions=(1 / 2, 1 / 4, 1 / 8, 1 / 16),
    threshold=scores.PARTIAL_THRESHOLD,
)
QUICK = dataclasses.replace(
    FULL,
    **QUICK_STORAGE,
    widths=(128,),
    images=(10, 20),
    fractions=(1 / 2, 1 / 8),
)


def _curves(results: Results, cfg: PartialConfig, dataset: str) -> Figure:
    fig, axes = plt.subplots(1, len(cfg.widths), figsize=(4.2 * len(cfg.widths), 3.2),
                             squeeze=False)  # fmt: skip
    shares = [1 / f for f in cfg.fractions]
    for ax, width in zip(axes[0], cfg.widths, strict=True):
        model = model_name("pc", cfg.layers, width)
        for n in cfg.images:
            fractions = [
                results.fraction(model, dataset, n, fraction_name(f)) for f in cfg.fractions
            ]
            ax.plot(shares, fractions, "o-", label=f"N = {n}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(shares, [f"1/{s:.0f}" for s in shares])
        ax.set_xlabel("share of the pixels given")
        ax.set_ylabel("fraction retrieved")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"width {width}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


@experiment(
    "memory-partial",
    "Generative PC memories complete images from 1/2 to 1/16 of their pixels (thesis Fig. 4.16)",
    figure="thesis Fig. 4.16 plots the retrieved fractions (no table of numbers)",
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    x_all, shape = load_images(ctx, cfg, max(cfg.images))
    dataset = cfg.dataset
    results = Results()
    storage: dict[str, dict[str, Any]] = {}
    ms: dict[str, dict[str, dict[str, float]]] = {}
    panels: dict[str, np.ndarray] = {}
    for width in cfg.widths:
        model = model_name("pc", cfg.layers, width)
        for n in cfg.images:
            x = x_all[:n]
            memory = pc_memory(x.shape[1], cfg.layers, width, cfg, ctx.seed)
            memory, record = store(ctx, memory, x, cfg, f"{model}-N{n}")
            storage.setdefault(model, {})[str(n)] = record
            for i, f in enumerate(cfg.fractions):
                key = keys.partial(x, f, seed=ctx.seed + 1 + i, image_shape=shape)
                recall, per_key = timed(memory, key)
                results.add(model, dataset, x, fraction_name(f), recall.images, cfg.threshold)
                ms.setdefault(model, {}).setdefault(str(n), {})[fraction_name(f)] = per_key
            if width == cfg.widths[-1] and n == cfg.images[0]:
                # the Fig. 4.5 panels: the top rows given, the rest completed
                k = min(8, n)
                for f in cfg.fractions[:2]:
                    top = keys.partial(x[:k], f, image_shape=shape, layout="top")
                    panels[f"top {f:g} key"] = top.image
                    panels[f"completed ({f:g})"] = memory.recall(top).images
                panels = {"original": x[:k], **panels}
    save_figure(_curves(results, cfg, dataset), ctx.out / "retrieved.png")
    save_figure(image_grid(panels, shape), ctx.out / "examples.png")
    out = {
        "config": dataclasses.asdict(cfg),
        **results.tree,
        "ms_per_retrieval": ms,
        "storage": storage,
        "image_shape": list(shape),
    }
    return Report(out, _markdown(cfg, out, dataset, shape))


def _markdown(cfg: PartialConfig, r: dict[str, Any], dataset: str, shape: tuple) -> str:
    names = [fraction_name(f) for f in cfg.fractions]
    rows = []
    for width in cfg.widths:
        model = model_name("pc", cfg.layers, width)
        for n in cfg.images:
            st = r["storage"][model][str(n)]
            cells: list[Any] = [width, n, f"{st['steps']} ({st['energy']:.2g})"]
            for k in names:
                cells.append(
                    f"{r['retrieved'][model][dataset][str(n)][k]['count']} "
                    f"({r['mse'][model][dataset][str(n)][k]:.2g})"
                )
            rows.append(cells)
    table = markdown_table(
        ["width", "N", "storage steps (energy)", *[f"1/{round(1 / f)}" for f in cfg.fractions]],
        rows,
    )
    timing = "; ".join(
        f"{m}, N = {n}: " + ", ".join(f"{k} {v:.3g}" for k, v in per.items())
        for m, by_n in r["ms_per_retrieval"].items()
        for n, per in by_n.items()
    )
    side = "x".join(map(str, shape))
    return f"""# Completing images from part of their pixels (thesis sections 4.4-4.5, Fig. 4.16)

Generative PC memories (a top code of {cfg.top}, {cfg.layers} ReLU layers of width n, a
linear sensory layer) store N {dataset} images ({side}) by Algorithm 6: the images
clamped, every image keeping its own hidden values, each step one Adam update of the
values (rate {cfg.store_value_rate}) and one of the weights (rate
{cfg.store_weight_rate}), until the mean energy per image changes by less than
{cfg.store_tol} in a step or {cfg.store_steps} steps. Keys give a random
{", ".join(f"1/{round(1 / f)}" for f in cfg.fractions)} of the pixel positions (all
channels of a position); Algorithm 7 clamps them and relaxes every other value from the
forward pass of a zero top code (Adam {cfg.relax_rate}, until |dE| < {cfg.relax_tol} per
image or {cfg.relax_steps} steps). Retrieved: MSE below {cfg.threshold}. Each cell:
images retrieved (mean recall MSE).

{table}

![retrieved](retrieved.png)

The Fig. 4.5-style panels (the top rows given, the rest completed; the narrowest N):

![examples](examples.png)

Retrieval time per key (ms, CPU, all N keys in one batch): {timing}.

Thesis (Fig. 4.16, widths 1024 and 2048, N = 50-500, trained to convergence on GPUs):
about half of 50 images from 1/8 of the pixels, none of 500 below 1/2. The top code
here is narrow ({cfg.top}); widths and N of the thesis run with
`--set widths=1024,2048 --set images=50,100,250,500`.
"""
