"""The suite's two recurring figures: a grid of small images and learning curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def image_grid(
    rows: Mapping[str, np.ndarray | Sequence[np.ndarray]],
    shape: tuple[int, ...],
    title: str | None = None,
    *,
    size: float = 0.85,
) -> Figure:
    """One row of images per entry of `rows` (labelled on the left), one image per
    column; each image is reshaped to `shape`, grey for (height, width) or (1, height,
    width), colour for (3, height, width) (channel-first, as `pcn.data` loads it), its
    levels clipped to [0, 1]. Rows may be of different lengths (short rows leave blanks)."""
    height, width = shape[-2:]
    colour = len(shape) == 3 and shape[0] == 3
    n = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(
        len(rows), n, figsize=(n * size, len(rows) * size + (0.3 if title else 0)), squeeze=False
    )
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            if c < len(images):
                if colour:
                    image = np.asarray(images[c]).reshape(3, height, width).transpose(1, 2, 0)
                    ax.imshow(np.clip(image, 0, 1))
                else:
                    image = np.clip(np.asarray(images[c]).reshape(height, width), 0, 1)
                    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def curves(
    lines: Mapping[str, Sequence[float] | np.ndarray],
    ylabel: str,
    title: str | None = None,
    *,
    x: Mapping[str, Sequence[float]] | None = None,
    first: int = 1,
    xlabel: str = "epoch",
    scale: float = 1.0,
    log: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """One line per entry of `lines` (a metric per epoch, labelled by method), times
    `scale` (100 for percentages); x is `x[label]` if given, else epochs counted from
    `first`. Draws into `ax` if given (a panel of a larger figure), else a new figure;
    returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, values in lines.items():
        values = scale * np.asarray(values, dtype=float)
        xs = np.asarray(x[label]) if x is not None else np.arange(first, first + len(values))
        ax.plot(xs, values, marker="o" if len(values) < 50 else None, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if x is None or xlabel == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize=8)
    figure = ax.get_figure(root=True)
    assert figure is not None  # an Axes made by plt.subplots or passed in belongs to one
    return figure
