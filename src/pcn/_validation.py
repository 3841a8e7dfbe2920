"""Checks of user settings that raise one clear sentence naming the setting and the fix."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np


def check_positive(setting: str, value: float, *, hint: str = "") -> None:
    """Raise `ValueError` unless `value > 0` (learning rates, step sizes, precisions), and
    `TypeError` unless it is a real number (not a string, a bool or a container)."""
    real = isinstance(value, numbers.Real) or (
        getattr(value, "ndim", None) == 0
        and np.issubdtype(getattr(value, "dtype", object), np.number)
    )
    if isinstance(value, bool | str | bytes) or not real:
        raise TypeError(
            f"`{setting}` must be a positive real number, got {value!r} "
            f"({type(value).__name__}). {hint}".strip()
        )
    if not value > 0:
        raise ValueError(f"`{setting}` must be > 0, got {value!r}. {hint}".strip())


def check_at_least(setting: str, value: int, minimum: int, *, hint: str = "") -> None:
    """Raise `ValueError` unless `value` is an int `>= minimum` (step counts, sizes)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"`{setting}` must be an integer >= {minimum}, got {value!r}. {hint}".strip()
        )


def check_choice(setting: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise `ValueError` unless `value` is one of `choices`, listing the valid ones."""
    choices = list(choices)
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Unknown `{setting}` {value!r}; valid values are: {valid}.")
