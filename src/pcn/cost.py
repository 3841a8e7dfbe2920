"""Sequential matrix multiplications (SMMs): the inference cost of a training step,
measured from its program (Faster-PC paper, Eqs. 5-6; Song et al. 2020).

An SMM count assumes every independent product runs at once, so a step costs the
longest chain of matrix products in which each needs the result of the one before.
`sequential_matmuls` reads that chain off the jaxpr of any function: each
`dot_general` or convolution adds one to the depth of its inputs, every other
operation passes the deepest of its inputs on, nested programs are followed, and scans
are unrolled by their trip counts. `step_smm` applies it to one compiled training step
and leaves out the product that forms the weights' gradients (the error times the
presynaptic value), which ends the chain of every method and runs for all layers at
once; the paper's formulas leave it out too:

- BP on an L-layer MLP: L products forward, L - 1 back: SMM_BP = 2L - 1 (Eq. 5).
- PC with forward initialisation: L for the forward pass, then 2 per relaxation step
  (a prediction and the error sent back), the first step reusing the forward pass's
  predictions and the weight update needing the prediction at the relaxed values:
  2T + L, Eq. 6's bound 3L at T = L.
- PC from any other start: 2T + 1 (Eq. 5's 2T, and the prediction at the relaxed values
  the weights are updated at).

These hold with `IL(fuse=False)`. The fused relaxation (IL's default) relaxes the first
hidden layer in a closed form: measured, that changes nothing on MLPs of three or more
layers, and makes a one-hidden-layer MLP's count T + 2 (one product per step). A
relaxation stopped by a tolerance is a `while_loop` with no trip count to unroll and is
refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.extend import core as jax_core

MATMULS = frozenset({"dot_general", "conv_general_dilated"})
_NESTED = ("jaxpr", "call_jaxpr", "fun_jaxpr")  # parameters that hold a nested program


def sequential_matmuls(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """The longest chain of dependent matrix products (and convolutions) in
    `fn(*args, **kwargs)`, scans unrolled by their trip counts."""
    closed = jax.make_jaxpr(fn)(*args, **kwargs)
    return max(_depths(closed.jaxpr, [0] * len(closed.jaxpr.invars)), default=0)


def step_smm(step: Any, state: Any, batch: Any, key: Any = None) -> int:
    """SMMs per weight update of a `pcn.TrainStep`: its program's longest chain of
    products, less the weight-gradient product that closes it (see the module)."""
    return sequential_matmuls(lambda leaves: step._step(leaves, batch, key), state.leaves) - 1


def _depths(jaxpr: Any, inputs: Sequence[int]) -> list[int]:
    """The chain depth of each output of `jaxpr` given the depths of its inputs."""
    depth: dict[Any, int] = dict(zip(jaxpr.invars, inputs, strict=True))

    def of(var: Any) -> int:
        return 0 if isinstance(var, jax_core.Literal) else depth.get(var, 0)

    for eqn in jaxpr.eqns:
        ins = [of(v) for v in eqn.invars]
        outs = _eqn_depths(eqn, ins)
        depth.update(zip(eqn.outvars, outs, strict=True))
    return [of(v) for v in jaxpr.outvars]


def _eqn_depths(eqn: Any, ins: list[int]) -> list[int]:
    name = eqn.primitive.name
    if name == "scan":
        return _scan_depths(eqn, ins)
    if name == "while":
        raise ValueError(
            "The program holds a while loop (a relaxation stopped by a tolerance, say), whose "
            "trip count is unknown: count the SMMs of a fixed number of steps (`stop=T`, "
            "`pcn.FixedSteps(T)`)."
        )
    if name == "cond":
        branches = [_depths(b.jaxpr, ins[1:]) for b in eqn.params["branches"]]
        return [max(column) for column in zip(*branches, strict=True)]
    for key in _NESTED:
        if key in eqn.params:
            nested = eqn.params[key]
            return _depths(getattr(nested, "jaxpr", nested), ins)
    deepest = max(ins, default=0) + (name in MATMULS)
    return [deepest] * len(eqn.outvars)


def _scan_depths(eqn: Any, ins: list[int]) -> list[int]:
    """A scan unrolled: the carry's depth through every iteration, each stacked output
    at its deepest iteration."""
    params = eqn.params
    consts, carried = params["num_consts"], params["num_carry"]
    const_in, carry, xs = ins[:consts], ins[consts : consts + carried], ins[consts + carried :]
    stacked = [0] * (len(eqn.outvars) - carried)
    for _ in range(params["length"]):
        out = _depths(params["jaxpr"].jaxpr, const_in + carry + xs)
        carry = out[:carried]
        stacked = [max(a, b) for a, b in zip(stacked, out[carried:], strict=True)]
    return carry + stacked
