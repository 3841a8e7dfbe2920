"""`memory-hetero`: hetero-associative generative PC memories recall a caption from its
image and an image from its caption (thesis section 4.7, Figs. 4.20-4.21).

No captioned-image set is reachable here, so the pairs are a stand-in built from real
text (`pcn.associative.captions.tiny_imagenet_pairs`): the first validation image of each
of the first N Tiny ImageNet classes, captioned with its class's words.txt description
(class-level text, not a sentence about the image). Each pair is stored as one vector
`[image | caption]` (caption words as id / V, zero-padded) by Algorithm 6 in a generative
PCN of L ReLU layers; either part, given as a partial key, recalls the other by
Algorithm 7. A caption counts as recovered only if every entry decodes to the right
word id; an image when its MSE is below the threshold. An autoencoder of L hidden
layers, iterated with the known part put back, stands beside it.

Results: `retrieved.<pc|autoencoder>-L<depth>-n<width>.tiny-imagenet-pairs.<N>.
<caption_from_image|image_from_caption>` (count and fraction), `mse...` (of the image
part), `storage`, `autoencoder`, `vocabulary`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from pcn.associative import captions, generative, hetero, scores
from pcn.associative.keys import Key

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
    model_name,
    pc_memory,
    pool,
    store,
)
from .output import markdown_table, save_figure
from .plots import image_grid
from .registry import Report, RunContext, choose_config, experiment

DATASET = "tiny-imagenet-pairs"
DIRECTIONS = ("caption_from_image", "image_from_caption")


@dataclasses.dataclass(frozen=True)
class HeteroConfig(MemorySettings, AutoencoderSettings):
    depths: tuple[int, ...]  # L: ReLU layers of width n (PC, under the top code; AE hidden)
    widths: tuple[int, ...]
    pairs: tuple[int, ...]  # N, each a grid point (nested: the first N classes)
    threshold: float  # MSE below which an image recalled from its caption counts
    completion: str  # "relax" (Algorithm 7) or "marginal" (known part's energy only)

    def __post_init__(self) -> None:
        MemorySettings.__post_init__(self)
        AutoencoderSettings.__post_init__(self)
        if self.completion not in generative.COMPLETIONS:
            raise ValueError(
                f"`completion` must be one of {', '.join(generative.COMPLETIONS)}, got "
                f"{self.completion!r}."
            )
        if self.dataset != "tiny-imagenet-val":
            raise ValueError(
                f"`dataset` must be 'tiny-imagenet-val' (the captioned stand-in), got "
                f"{self.dataset!r}."
            )
        for name in ("depths", "widths", "pairs"):
            check_grid(name, getattr(self, name))
        if max(self.pairs) > 200:
            raise ValueError(
                f"`pairs` may not exceed 200 (one pair per Tiny ImageNet class), got {self.pairs}."
            )


# A caption of ~10 entries pins a top code of 4 (a wider one leaves a manifold of codes
# that fit it, and the image drawn from one of them is not the stored one), and the
# relaxation from a caption needs many fast steps (see the report).
RECALL_FROM_PARTS: dict[str, Any] = {"top": 4, "relax_steps": 5000, "relax_rate": 0.1}
FULL = HeteroConfig(
    **{**STORAGE, "side": 32, **RECALL_FROM_PARTS},  # 32x32, as the thesis's images
    **AUTOENCODER,
    depths=(1, 3, 5, 7, 9, 11),
    widths=(512,),
    pairs=(25, 50, 100),
    threshold=scores.PARTIAL_THRESHOLD,
    completion="marginal",
)
QUICK = dataclasses.replace(
    FULL,
    **{**QUICK_STORAGE, "side": 8, "top": 4},
    **QUICK_AUTOENCODER,
    depths=(1, 2),
    widths=(128,),
    pairs=(10, 20),
)


def _pairs(ctx: RunContext, cfg: HeteroConfig) -> tuple[captions.CaptionPairs, tuple]:
    """The stand-in pairs, images pooled to `side`; recorded in the run's identity."""
    raw = captions.tiny_imagenet_pairs(max(cfg.pairs), data_dir=ctx.data_dir)
    images, shape = pool(raw.images.astype(np.float32), (3, 64, 64), 64 // cfg.side)
    digest = hashlib.sha256(np.ascontiguousarray(images).data)
    digest.update("\n".join(raw.captions).encode())
    ctx.identity.setdefault("data_sha256", {})[DATASET] = digest.hexdigest()
    ctx.data_sources[DATASET] = f"{cfg.dataset} with its words.txt class descriptions"
    return raw._replace(images=images), shape


class _Scorer:
    """Scores a recall of joined vectors in one direction."""

    def __init__(self, vectors: np.ndarray, pixels: int, vocabulary, threshold: float):
        self.vectors, self.pixels, self.vocabulary = vectors, pixels, vocabulary
        self.threshold = threshold

    def counts(self, direction: str, recalled: np.ndarray) -> tuple[int, float]:
        """(recovered, image MSE) of a recall."""
        image, caption = hetero.split(recalled, self.pixels)
        original, words = hetero.split(self.vectors, self.pixels)
        mse = scores.recall_mse(image, original)
        if direction == "caption_from_image":
            hit = captions.caption_recovered(caption, words, self.vocabulary)
        else:
            hit = mse < self.threshold
        return int(np.sum(hit)), float(np.mean(mse))

    def rank(self, direction: str) -> Callable[[np.ndarray], tuple[int, float]]:
        """A recall's rank for tuning a baseline: recovered, then the lower image MSE."""

        def rank(recalled: np.ndarray) -> tuple[int, float]:
            count, mse = self.counts(direction, recalled)
            return count, -mse

        return rank


def _keys(vectors: np.ndarray, pixels: int) -> dict[str, Key]:
    return {
        "caption_from_image": hetero.caption_keys(vectors, pixels),
        "image_from_caption": hetero.image_keys(vectors, pixels),
    }


def _figure(counts: dict, cfg: HeteroConfig) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, direction in zip(axes, DIRECTIONS, strict=True):
        for kind, style in (("pc", "o-"), ("autoencoder", "s--")):
            for n in cfg.pairs:
                best_of = [counts[kind][str(n)][str(depth)][direction] for depth in cfg.depths]
                ax.plot(cfg.depths, np.asarray(best_of) / n, style, label=f"{kind}, N = {n}")
        ax.set_xticks(cfg.depths)
        ax.set_xlabel("hidden layers L")
        ax.set_ylabel("fraction recovered")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(direction.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return fig


@experiment(
    "memory-hetero",
    "Hetero-associative PC memories: captions from images and images from captions "
    "(thesis Figs. 4.20-4.21)",
    figure=(
        "thesis Figs. 4.20-4.21 plot the retrievals; its text: only depths 9-11 retrieve "
        "more than half of 100 pairs, autoencoders never more than two images"
    ),
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    pairs, shape = _pairs(ctx, cfg)
    pixels = pairs.images.shape[1]
    vocabularies: dict[str, dict[str, int]] = {}
    results = Results()
    storage: dict[str, Any] = {}
    ae_record: dict[str, Any] = {}
    # best over widths for each depth (the thesis plots the best width of each depth)
    counts: dict[str, dict[str, dict[str, dict[str, int]]]] = {"pc": {}, "autoencoder": {}}
    examples: dict[str, np.ndarray] = {}
    for n in cfg.pairs:
        # the vocabulary of the N captions stored, as a memory of this set would build it
        # (a larger one packs the ids closer: the decoding tolerance 1 / (2V) shrinks)
        stored = captions.pair_captions(pairs.images[:n], pairs.captions[:n])
        vectors = hetero.join(stored.images, stored.vectors)
        vocabularies[str(n)] = {
            "size": stored.vocabulary.size,
            "caption_length": int(stored.vectors.shape[1]),
        }
        scorer = _Scorer(vectors, pixels, stored.vocabulary, cfg.threshold)
        key_set = _keys(vectors, pixels)
        for depth in cfg.depths:
            for width in cfg.widths:
                pc = model_name("pc", depth, width)
                ae = model_name("autoencoder", depth, width)
                memory = pc_memory(vectors.shape[1], depth, width, cfg, ctx.seed,
                                   cfg.completion)  # type: ignore[arg-type]  # fmt: skip
                memory, storage.setdefault(pc, {})[str(n)] = store(
                    ctx, memory, vectors, cfg, f"{pc}-N{n}"
                )
                candidates, loss = autoencoders(ctx, vectors, depth, width, cfg, f"{ae}-N{n}",
                                                ctx.seed)  # fmt: skip
                ae_record.setdefault(ae, {})[str(n)] = {"final_loss": loss, "tuned": {}}
                for direction, key in key_set.items():
                    recalled = memory.recall(key).images
                    chosen, ae_recall = best(candidates, key, scorer.rank(direction))
                    ae_record[ae][str(n)]["tuned"][direction] = chosen
                    answers = (("pc", pc, recalled), ("autoencoder", ae, ae_recall.images))
                    for kind, model, out in answers:
                        count, mse = scorer.counts(direction, out)
                        _record(results, model, n, direction, count, mse)
                        by_depth = counts[kind].setdefault(str(n), {}).setdefault(str(depth), {})
                        by_depth[direction] = max(by_depth.get(direction, 0), count)
                    if n == cfg.pairs[0] and depth == cfg.depths[-1] and width == cfg.widths[-1]:
                        if direction == "image_from_caption":
                            k = min(8, n)
                            examples = {
                                "original": pairs.images[:k],
                                f"PC L = {depth}, from caption": recalled[:k, :pixels],
                                f"AE L = {depth}, from caption": ae_recall.images[:k, :pixels],
                            }
    save_figure(_figure(counts, cfg), ctx.out / "recovered.png")
    save_figure(image_grid(examples, shape), ctx.out / "examples.png")
    out = {
        "config": dataclasses.asdict(cfg),
        **results.tree,
        "best_width": counts,
        "storage": storage,
        "autoencoder": ae_record,
        "vocabulary": vocabularies,
        "captions": list(pairs.captions),
        "image_shape": list(shape),
    }
    return Report(out, _markdown(cfg, out))


def _record(results: Results, model: str, n: int, direction: str, count: int, mse: float):
    for field, value in (
        ("retrieved", {"count": count, "fraction": count / n}),
        ("mse", mse),
    ):
        results.tree[field].setdefault(model, {}).setdefault(DATASET, {}).setdefault(str(n), {})[
            direction
        ] = value


_COMPLETION_TEXT = {
    "relax": "by Algorithm 7 (every value but the given part relaxed)",
    "marginal": (
        "by the marginal completion (the hidden values relaxed on the given part's "
        "energy alone, the other part read from their prediction: Algorithm 7's fixed "
        "points, reached where Algorithm 7 as written stalls; with it and a top code of "
        "64 no image was recovered from its caption)"
    ),
}


def _markdown(cfg: HeteroConfig, r: dict[str, Any]) -> str:
    rows = []
    for depth in cfg.depths:
        for width in cfg.widths:
            cells: list[Any] = [depth, width]
            for kind in ("pc", "autoencoder"):
                model = model_name(kind, depth, width)
                for direction in DIRECTIONS:
                    cells.append(" / ".join(
                        str(r["retrieved"][model][DATASET][str(n)][direction]["count"])
                        for n in cfg.pairs
                    ))  # fmt: skip
            rows.append(cells)
    ns = " / ".join(map(str, cfg.pairs))
    header = ["L", "width", f"PC captions ({ns})", f"PC images ({ns})",
              f"AE captions ({ns})", f"AE images ({ns})"]  # fmt: skip
    v = r["vocabulary"]
    sizes = ", ".join(f"N = {n}: V = {s['size']}, L = {s['caption_length']}" for n, s in v.items())
    side = "x".join(map(str, r["image_shape"]))
    return f"""# Hetero-associative memories (thesis section 4.7, Figs. 4.20-4.21)

**Stand-in data.** No captioned-image set (Flickr30k) is reachable here. Each pair is
the first validation image ({side}) of one of the first N Tiny ImageNet classes with
that class's words.txt description as its caption: class-level text, not a sentence
about the image. Each set of N pairs has the vocabulary of its own captions, each word
stored as id / V and the caption zero-padded to the longest, L entries ({sizes}).
`pcn.data.read_flickr` loads the thesis's own data for users
who have it.

PC: a top code of {cfg.top}, L ReLU layers of width n, a linear sensory layer of
[image | caption]; stored by Algorithm 6 (Adam {cfg.store_value_rate} on each pair's
hidden values, Adam {cfg.store_weight_rate} on the weights, until the mean energy per
pair changes by less than {cfg.store_tol} or {cfg.store_steps} steps); one part given,
the other recalled {_COMPLETION_TEXT[cfg.completion]} (Adam {cfg.relax_rate},
|dE| < {cfg.relax_tol} or {cfg.relax_steps} steps). AE: L hidden ReLU layers of
width n, sigmoid output, Adam {cfg.autoencoder_rate} on batches of {cfg.autoencoder_batch} for
{cfg.autoencoder_epochs} epochs, iterated {", ".join(map(str, cfg.autoencoder_iterations))}
times with the known part put back (the count that recovers most kept). A caption is
recovered when every entry decodes to its word id (tolerance 1 / (2V)); an image when
its MSE is below {cfg.threshold}. Each cell: recovered of N = {ns}.

{markdown_table(header, rows)}

![recovered](recovered.png)

Images recalled from their captions (the smallest N, the deepest memory):

![examples](examples.png)

Thesis (Fig. 4.20, Flickr30k, widths 512-2048, depths 1-11, on GPUs): only depths 9-11
recover more than half of 100 pairs; autoencoders never more than two images.
"""
