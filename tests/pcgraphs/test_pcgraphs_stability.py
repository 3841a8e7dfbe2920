"""`stable_gamma`: 1.8 / L with L bounding the curvature of the energy, so queries converge."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pcn import NonFiniteEnergyError, Tolerance
from pcn.pcgraphs import (
    condition,
    curvature_bound,
    feedforward,
    fully_connected,
    generative,
    pc_graph,
    stable_gamma,
    with_lateral,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _largest_curvature(graph, provided: dict[str, jax.Array]) -> float:
    """The largest eigenvalue of the Hessian of the energy of one example in the free values."""
    free = [name for name in graph.names if name not in provided]
    sizes = [graph.node(name).shape[0] for name in free]

    def energy(flat: jax.Array) -> jax.Array:
        parts = jnp.split(flat, np.cumsum(sizes)[:-1])
        return graph.energy({**provided, **{n: p[None] for n, p in zip(free, parts, strict=True)}})[
            0
        ]

    hessian = jax.hessian(energy)(jnp.zeros(sum(sizes)))
    return float(np.linalg.eigvalsh(np.asarray(hessian)).max())


TOPOLOGIES = {
    "fully_connected": (fully_connected(12, sensory=4), "sensory"),
    "feedforward": (feedforward([6, 6, 6, 6]), "sensory"),  # a chain: blocks couple
    "feedforward_labels": (feedforward([6, 8, 8], labels=3), "sensory"),
    "generative_lateral": (with_lateral(generative([6, 6, 6])), None),  # all nodes free
}


@pytest.mark.parametrize("name", TOPOLOGIES)
@pytest.mark.parametrize("weight_scale", [0.5, 1.0, 2.0])
def test_the_bound_is_above_the_largest_hessian_eigenvalue_so_the_step_is_below_2_over_it(
    x64, name, weight_scale
):
    topology, sensory = TOPOLOGIES[name]
    for seed in range(3):
        graph = pc_graph(
            topology, activation="identity", key=jax.random.key(seed), weight_scale=weight_scale
        )
        rng = np.random.default_rng(seed)
        shape = (1, *graph.node(sensory).shape) if sensory else None
        provided = {sensory: rng.standard_normal(shape)} if sensory else {}
        lam = _largest_curvature(graph, provided)
        bound = curvature_bound(graph)
        assert lam <= bound * (1 + 1e-12), (name, seed, lam, bound)
        assert stable_gamma(graph, 100.0) == pytest.approx(1.8 / bound, rel=1e-12)
        assert stable_gamma(graph, 100.0) < 2 / lam
        assert stable_gamma(graph, 1e-3) == 1e-3


def test_a_step_above_2_over_the_curvature_diverges_and_the_stable_one_converges(x64):
    graph = pc_graph(
        fully_connected(12, sensory=4), activation="identity", key=jax.random.key(0),
        weight_scale=2.0,
    )  # fmt: skip
    provided = {"sensory": jnp.asarray(np.random.default_rng(0).standard_normal((3, 4)))}
    lam = _largest_curvature(graph, {"sensory": provided["sensory"][:1]})
    stop = Tolerance(1e-10, 5000)
    with pytest.raises(NonFiniteEnergyError):
        condition(graph, provided, stop=stop, gamma=2.5 / lam)
    gamma = stable_gamma(graph, 2.5 / lam)
    assert gamma < 2 / lam
    result = condition(graph, provided, stop=stop, gamma=gamma)
    assert bool(result.converged)
    assert bool(jnp.all(jnp.isfinite(result.final_energy)))
