"""Atomic experiment output: every file goes through `pcn.files.atomic_write` (temporary
name, fsync, rename; readable by others as the umask allows), so a crash never leaves a
half-written `results.json`, report or figure."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pcn.files import atomic_write  # noqa: E402


def to_jsonable(value: Any) -> Any:
    """`value` with arrays as lists and non-finite floats as None (JSON has no nan)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / jax arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no nan/inf; a missing number is honest
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write `data` (numpy values allowed) as indented JSON."""
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=False)
    atomic_write(path, (text + "\n").encode())


def write_text(path: Path, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, text.encode())


def save_figure(fig: Figure, path: Path) -> None:
    """Atomically save a matplotlib figure as PNG and close it."""
    try:
        atomic_write(path, lambda f: fig.savefig(f, dpi=110, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A small Markdown table; floats shown with 4 significant digits."""

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
