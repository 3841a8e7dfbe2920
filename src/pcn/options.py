"""Typed options of the relaxation engine: when relaxation stops, and the value optimiser.

- `FixedSteps(T)`: exactly T steps (one `lax.scan`, with an energy trace). An int given
  where a stop is expected means `FixedSteps(int)`.
- `Tolerance(tol, max_steps)`: each example moves until its energy changes by less than
  `tol` in one step, at most `max_steps` steps (one bounded `lax.while_loop`); the result
  says, per example, how many steps it took and whether it converged (Diffrax's pattern:
  non-convergence is a status, not a hang).
- `SGD(gamma, momentum=0)`: plain gradient descent on the values,
  `x <- x - gamma dE/dx` (thesis Eq. 2.4), optionally heavy-ball. Any optax
  transformation can be used instead; plain SGD lets the engine pick exact shortcuts.
"""

from __future__ import annotations

import equinox as eqx
import optax

from ._validation import check_at_least, check_positive


class FixedSteps(eqx.Module):
    """Relax for exactly `steps` steps (T >= 1).

    `unroll` lays the T steps out one after another in the compiled program instead of
    a loop (compile time grows with T). For convolutions on XLA's CPU backend: an IL step
    of the thesis's CNN (T = 10) ran 1.6x faster unrolled, one of a five-convolution CNN
    (T = 6) 1.2-1.4x over two runs (`benchmarks/unrolled_relaxation.py`)."""

    steps: int = eqx.field(static=True)
    unroll: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        check_at_least("steps", self.steps, 1, hint="Relaxation needs at least one step (T >= 1).")


class Tolerance(eqx.Module):
    """Relax each example until its energy changes by less than `tol` in a step (it then
    stops moving), for at most `max_steps` steps."""

    tol: float = eqx.field(static=True, default=1e-6)
    max_steps: int = eqx.field(static=True, default=1000)

    def __check_init__(self) -> None:
        check_at_least("max_steps", self.max_steps, 1, hint="Relaxation needs at least one step.")
        if not self.tol >= 0:
            raise ValueError(f"`tol` must be >= 0, got {self.tol!r}; e.g. `Tolerance(tol=1e-6)`.")


Stop = FixedSteps | Tolerance


class SGD(eqx.Module):
    """Gradient descent on the values with step `gamma` (per example: the energy is
    summed over the batch) and heavy-ball `momentum` in [0, 1) (0: thesis Eq. 2.4)."""

    gamma: float = eqx.field(static=True)
    momentum: float = eqx.field(static=True, default=0.0)

    def __check_init__(self) -> None:
        check_positive("gamma", self.gamma, hint="It is the step size of inference on the values.")
        if not 0 <= self.momentum < 1:
            raise ValueError(
                f"`momentum` must be in [0, 1), got {self.momentum!r}; 0 is plain SGD (Eq. 2.4)."
            )

    def transform(self) -> optax.GradientTransformation:
        """The same optimiser as an optax transformation."""
        return optax.sgd(self.gamma, momentum=self.momentum or None)


ValueOptimizer = SGD | optax.GradientTransformation


def as_stop(stop: int | Stop) -> Stop:
    """`stop` as a typed stop: an int T means `FixedSteps(T)`."""
    if isinstance(stop, FixedSteps | Tolerance):
        return stop
    if isinstance(stop, int) and not isinstance(stop, bool):
        return FixedSteps(stop)
    raise TypeError(
        f"`stop` must be a number of steps (int), `pcn.FixedSteps(T)` or "
        f"`pcn.Tolerance(tol, max_steps)`, got {stop!r}."
    )


def value_optimizer_of(
    gamma: float | None, value_optimizer: ValueOptimizer | None, *, default_gamma: float | None
) -> ValueOptimizer:
    """The value optimiser from the shorthand `gamma` (plain SGD) or `value_optimizer`;
    with neither, `SGD(default_gamma)` (an error if there is no default)."""
    if gamma is not None and value_optimizer is not None:
        raise ValueError(
            "Pass one of `gamma` (plain SGD on the values) and `value_optimizer`, not both."
        )
    if value_optimizer is not None:
        if not isinstance(value_optimizer, SGD | optax.GradientTransformation):
            raise TypeError(
                "`value_optimizer` must be `pcn.SGD(gamma)` or an optax transformation, got "
                f"{type(value_optimizer).__name__}."
            )
        return value_optimizer
    if gamma is None:
        if default_gamma is None:
            raise ValueError("Pass `gamma` (the SGD step on the values) or `value_optimizer`.")
        gamma = default_gamma
    check_positive("gamma", gamma, hint="It is the step size of inference on the values.")
    return SGD(float(gamma))
