"""Parallel predictive coding (thesis section 2.2.2, Algorithm 3), published as
incremental PC (iPC, Salvatori et al., ICLR 2024): the weights move during inference.

Over the T steps of a batch the errors at the current values x_t (t = 0, ..., T) are
computed once each and feed both updates: a value step (Eq. 2.4) for t < T, and a
weight step (Eq. 2.5, the energy averaged over the batch) for every t that is a multiple
of `weight_every` = k. So k = 1 is Algorithm 3 (value and weight steps in parallel at
every step, plus the weight step at the last values), and k = T is inference learning
(T value steps, then one weight update at the relaxed values): one algorithm with a
schedule, T / k weight updates per batch. An optax schedule on the weights counts weight
updates, T / k per batch.

The one computation of the errors per step is one forward pass through the energy with
its pullback applied for each update that needs it; the step is one `lax.scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._engine import _as_optax, _no_trace
from ._typed import apply_updates, total
from ._validation import check_at_least
from .algorithms import AbstractRelaxingAlgorithm, StepInfo
from .graph import PCGraph, Values
from .init import AbstractInitialiser, forward_init
from .options import ValueOptimizer, value_optimizer_of
from .typing import ValuesIn


class PPC(AbstractRelaxingAlgorithm):
    """Parallel / incremental PC: T value steps per batch, a weight step every
    `weight_every` of them (1: iPC; T: `IL`'s schedule, the same step)."""

    steps: int = eqx.field(static=True)
    weight_every: int = eqx.field(static=True)
    value_optimizer: ValueOptimizer = eqx.field(static=True)
    init: AbstractInitialiser = eqx.field(static=True)
    record_energy: bool = eqx.field(static=True)
    unroll: bool = eqx.field(static=True)

    def __init__(
        self,
        steps: int = 20,
        *,
        weight_every: int = 1,
        gamma: float | None = None,
        value_optimizer: ValueOptimizer | None = None,
        init: AbstractInitialiser = forward_init,
        record_energy: bool = True,
        unroll: bool = False,
    ):
        """Args:
        steps: value steps T per batch.
        weight_every: k, the value steps between weight steps; must divide T (1 is
            iPC, T is inference learning's single update at the relaxed values).
        gamma: SGD step on the values (per example); 0.1 when no `value_optimizer`.
        value_optimizer: `pcn.SGD(gamma, momentum=...)` or any optax transformation.
        init: initialiser of the values (forward initialisation by default).
        record_energy: report the energy before each value step.
        unroll: lay the T steps out one after another in the compiled program instead
            of a loop (compile time grows with T). For convolutions on XLA's CPU
            backend: a weight gradient of a convolution inside a loop takes a generic
            path there, about 35x slower, which made a PPC step of the thesis's CNN
            24x slower than unrolled (`benchmarks/conv_in_loop.py`).
        """
        check_at_least("steps", steps, 1)
        check_at_least("weight_every", weight_every, 1, hint="1 updates at every step (iPC).")
        if weight_every > steps or steps % weight_every:
            raise ValueError(
                f"`weight_every` (k = {weight_every}) must divide `steps` (T = {steps}) so that "
                f"the weights are updated after the last value step: use a divisor of {steps} "
                f"(1 for iPC, {steps} for inference learning's schedule)."
            )
        self.steps = steps
        self.weight_every = weight_every
        self.value_optimizer = value_optimizer_of(gamma, value_optimizer, default_gamma=0.1)
        self.init = init
        self.record_energy = record_energy
        self.unroll = unroll

    @property
    def rising_energy_hint(self) -> str:
        if self.weight_every == self.steps:
            return super().rising_energy_hint
        return (
            "Here the weights move between value steps too (`weight_every` < `steps`), so "
            "either update can raise it: lower the weights' learning rate, or the value "
            "step (`gamma`) for the stiffest node at least."
        )

    def _train_on(
        self,
        graph: PCGraph,
        opt_state: optax.OptState,
        batch: ValuesIn,
        values: dict[str, jax.Array],
        optimizer: optax.GradientTransformation,
        at_prediction: bool,
    ) -> tuple[PCGraph, optax.OptState, StepInfo, dict[str, jax.Array]]:
        """T value steps from `values`, a weight step every k of them."""
        clamped = frozenset(batch)
        frozen = {n: v for n, v in values.items() if n in clamped}
        free = {n: v for n, v in values.items() if n not in clamped}
        params, static = eqx.partition(graph, eqx.is_inexact_array)
        n = next(iter(values.values())).shape[0]
        value_opt = _as_optax(self.value_optimizer)

        def energies(p: Any, f: Values) -> Values:
            return eqx.combine(p, static)._node_energies({**frozen, **f})

        def value_step(f: Values, v_state: Any, grads: Values) -> tuple[Values, Any]:
            updates, v_state = value_opt.update(grads, v_state, f)
            return apply_updates(f, updates), v_state

        def weight_step(p: Any, w_state: Any, grads: Any) -> tuple[Any, Any]:
            updates, w_state = optimizer.update(grads, w_state, p)
            return eqx.apply_updates(p, updates), w_state

        def errors(p: Any, f: Values) -> tuple[Values, Callable]:
            """The energies at (p, f) and their pullback: one forward pass."""
            return jax.vjp(energies, p, f)

        def value_only(carry: tuple, _: Any) -> tuple[tuple, jax.Array | None]:
            p, w_state, f, v_state = carry
            per_node, pullback = errors(p, f)
            _, grads = pullback(_ones(per_node))
            f, v_state = value_step(f, v_state, grads)
            return (p, w_state, f, v_state), _recorded(per_node, n, self.record_energy)

        def joint(carry: tuple, last: bool) -> tuple[tuple, jax.Array | None, Values]:
            p, w_state, f, v_state = carry
            per_node, pullback = errors(p, f)
            weight_grads, _ = pullback(_mean_cotangent(per_node))
            if not last:
                _, grads = pullback(_ones(per_node))
                f, v_state = value_step(f, v_state, grads)
            p, w_state = weight_step(p, w_state, weight_grads)
            return (p, w_state, f, v_state), _recorded(per_node, n, self.record_energy), per_node

        def block(carry: tuple, _: Any) -> tuple[tuple, tuple]:
            carry, inner = jax.lax.scan(
                value_only, carry, length=self.weight_every - 1, unroll=self.unroll
            )
            carry, energy, _ = joint(carry, last=False)
            return carry, (inner, energy)

        k, blocks = self.weight_every, self.steps // self.weight_every
        carry = (params, opt_state, free, value_opt.init(free))
        carry, first = value_only(carry, None)  # t = 0: no weight step before any value step
        carry, (inner, joined) = jax.lax.scan(block, carry, length=blocks - 1, unroll=self.unroll)
        carry, last_inner = jax.lax.scan(value_only, carry, length=k - 1, unroll=self.unroll)
        carry, _, final = joint(carry, last=True)  # t = T: the weight step alone
        params, opt_state, free, _ = carry
        trace = _trace(first, inner, joined, last_inner, values, self.record_energy)
        per_node = {name: jnp.mean(e) for name, e in final.items()}
        loss = total(per_node.values())
        relaxed = {**frozen, **free}
        return eqx.combine(params, static), opt_state, StepInfo(loss, trace, per_node), relaxed


def _ones(per_node: Values) -> Values:
    """The cotangent of the energy summed over nodes and examples (the value gradient)."""
    return {name: jnp.ones_like(e) for name, e in per_node.items()}


def _mean_cotangent(per_node: Values) -> Values:
    """The cotangent of the energy averaged over the batch (the weight gradient)."""
    return jax.grad(lambda es: total(jnp.mean(e) for e in es.values()))(per_node)


def _recorded(per_node: Values, n: int, record: bool) -> jax.Array | None:
    if not record:
        return None
    return total(jnp.sum(e) for e in per_node.values()) / n


def _trace(
    first: jax.Array | None,
    inner: jax.Array | None,
    joined: jax.Array | None,
    last_inner: jax.Array | None,
    values: Mapping[str, jax.Array],
    record: bool,
) -> jax.Array:
    """The energies before the T value steps, in order."""
    if not record:
        return _no_trace(values)
    dtype = next(iter(values.values())).dtype
    assert first is not None and inner is not None and joined is not None
    assert last_inner is not None
    blocks = jnp.concatenate([inner, joined[:, None]], axis=1).reshape(-1)
    return jnp.concatenate([first[None], blocks, last_inner]).astype(dtype)
