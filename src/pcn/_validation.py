"""Checks of user settings that raise one clear sentence naming the setting and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_positive(setting: str, value: float, *, hint: str = "") -> None:
    """Raise `ValueError` unless `value > 0` (learning rates, step sizes, precisions)."""
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
