"""The hierarchical generative PC memory (thesis sections 4.3-4.5, Figs. 4.4 and 4.5,
Algorithms 6 and 7): a generative PCN whose sensory layer is the image.

The network is `pcn.generative_mlp`: a free top layer "z", hidden layers, and the
sensory layer "x" at the bottom (ReLU by default, a linear sensory prediction). It stores
images by Algorithm 6 (`memorise`, or `start_storing` / `store_more` / `stored` to store
in resumable chunks): the images clamped at "x", every image keeping its own hidden
values from step to step, each step one value update and one weight update from the
gradient of the same energy, until the mean energy no longer changes. (`train_step`,
plain IL with the values restarted for every batch, is the alternative for any loop; it
stores far more slowly: every step re-infers the codes from scratch.)

- A noisy key is cleaned by the map F of Fig. 4.4: the sensory values fixed to the current
  image, every other value relaxed to convergence, the image replaced by the sensory
  layer's prediction; F is iterated (`iterations`, `trajectory` returns every iterate).
- A partial key is completed by Algorithm 7: its known pixels clamped, every other value
  (the unknown pixels too) relaxed to convergence; the answer is the sensory values.
  `completion="marginal"` relaxes the hidden values on the energy of the known pixels
  alone and answers the unknown ones with their prediction: the same fixed points (an
  unknown pixel's error is zero at every fixed point of Algorithm 7), reached far faster
  when few entries are known (an image from its caption), for keys that share one mask.

Every relaxation starts from the forward pass of the top layer at zero (`forward_init`).
F relaxes on an exact reduction of the clamped sensory layer (its energy taken to the
width of the layer above by a QR factorisation of the last weights; `_reduce`): the same
iterates, at a fraction of the cost when the image is much wider than that layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._finite import NonFiniteDataError, NonFiniteEnergyError
from .._typed import apply_updates
from .._validation import check_at_least, check_choice
from ..activations import get_activation
from ..algorithms import IL, TrainStep, make_train_step
from ..energies import Gaussian
from ..graph import Edge, Node, PCGraph
from ..inference import infer
from ..init import forward_init
from ..models import generative_mlp
from ..options import Stop, Tolerance, ValueOptimizer, as_stop
from .keys import Key
from .protocol import Recall, check_key

SENSORY = "x"
Completion = Literal["relax", "marginal"]
COMPLETIONS: tuple[str, ...] = ("relax", "marginal")
RELAX = Tolerance(1e-5, 2000)
STORE = Tolerance(1e-6, 3000)  # Algorithm 6: change of the mean energy per image, cap


class GenerativeMemory(eqx.Module):
    """A generative PCN used as a memory of its sensory layer, with retrieval settings."""

    graph: PCGraph
    iterations: int = eqx.field(static=True)  # applications of F to a noisy key
    stop: Stop = eqx.field(static=True)  # of each relaxation
    value_optimizer: ValueOptimizer = eqx.field(static=True)
    completion: Completion = eqx.field(static=True, default="relax")  # of a partial key

    @property
    def pixels(self) -> int:
        return self.graph.node(SENSORY).shape[0]

    def apply_f(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """F of Fig. 4.4 once: the sensory prediction after relaxing with `images` fixed,
        and the steps each example took."""
        return _apply_f(self, images)

    def trajectory(self, key: Key, iterations: int) -> np.ndarray:
        """`(iterations, batch, d)`: the image after each application of F to a noisy key."""
        check_key(self, key)
        check_at_least("iterations", iterations, 1)
        x, out, reduction = jnp.asarray(key.image), [], _reduction(self.graph)
        for _ in range(iterations):  # each application is one compiled relaxation
            x, _ = _apply_f(self, x, reduction)
            out.append(np.asarray(x))
        return np.stack(out)

    def recall(self, key: Key) -> Recall:
        """A noisy key: F applied `iterations` times. A partial key: Algorithm 7."""
        check_key(self, key)
        image = jnp.asarray(key.image)
        if key.known is None:
            steps, reduction = jnp.zeros(len(image), jnp.int32), _reduction(self.graph)
            for _ in range(self.iterations):
                image, taken = _apply_f(self, image, reduction)
                steps = steps + taken
            return Recall(np.asarray(image), np.asarray(steps))
        if self.completion == "marginal":
            out, steps = _complete_marginal(self, image, _shared_mask(key.known))
        else:
            out, steps = _complete(self, image, jnp.asarray(key.known))
        return Recall(np.asarray(out), np.asarray(steps))


def _relax(memory: GenerativeMemory, image: jax.Array, clamp: bool | jax.Array):
    """One compiled relaxation (`pcn.infer`) from the forward pass of a zero top layer."""
    values = _start(memory.graph, image)
    return infer(
        memory.graph,
        values,
        clamp={SENSORY: clamp},
        stop=memory.stop,
        value_optimizer=memory.value_optimizer,
    )


@eqx.filter_jit
def _start(graph: PCGraph, image: jax.Array) -> dict[str, jax.Array]:
    return forward_init(graph, {SENSORY: image})


@eqx.filter_jit
def _sensory_prediction(graph: PCGraph, values: dict[str, jax.Array]) -> jax.Array:
    return graph.node(SENSORY).energy.mean(graph.predict(values, SENSORY))


class _Reduction(NamedTuple):
    """F's relaxation graph with the sensory layer taken to its parent's width (`_reduce`),
    and the orthonormal basis `q` that takes an image there."""

    graph: PCGraph
    basis: jax.Array


def _reduction(graph: PCGraph) -> _Reduction | None:
    """The reduction of `graph` (one QR factorisation), or None where it is not exact."""
    return _reduce(graph) if _reducible(graph) else None


def _apply_f(
    memory: GenerativeMemory, image: jax.Array, reduction: _Reduction | None = None
) -> tuple[jax.Array, jax.Array]:
    """F once; `reduction` (of `memory.graph`, computed here when not given) lets an
    iterated F factorise the last weights once rather than at every application."""
    if reduction is None:
        reduction = _reduction(memory.graph)
    if reduction is None:
        result = _relax(memory, image, True)
        return _sensory_prediction(memory.graph, result.values), result.example_steps
    result = infer(
        reduction.graph,
        _reduced_start(memory.graph, reduction.basis, image),
        clamp={SENSORY: True},
        stop=memory.stop,
        value_optimizer=memory.value_optimizer,
    )
    relaxed = {**result.values, SENSORY: image}
    return _sensory_prediction(memory.graph, relaxed), result.example_steps


def _single_linear_sensory(graph: PCGraph) -> bool:
    """Whether the sensory layer is predicted by one linear edge from one parent, with no
    activation on it and a Gaussian energy."""
    edges = graph.incoming(SENSORY)
    if len(edges) != 1 or len(edges[0].parents) != 1:
        return False
    linear, sensory = graph.edge_module(edges[0]), graph.node(SENSORY)
    return (
        isinstance(linear, eqx.nn.Linear)
        and isinstance(sensory.energy, Gaussian)
        and sensory.activation is get_activation("identity")
    )


def _reducible(graph: PCGraph) -> bool:
    """Whether the clamped sensory layer's energy can be taken to the width of its parent:
    one linear edge into it, narrower than d."""
    if not _single_linear_sensory(graph):
        return False
    (edge,) = graph.incoming(SENSORY)
    weight = graph.edge_module(edge).weight
    return weight.shape[1] < weight.shape[0]


@eqx.filter_jit
def _reduce(graph: PCGraph) -> _Reduction:
    """F's relaxation on a graph whose sensory layer has the parent's width w < d.

    With the image x clamped, the sensory energy p/2 |x - W h - b|^2 equals
    p/2 |Q^T (x - b) - R h|^2 plus a constant of x alone (W = Q R, Q with orthonormal
    columns): so the hidden values follow exactly the same gradients if the sensory layer
    is replaced by y = Q^T (x - b), clamped, predicted by R h. Each step then costs
    w x w products per image instead of d x w."""
    (edge,) = graph.incoming(SENSORY)
    q, r = jnp.linalg.qr(graph.edge_module(edge).weight)
    small = eqx.nn.Linear(r.shape[1], r.shape[0], use_bias=False, key=jax.random.key(0))
    small = eqx.tree_at(lambda m: m.weight, small, r)
    return _Reduction(_with_sensory(graph, small, r.shape[0]), q)


def _with_sensory(graph: PCGraph, module: Callable, width: int) -> PCGraph:
    """`graph` whose sensory layer is `width` wide and predicted by `module` instead."""
    (edge,) = graph.incoming(SENSORY)
    sensory = graph.node(SENSORY)
    narrow = Node(SENSORY, width, energy=sensory.energy, activation=sensory.activation)
    nodes = [narrow if n.name == SENSORY else n for n in graph.nodes]
    edges = [Edge(module, e.parents, e.child) if e is edge else e for e in graph.edges]
    return PCGraph(nodes, edges, graph.shared)


@eqx.filter_jit
def _reduced_start(graph: PCGraph, basis: jax.Array, image: jax.Array) -> dict[str, jax.Array]:
    """The start of F's reduced relaxation: the forward pass of the full graph, and the
    image taken to the reduced sensory layer, Q^T (x - b)."""
    (edge,) = graph.incoming(SENSORY)
    bias = graph.edge_module(edge).bias
    shifted = image if bias is None else image - bias[None]
    return {**forward_init(graph, {SENSORY: image}), SENSORY: shifted @ basis}


def _complete(memory: GenerativeMemory, image: jax.Array, known: jax.Array):
    result = _relax(memory, image, known)
    return result.values[SENSORY], result.example_steps


def _shared_mask(known: np.ndarray) -> np.ndarray:
    """The indices of the entries every key knows; keys with different masks are refused."""
    known = np.asarray(known, bool)
    if not np.all(known == known[:1]):
        raise ValueError(
            'completion="marginal" needs keys that all know the same entries (e.g. the '
            "caption part of every pair); these keys have different masks. Recall them with "
            'completion="relax" (Algorithm 7), or group the keys by mask.'
        )
    return np.flatnonzero(known[0])


def _complete_marginal(
    memory: GenerativeMemory, image: jax.Array, known: np.ndarray
) -> tuple[jax.Array, jax.Array]:
    """Relax on the graph whose sensory layer is the known entries (the rows `known` of
    the last weights), then answer the unknown entries with their prediction."""
    if not _single_linear_sensory(memory.graph):
        raise ValueError(
            'completion="marginal" needs the sensory layer "x" predicted by one linear edge '
            'with a Gaussian energy (as `generative_memory` builds); use completion="relax".'
        )
    index = jnp.asarray(known)
    sub = _known_rows(memory.graph, index)
    result = infer(
        sub,
        _start(sub, image[:, index]),
        clamp={SENSORY: True},
        stop=memory.stop,
        value_optimizer=memory.value_optimizer,
    )
    mask = jnp.zeros(image.shape[1], bool).at[index].set(True)
    return _fill(memory.graph, result.values, image, mask), result.example_steps


@eqx.filter_jit
def _known_rows(graph: PCGraph, index: jax.Array) -> PCGraph:
    """`graph` with its sensory layer cut to the entries `index`."""
    (edge,) = graph.incoming(SENSORY)
    linear = graph.edge_module(edge)
    rows = eqx.tree_at(lambda m: m.weight, linear, linear.weight[index])
    if linear.bias is not None:
        rows = eqx.tree_at(lambda m: m.bias, rows, linear.bias[index])
    return _with_sensory(graph, rows, len(index))


@eqx.filter_jit
def _fill(
    graph: PCGraph, values: dict[str, jax.Array], image: jax.Array, known: jax.Array
) -> jax.Array:
    """The key's known entries, the prediction of the relaxed values elsewhere."""
    prediction = _sensory_prediction(graph, {**values, SENSORY: image})
    return jnp.where(known[None], image, prediction)


def generative_memory(
    pixels: int,
    hidden: Sequence[int],
    *,
    activation: str = "relu",
    iterations: int = 1,
    stop: int | Stop = RELAX,
    gamma: float = 0.1,
    value_optimizer: ValueOptimizer | None = None,
    completion: Completion = "relax",
    key: jax.Array,
) -> GenerativeMemory:
    """An untrained memory of `pixels`-entry images: top layer `hidden[0]` wide, then the
    other `hidden` widths down to the sensory layer (e.g. `hidden=(1024, 1024)` is the
    thesis's "2-layer" network of width 1024).

    Args:
        activation: of the hidden layers' predictions (the thesis: ReLU); the sensory
            prediction is linear.
        iterations: applications of F to a noisy key.
        stop: of each relaxation (retrieval), `pcn.Tolerance(tol, max_steps)` or T.
        gamma: SGD step on the values unless `value_optimizer` is given.
        completion: of a partial key: "relax" (Algorithm 7) or "marginal" (the same fixed
            points, relaxed on the known entries' energy; keys sharing one mask).
        key: PRNG key of the weights.
    """
    check_at_least("pixels", pixels, 1)
    if not hidden:
        raise ValueError("A generative memory needs at least one hidden layer, e.g. (512, 512).")
    check_at_least("iterations", iterations, 1)
    graph = generative_mlp(
        [*hidden, pixels], activation=activation, output_activation="identity", key=key
    )
    check_choice("completion", completion, COMPLETIONS)
    optimizer = value_optimizer if value_optimizer is not None else optax.sgd(gamma)
    return GenerativeMemory(graph, iterations, as_stop(stop), optimizer, completion)


def train_step(
    memory: GenerativeMemory,
    *,
    steps: int = 50,
    gamma: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
) -> TrainStep:
    """The compiled memorisation step: the batch's images clamped at the sensory layer,
    `steps` value steps of SGD `gamma` from the forward pass of a zero top layer, one
    weight update by `optimizer` (default `optax.adam(1e-4)`). Feed it `batch(images)`."""
    algorithm = IL(steps, gamma=gamma, init=forward_init)
    return make_train_step(memory.graph, algorithm, optimizer or optax.adam(1e-4))


def batch(images: np.ndarray | jax.Array) -> dict[str, jax.Array]:
    """The clamped values of a memorisation batch."""
    return {SENSORY: jnp.asarray(images)}


def with_graph(memory: GenerativeMemory, graph: PCGraph) -> GenerativeMemory:
    """`memory` holding the trained `graph` (e.g. `step.graph(state)` of `train_step`)."""
    return eqx.tree_at(lambda m: m.graph, memory, graph)


class Storing(eqx.Module):
    """Algorithm 6 under way: the weights, every stored image's own hidden values, both
    optimisers' states, and how far storing got. A pytree: checkpoint it to resume."""

    graph: PCGraph
    values: dict[str, jax.Array]  # (N, width) for each node but the sensory one
    value_state: optax.OptState
    weight_state: optax.OptState
    steps: jax.Array  # () int: steps taken so far
    energy: jax.Array  # () mean energy per image before the last step (inf: none yet)
    change: jax.Array  # () |change| of that energy over the last step (inf: none yet)
    value_optimizer: optax.GradientTransformation = eqx.field(static=True)
    weight_optimizer: optax.GradientTransformation = eqx.field(static=True)

    def converged(self, tol: float) -> bool:
        """The mean energy changed by less than `tol` in the last step."""
        return bool(self.change < tol)


def _check_images(memory: GenerativeMemory, images: np.ndarray | jax.Array) -> jax.Array:
    shape = np.shape(images)
    if len(shape) != 2 or shape[1] != memory.pixels or shape[0] == 0:
        raise ValueError(
            f"This memory stores images of {memory.pixels} pixels; got images of shape "
            f"{shape}, expected (N, {memory.pixels}) with N >= 1 (flatten them)."
        )
    return jnp.asarray(images)


def start_storing(
    memory: GenerativeMemory,
    images: np.ndarray | jax.Array,
    *,
    value_optimizer: optax.GradientTransformation | None = None,
    weight_optimizer: optax.GradientTransformation | None = None,
) -> Storing:
    """Algorithm 6's start: the images `(N, d)` clamped, every hidden value at the forward
    pass of a zero top layer. `value_optimizer` (default `optax.adam(0.05)`) moves the
    values, `weight_optimizer` (default `optax.adam(1e-3)`) the weights and biases."""
    images = _check_images(memory, images)
    value_optimizer = value_optimizer or optax.adam(0.05)
    weight_optimizer = weight_optimizer or optax.adam(1e-3)
    values = _start(memory.graph, images)
    free = {n: v for n, v in values.items() if n != SENSORY}
    params = eqx.filter(memory.graph, eqx.is_inexact_array)
    inf = jnp.asarray(jnp.inf, images.dtype)
    return Storing(
        memory.graph,
        free,
        value_optimizer.init(free),
        weight_optimizer.init(params),
        jnp.asarray(0),
        inf,
        inf,
        value_optimizer,
        weight_optimizer,
    )


def store_more(
    storing: Storing, images: np.ndarray | jax.Array, *, steps: int, tol: float = STORE.tol
) -> Storing:
    """Up to `steps` more steps of Algorithm 6 on the same `images` (in the same order as
    at `start_storing`), in one compiled loop that stops once the mean energy per image
    changes by less than `tol` in a step (at once if it already had).

    Each step takes the gradient of the energy `E_t` at the current values and weights,
    then updates the values (per image: the energy summed over images) and the weights
    (the mean energy per image) from it."""
    check_at_least("steps", steps, 1)
    if not tol >= 0:
        raise ValueError(f"`tol` must be >= 0, got {tol!r}; e.g. 1e-6.")
    images = jnp.asarray(images)
    expected = (storing.values[next(iter(storing.values))].shape[0], _pixels(storing.graph))
    if images.shape != expected:
        raise ValueError(
            f"Storing was started on images of shape {expected}, got {images.shape}; pass "
            "the same images in the same order to every `store_more`."
        )
    if not bool(jnp.all(jnp.isfinite(images))):
        raise NonFiniteDataError("The images to store hold nan or inf; clean the data.")
    out = _store(storing, images, steps, tol)
    if out.steps > 0 and not bool(jnp.isfinite(out.energy)):
        raise NonFiniteEnergyError(
            f"Storing diverged: the mean energy per image became {float(out.energy)} after "
            f"{int(out.steps)} steps; lower the learning rate of `weight_optimizer` or of "
            "`value_optimizer`."
        )
    return out


def _pixels(graph: PCGraph) -> int:
    return graph.node(SENSORY).shape[0]


@eqx.filter_jit
def _store(storing: Storing, images: jax.Array, steps: int, tol: float) -> Storing:
    params, static = eqx.partition(storing.graph, eqx.is_inexact_array)
    n = images.shape[0]

    def summed_energy(p, free):
        graph = eqx.combine(p, static)
        return jnp.sum(graph.energy({**free, SENSORY: images}))

    grad = jax.value_and_grad(summed_energy, argnums=(0, 1))

    def cond(carry):
        _, _, _, _, t, _, change = carry
        return (t < steps) & (change >= tol)

    def body(carry):
        p, free, v_state, w_state, t, before, _ = carry
        energy, (g_params, g_free) = grad(p, free)
        energy = energy / n
        updates, v_state = storing.value_optimizer.update(g_free, v_state, free)
        free = apply_updates(free, updates)
        g_params = jax.tree.map(lambda g: g / n, g_params)
        updates, w_state = storing.weight_optimizer.update(g_params, w_state, p)
        p = optax.apply_updates(p, updates)
        return p, free, v_state, w_state, t + 1, energy, jnp.abs(energy - before)

    start = (
        params,
        storing.values,
        storing.value_state,
        storing.weight_state,
        jnp.asarray(0),
        storing.energy,
        storing.change,
    )
    p, free, v_state, w_state, taken, energy, change = jax.lax.while_loop(cond, body, start)
    return Storing(
        eqx.combine(p, static),
        free,
        v_state,
        w_state,
        storing.steps + taken,
        energy,
        change,
        storing.value_optimizer,
        storing.weight_optimizer,
    )


def stored(memory: GenerativeMemory, storing: Storing) -> GenerativeMemory:
    """`memory` holding the weights Algorithm 6 reached."""
    return with_graph(memory, storing.graph)


def memorise(
    memory: GenerativeMemory,
    images: np.ndarray | jax.Array,
    *,
    stop: Tolerance = STORE,
    value_optimizer: optax.GradientTransformation | None = None,
    weight_optimizer: optax.GradientTransformation | None = None,
) -> tuple[GenerativeMemory, Storing]:
    """Store `images` `(N, d)` by Algorithm 6 until the mean energy per image changes by
    less than `stop.tol` in a step, or `stop.max_steps` steps (one compiled loop). Returns
    the memory with its new weights, and the final `Storing` (steps taken, energy)."""
    if not isinstance(stop, Tolerance):
        raise TypeError(f"`stop` must be a pcn.Tolerance(tol, max_steps), got {stop!r}.")
    storing = start_storing(
        memory, images, value_optimizer=value_optimizer, weight_optimizer=weight_optimizer
    )
    storing = store_more(storing, images, steps=stop.max_steps, tol=stop.tol)
    return stored(memory, storing), storing
