"""The concept pages' diagrams, drawn with matplotlib when the site is built (so they
are never out of step with the text that describes them)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def pc_graph() -> bytes:
    """An MLP as a PC graph: value nodes, the predictions edges send, the errors."""
    fig, ax = plt.subplots(figsize=(8, 2.6))
    names = ["x (clamped)", "h1", "h2", "y (clamped in training)"]
    xs = [0.5, 3.0, 5.5, 8.0]
    for i, (name, x) in enumerate(zip(names, xs, strict=True)):
        clamped = i in (0, 3)
        ax.add_patch(Circle((x, 1.0), 0.45, color="#9e9e9e" if clamped else "#5c6bc0"))
        ax.text(x, 1.0, name.split()[0], ha="center", va="center", color="white", fontsize=13)
        ax.text(x, 0.3, name, ha="center", va="top", fontsize=9)
        if i:
            ax.add_patch(
                FancyArrowPatch(
                    (xs[i - 1] + 0.5, 1.0),
                    (x - 0.5, 1.0),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    color="#333333",
                )  # fmt: skip
            )
            ax.text(
                (xs[i - 1] + x) / 2, 1.25, rf"$\mu_{i} = f(W_{i}\, x_{i - 1})$",
                ha="center", fontsize=10,
            )  # fmt: skip
            ax.text(
                x, 1.75, rf"$\varepsilon_{i} = x_{i} - \mu_{i}$", ha="center",
                fontsize=10, color="#c62828",
            )  # fmt: skip
    ax.text(
        4.25, 2.35, r"$E = \sum_l \frac{1}{2}\Vert\varepsilon_l\Vert^2$: relaxation moves the "
        r"free values (blue) down $\partial E/\partial x$; learning moves $W$ down "
        r"$\partial E/\partial W$",
        ha="center", fontsize=9,
    )  # fmt: skip
    ax.set_xlim(-0.2, 8.7)
    ax.set_ylim(0.0, 2.6)
    ax.axis("off")
    return _png(fig)


def schedules() -> bytes:
    """When each algorithm updates values and weights over one batch's T steps."""
    layers, steps = 3, 6
    rows = {
        "IL": [(t, "value") for t in range(steps)] + [(steps, "weights")],
        "PPC, k = 2": [(t, "value") for t in range(steps)]
        + [(t, "weights") for t in range(2, steps + 1, 2)],
        "Z-IL (layer l, from the output)": [(t, "value") for t in range(layers)]
        + [(t + 1, f"layer {t + 1}") for t in range(layers)],
    }
    fig, ax = plt.subplots(figsize=(8, 2.4))
    for y, (name, events) in enumerate(reversed(list(rows.items()))):
        for t, kind in events:
            if kind == "value":
                ax.plot(t + 0.5, y, "o", color="#5c6bc0", markersize=9)
            else:
                ax.plot(t, y, "s", color="#c62828", markersize=10)
                if kind.startswith("layer"):
                    ax.text(t, y + 0.25, kind, ha="center", fontsize=7, color="#c62828")
        ax.text(-0.4, y, name, ha="right", va="center", fontsize=10)
    ax.plot([], [], "o", color="#5c6bc0", label="value step (all free nodes)")
    ax.plot([], [], "s", color="#c62828", label="weight update")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    ax.set_xticks(range(steps + 1), [f"t={t}" for t in range(steps + 1)])
    ax.set_yticks([])
    ax.set_xlim(-0.5, steps + 0.5)
    ax.set_ylim(-0.6, len(rows) - 0.3)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return _png(fig)
