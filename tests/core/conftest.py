"""Shared fixtures for the core tests: double precision on demand."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test in float64 (arrays must be created inside the test)."""
    with jax.enable_x64(True):
        yield
