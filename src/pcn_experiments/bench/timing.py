"""Timing helpers for benchmarks: medians of compiled calls, taken in turns."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def interleaved_medians(
    runners: dict[str, Callable[[int], Any]], *, warmup: int, steps: int
) -> dict[str, float]:
    """Median ms per call of each `runner(i)` (i = call index), timed in turns (one call
    of each per round) so that slow and fast phases of a noisy machine hit every runner
    alike. Each result is blocked on before the clock stops."""
    for run_one in runners.values():
        for i in range(warmup):
            jax.block_until_ready(run_one(i))
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(warmup, warmup + steps):
        for name, run_one in runners.items():
            start = time.perf_counter()
            jax.block_until_ready(run_one(i))
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}
