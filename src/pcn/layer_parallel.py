"""Layer-parallel relaxation and training: each device of a `stage` mesh axis owns a
contiguous block of the graph's nodes with the weights of their incoming edges (and
those weights' optimiser state), and per relaxation step exchanges only what PC's
locality needs with its neighbours:

- forward, the values of its nodes that the next block's edges read (one `ppermute`);
- backward, the gradient of its own energy with respect to those incoming values, which
  the previous block adds to its nodes' gradients (one `ppermute`).

A node's energy depends on its own value and its parents' values only, so the gradient
of the whole energy with respect to a value is the owning block's part plus the next
block's part: the step is the one-device step, term by term. Weight gradients are local
to each block (its energies at its and its inputs' values); with a `data` axis too, the
batch is split over it and each block's gradient is averaged over it. Everything runs in
one `jax.shard_map` program per step (the relaxation a `lax.scan` inside it).

Blocks may hold nodes of any shapes: each device's values, messages and weights are
flat buffers padded to the largest block's, and `lax.switch` on the device's position
runs its block's code. Every edge must stay inside a block or go from one block to the
next (a chain of blocks).

>>> import jax, optax, pcn
>>> graph = pcn.mlp([4, 8, 8, 3], key=jax.random.key(0))
>>> plan = LayerParallel(graph, stages=1)
>>> plan.blocks
(('x', 'h1', 'h2', 'y'),)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._checks import check_batch, check_free_nodes
from ._engine import _as_optax
from ._typed import total
from ._validation import check_at_least
from .algorithms import IL, AbstractAlgorithm, StepInfo, TrainState, TrainStep
from .graph import PCGraph
from .init import ForwardInit
from .options import FixedSteps, Stop, ValueOptimizer, as_stop, value_optimizer_of
from .parallel import _first_devices
from .typing import ValuesIn

STAGE, DATA = "stage", "data"


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _balanced_blocks(order: Sequence[str], weights: Sequence[int], stages: int) -> list[list[str]]:
    """`order` cut into `stages` contiguous non-empty blocks whose largest total weight
    is as small as possible (the linear-partition dynamic programme)."""
    n = len(order)
    prefix = np.concatenate([[0], np.cumsum(weights)])
    inf = float("inf")
    # best[k][i]: the smallest largest block for the first i nodes in k blocks
    best = np.full((stages + 1, n + 1), inf)
    cut = np.zeros((stages + 1, n + 1), dtype=np.int64)
    best[0][0] = 0.0
    for k in range(1, stages + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                cost = max(best[k - 1][j], float(prefix[i] - prefix[j]))
                if cost < best[k][i]:
                    best[k][i], cut[k][i] = cost, j
    blocks: list[list[str]] = []
    i = n
    for k in range(stages, 0, -1):
        j = int(cut[k][i])
        blocks.insert(0, list(order[j:i]))
        i = j
    return blocks


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where named per-example arrays sit in one flat padded row: `(name, start, shape)`."""

    parts: tuple[tuple[str, int, tuple[int, ...]], ...]

    @classmethod
    def of(cls, graph: PCGraph, names: Sequence[str]) -> _Layout:
        parts, start = [], 0
        for name in names:
            shape = graph.node(name).shape
            parts.append((name, start, shape))
            start += _size(shape)
        return cls(tuple(parts))

    @property
    def width(self) -> int:
        return sum(_size(shape) for _, _, shape in self.parts)

    def pack(self, values: Mapping[str, jax.Array], width: int, like: jax.Array) -> jax.Array:
        """The named values, flattened per example, side by side, zero-padded to `width`."""
        rows = like.shape[0]
        flat = [values[name].reshape(rows, -1).astype(like.dtype) for name, _, _ in self.parts]
        pad = width - self.width
        if pad:
            flat.append(jnp.zeros((rows, pad), like.dtype))
        return jnp.concatenate(flat, axis=1) if flat else jnp.zeros((rows, width), like.dtype)

    def unpack(self, row: jax.Array) -> dict[str, jax.Array]:
        return {
            name: row[:, start : start + _size(shape)].reshape(row.shape[0], *shape)
            for name, start, shape in self.parts
        }


@dataclasses.dataclass(frozen=True)
class _Block:
    """One device's part: its nodes, the earlier nodes its edges read, its nodes the
    next block reads, and its sub-graph (its nodes and inputs, its nodes' incoming
    edges) as a structure plus the indices, among the whole graph's weight arrays, of
    the arrays it holds (`owned`: those it trains and writes back)."""

    own: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    static: PCGraph
    unravel: Callable[[jax.Array], Any]
    leaves: tuple[int, ...]
    owned: tuple[bool, ...]
    weights: int


class LayerParallel:
    """A graph's nodes split into `stages` blocks over as many devices (times `data`
    devices that split the batch), for `infer` and `train_step`.

    Args:
        graph: the model (a DAG when the blocks are chosen for you).
        stages: the number of blocks (cut in topological order so that the largest
            block holds as few weights as possible), or the blocks themselves as
            sequences of node names covering every node once.
        data: devices that split each batch (a `data x stages` mesh).

    Raises:
        ValueError: a partition that misses or repeats a node, an edge that skips a
            block or runs backwards, a shared module used in two blocks, more devices
            than JAX sees, naming the node, edge or setting and the fix.
    """

    def __init__(self, graph: PCGraph, stages: int | Sequence[Sequence[str]], *, data: int = 1):
        check_at_least("data", data, 1)
        blocks = self.partition(graph, stages)
        stage_of = {name: i for i, block in enumerate(blocks) for name in block}
        for index, edge in enumerate(graph.edges):
            child = stage_of[edge.child]
            for parent in edge.parents:
                if stage_of[parent] not in (child, child - 1):
                    raise ValueError(
                        f"Edge {index} ({edge.parents} -> {edge.child!r}) joins node "
                        f"{parent!r} of block {stage_of[parent]} to node {edge.child!r} of "
                        f"block {child}: layer-parallel blocks exchange values with their "
                        "neighbours only, so every edge must stay in a block or go to the "
                        "next one. Pass `stages` as blocks that keep this edge together."
                    )
        for name in graph.shared:
            users = {stage_of[e.child] for e in graph.edges if e.module == name}
            if len(users) > 1:
                raise ValueError(
                    f"Shared module {name!r} is used by edges in blocks {sorted(users)}; "
                    "a layer-parallel block owns its weights, so put every edge of a shared "
                    "module in one block (pass `stages` as blocks)."
                )
        self.blocks: tuple[tuple[str, ...], ...] = tuple(tuple(b) for b in blocks)
        self.stages = len(blocks)
        self.data = data
        devices = _first_devices(data * self.stages, "data x stages")
        auto = (jax.sharding.AxisType.Auto,) * 2
        self.mesh: Mesh = jax.make_mesh(
            (data, self.stages), (DATA, STAGE), axis_types=auto, devices=devices
        )
        params, self._static = eqx.partition(graph, eqx.is_inexact_array)
        leaves, self._treedef = jax.tree.flatten(params)
        self._shapes = tuple((leaf.shape, leaf.dtype) for leaf in leaves)
        index_of = {id(leaf): k for k, leaf in enumerate(leaves)}
        self._blocks = tuple(self._block(graph, block, stage_of, index_of) for block in self.blocks)
        self._weights_width = max(1, *(b.weights for b in self._blocks))
        self._energy_nodes = tuple(n for n in graph.names if graph.incoming(n))
        self._compiled_infer: dict[Any, Callable] = {}

    # --- building ----------------------------------------------------------------
    @staticmethod
    def partition(graph: PCGraph, stages: int | Sequence[Sequence[str]]) -> list[list[str]]:
        """The blocks `LayerParallel(graph, stages)` uses: given ones checked, or
        `stages` contiguous runs of the topological order, the largest holding as few
        weights as possible (each node counts its incoming edges' weights, plus one).

        Raises:
            ValueError: blocks that miss, repeat or invent a node; more blocks than
                nodes; a cyclic graph without given blocks.
        """
        if isinstance(stages, int):
            check_at_least("stages", stages, 1)
            if graph.order is None:
                raise ValueError(
                    f"Choosing layer-parallel blocks needs a DAG, but {graph.cycle_hint()}; "
                    "pass `stages` as blocks of node names (every edge inside a block or "
                    "into the next one)."
                )
            if stages > len(graph.order):
                raise ValueError(
                    f"`stages` = {stages}, but the graph has {len(graph.order)} nodes; use "
                    f"at most {len(graph.order)} (a block holds at least one node)."
                )
            weights = []
            for name in graph.order:
                edges = [graph.edge_module(e) for e in graph.incoming(name)]
                leaves = jax.tree.leaves(eqx.filter(edges, eqx.is_inexact_array))
                weights.append(1 + sum(int(leaf.size) for leaf in leaves))
            return _balanced_blocks(graph.order, weights, stages)
        blocks = [list(block) for block in stages]
        named = [name for block in blocks for name in block]
        missing = [n for n in graph.names if n not in named]
        repeated = sorted({n for n in named if named.count(n) > 1})
        unknown = [n for n in named if n not in graph.names]
        if missing or repeated or unknown or not blocks or not all(blocks):
            raise ValueError(
                "`stages` as blocks must name every node exactly once in non-empty blocks; "
                f"missing {missing}, repeated {repeated}, unknown {unknown} (nodes: "
                f"{list(graph.names)})."
            )
        return blocks

    @staticmethod
    def _sub_graph(graph: PCGraph, own: Sequence[str], inputs: Sequence[str]) -> PCGraph:
        """The block's nodes and inputs, and its nodes' incoming edges."""
        edges = tuple(e for e in graph.edges if e.child in own)
        shared = {k: v for k, v in graph.shared.items() if any(e.module == k for e in edges)}
        nodes = tuple(n for n in graph.nodes if n.name in own or n.name in inputs)
        return PCGraph(nodes, edges, shared)

    def _block(
        self,
        graph: PCGraph,
        own: tuple[str, ...],
        stage_of: Mapping[str, int],
        index_of: Mapping[int, int],
    ) -> _Block:
        i = stage_of[own[0]]
        edges = [e for e in graph.edges if stage_of[e.child] == i]
        inputs = tuple(
            n for n in graph.names if stage_of[n] == i - 1 and any(n in e.parents for e in edges)
        )
        outputs = tuple(
            n
            for n in own
            if any(stage_of[e.child] == i + 1 and n in e.parents for e in graph.edges)
        )
        sub = self._sub_graph(graph, own, inputs)
        params, static = eqx.partition(sub, eqx.is_inexact_array)
        flat, unravel = ravel_pytree(params)
        # the block trains its edges' weights and its own nodes' (not its inputs')
        mine = (
            [sub.edge_module(e) for e in sub.edges],
            [n for n in sub.nodes if n.name in own],
        )
        owned_ids = {id(leaf) for leaf in jax.tree.leaves(eqx.filter(mine, eqx.is_inexact_array))}
        leaves = jax.tree.leaves(params)
        return _Block(
            own,
            inputs,
            outputs,
            static,
            unravel,
            tuple(index_of[id(leaf)] for leaf in leaves),
            tuple(id(leaf) in owned_ids for leaf in leaves),
            int(flat.size),
        )

    # --- weights in and out ----------------------------------------------------------
    def pack_weights(self, graph: PCGraph) -> jax.Array:
        """The graph's weights as a `(stages, width)` array, row i block i's (padded),
        placed so that each device holds its block's row.

        Raises:
            ValueError: a graph whose weights are shaped unlike the planned graph's.
        """
        return self.pack_tree(eqx.filter(graph, eqx.is_inexact_array))

    def unpack_weights(self, stacked: jax.Array) -> PCGraph:
        """The graph with the weights of `stacked` (as `pack_weights` laid them out)."""
        return eqx.combine(self.unpack_tree(stacked), self._static)

    def pack_tree(self, tree: Any) -> jax.Array:
        """`pack_weights` for any tree shaped like the graph's weights (an optimiser's
        moments of them, say)."""
        leaves, treedef = jax.tree.flatten(tree)
        if treedef != self._treedef or [(x.shape, x.dtype) for x in leaves] != list(self._shapes):
            raise ValueError(
                "These weights are not shaped like those of the graph the `LayerParallel` "
                "was made for; make one for this graph."
            )
        rows = []
        for block in self._blocks:
            parts = [jnp.ravel(leaves[k]) for k in block.leaves]
            flat = jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.result_type(float))
            rows.append(jnp.pad(flat, (0, self._weights_width - flat.size)))
        stacked = jnp.stack(rows)
        return jax.device_put(stacked, NamedSharding(self.mesh, PartitionSpec(STAGE)))

    def unpack_tree(self, stacked: jax.Array) -> Any:
        """The tree of the graph's weights' structure held by `stacked` (`pack_tree`'s
        inverse), gathered from the devices."""
        host = np.asarray(jax.device_get(stacked))
        leaves: list[Any] = [None] * len(self._shapes)
        for i, block in enumerate(self._blocks):
            start = 0
            for k, owned in zip(block.leaves, block.owned, strict=True):
                shape, dtype = self._shapes[k]
                end = start + _size(shape)
                if owned:
                    leaves[k] = jnp.asarray(host[i, start:end].reshape(shape), dtype)
                start = end
        return jax.tree.unflatten(self._treedef, leaves)

    # --- the per-device program --------------------------------------------------------
    def _layouts(self, clamped: frozenset[str]) -> tuple[list[_Layout], list[_Layout], int, int]:
        """Per block: where its free values and its outputs sit in their rows, and the
        widths every device's rows are padded to."""
        free = [
            _Layout.of(block.static, [n for n in block.own if n not in clamped])
            for block in self._blocks
        ]
        sent = [_Layout.of(block.static, block.outputs) for block in self._blocks]
        return free, sent, max(1, *(f.width for f in free)), max(1, *(s.width for s in sent))

    def _program(
        self,
        clamped: frozenset[str],
        steps: int,
        value_optimizer: optax.GradientTransformation,
        init: ForwardInit,
        global_rows: int,
    ) -> Callable:
        """The per-device function (inside `shard_map`): forward initialisation, `steps`
        relaxation steps, and the block's energies and weight gradient at the relaxed
        values. Block i's code is branch i of a `lax.switch` on the device's position."""
        free_layouts, sent_layouts, free_width, sent_width = self._layouts(clamped)
        received = [sent_layouts[i - 1] if i else _Layout(()) for i in range(self.stages)]
        blocks, stages, energy_nodes = self._blocks, self.stages, self._energy_nodes

        def on_my_block(make: Callable[[int], Callable], *args):
            branches = [make(i) for i in range(stages)]
            return jax.lax.switch(jax.lax.axis_index(STAGE), branches, *args)

        def graph_of(i: int, weights: jax.Array) -> PCGraph:
            return eqx.combine(blocks[i].unravel(weights[: blocks[i].weights]), blocks[i].static)

        def clamped_of(i: int, batch) -> dict[str, jax.Array]:
            return {n: v for n, v in batch.items() if n in blocks[i].own}

        def values_of(i: int, free, incoming, batch) -> dict[str, jax.Array]:
            return {
                **clamped_of(i, batch),
                **free_layouts[i].unpack(free),
                **received[i].unpack(incoming),
            }

        def send(free, batch):
            """This block's values that the next block reads, as one padded row."""

            def make(i):
                def run(free, batch):
                    mine = {**clamped_of(i, batch), **free_layouts[i].unpack(free)}
                    return sent_layouts[i].pack(mine, sent_width, free)

                return run

            return on_my_block(make, free, batch)

        def shift(row, forward: bool):
            """`row` to the next device (`forward`) or the previous one; zeros arrive at
            the first (last) device."""
            if stages == 1:
                return jnp.zeros_like(row)
            pairs = [(i, i + 1) if forward else (i + 1, i) for i in range(stages - 1)]
            return jax.lax.ppermute(row, STAGE, pairs)

        def energies(i, weights, free, incoming, batch) -> tuple[jax.Array, jax.Array]:
            """Block i's energy summed over its examples, and per energy node."""
            graph = graph_of(i, weights)
            per_node = graph._node_energies(values_of(i, free, incoming, batch))
            sums = [
                jnp.sum(per_node[n]) if n in per_node else jnp.zeros((), free.dtype)
                for n in energy_nodes
            ]
            energy = total([jnp.zeros((), free.dtype), *(jnp.sum(e) for e in per_node.values())])
            return energy, jnp.stack(sums)

        def value_gradients(weights, free, incoming, batch):
            def make(i):
                def run(weights, free, incoming, batch):
                    def energy(f, inc):
                        return energies(i, weights, f, inc, batch)[0]

                    value, (g_free, g_in) = jax.value_and_grad(energy, argnums=(0, 1))(
                        free, incoming
                    )
                    return value, g_free, g_in

                return run

            return on_my_block(make, weights, free, incoming, batch)

        def returned(grad_row, like):
            """The next block's gradient on this block's outputs, at their free places."""

            def make(i):
                def run(grad_row, like):
                    back = sent_layouts[i].unpack(grad_row)
                    grads = {
                        name: back[name] if name in back else jnp.zeros_like(value)
                        for name, value in free_layouts[i].unpack(like).items()
                    }
                    return free_layouts[i].pack(grads, free_width, like)

                return run

            return on_my_block(make, grad_row, like)

        def forward(weights, batch, rows, dtype):
            """Forward initialisation, block after block: `stages` rounds."""
            free = jnp.zeros((rows, free_width), dtype)

            def make(i):
                def run(weights, incoming, batch):
                    provided = {**clamped_of(i, batch), **received[i].unpack(incoming)}
                    values = init(graph_of(i, weights), provided)
                    return free_layouts[i].pack(values, free_width, free)

                return run

            for _ in range(stages):
                incoming = shift(send(free, batch), forward=True)
                free = on_my_block(make, weights, incoming, batch)
            return free

        def program(weights, batch):
            weights = weights[0]
            rows = next(iter(batch.values())).shape[0]
            free = forward(weights, batch, rows, weights.dtype)

            def step(carry, _):
                free, opt_state = carry
                incoming = shift(send(free, batch), forward=True)
                energy, g_free, g_in = value_gradients(weights, free, incoming, batch)
                grads = g_free + returned(shift(g_in, forward=False), free)
                updates, opt_state = value_optimizer.update(grads, opt_state, free)
                trace = jax.lax.psum(energy, (DATA, STAGE)) / global_rows
                return (free + updates, opt_state), trace

            (free, _), trace = jax.lax.scan(step, (free, value_optimizer.init(free)), length=steps)
            incoming = shift(send(free, batch), forward=True)

            def weight_loss(weights):
                def make(i):
                    return lambda w, f, inc, b: energies(i, w, f, inc, b)

                energy, per_node = on_my_block(make, weights, free, incoming, batch)
                return energy / global_rows, per_node

            (energy, per_node), grads = jax.value_and_grad(weight_loss, has_aux=True)(weights)
            grads = jax.lax.psum(grads, DATA)
            loss = jax.lax.psum(energy, (DATA, STAGE))
            per_node = jax.lax.psum(per_node, (DATA, STAGE)) / global_rows
            return free[None], trace, loss, per_node, grads[None]

        return program

    def _run(
        self,
        weights: jax.Array,
        batch: Mapping[str, jax.Array],
        *,
        steps: int,
        value_optimizer: optax.GradientTransformation,
        init: ForwardInit,
    ):
        """The sharded program on stacked weights: the relaxed free rows `(stages, batch,
        width)`, the energy trace, the loss, per-node energies and the stacked weight
        gradient."""
        rows = next(iter(batch.values())).shape[0]
        program = self._program(frozenset(batch), steps, value_optimizer, init, rows)
        sharded = jax.shard_map(
            program,
            mesh=self.mesh,
            in_specs=(PartitionSpec(STAGE), {n: PartitionSpec(DATA) for n in batch}),
            out_specs=(
                PartitionSpec(STAGE, DATA),
                PartitionSpec(),
                PartitionSpec(),
                PartitionSpec(),
                PartitionSpec(STAGE),
            ),
            # blocks differ in which inputs they read (a branch of the first reads no
            # message), so outputs' varying axes differ by branch; the replicated
            # outputs are psums
            check_vma=False,
        )
        return sharded(weights, dict(batch))

    # --- public entry points -----------------------------------------------------------
    def check_batch(self, batch: Mapping[str, Any]) -> None:
        """Each node's batch must split evenly over the data axis.

        Raises:
            ValueError: naming the node, its batch size and the data devices.
        """
        for name, value in batch.items():
            if value.shape[0] % self.data:
                raise ValueError(
                    f"The batch of node {name!r} has {value.shape[0]} examples, which do not "
                    f"split over the {self.data} devices of the data axis: use a batch size "
                    f"that is a multiple of {self.data}."
                )

    def unpack_values(self, rows: jax.Array, clamped: frozenset[str]) -> dict[str, jax.Array]:
        """The free values of every block from the stacked `(stages, batch, width)` rows."""
        free_layouts, _, _, _ = self._layouts(clamped)
        out: dict[str, jax.Array] = {}
        for i, layout in enumerate(free_layouts):
            out.update(layout.unpack(rows[i]))
        return out

    def infer(
        self,
        graph: PCGraph,
        batch: ValuesIn,
        *,
        stop: int | Stop,
        gamma: float | None = None,
        value_optimizer: ValueOptimizer | None = None,
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        """Clamp the nodes of `batch`, start the others at their forward predictions and
        relax them for `stop` steps, block-parallel. Returns every node's values and the
        mean energy per example before each step (those of `pcn.infer` from forward
        initialisation with `fuse=False`, up to the order of float sums).

        Raises:
            ValueError: a tolerance stop, a batch that does not split over the data
                axis, or data a node cannot take.
        """
        check_batch(graph, batch)
        check_free_nodes(graph, frozenset(batch))
        self.check_batch(batch)
        steps = fixed_steps(as_stop(stop))
        chosen = value_optimizer_of(gamma, value_optimizer, default_gamma=None)
        # one compiled program per (T, value optimiser): later queries reuse it
        key = (steps, chosen)
        try:
            run = self._compiled_infer.get(key)
        except TypeError:  # an unhashable optax transformation: compiled each call
            key, run = None, None
        if run is None:
            run = jax.jit(
                functools.partial(
                    self._run, steps=steps, value_optimizer=_as_optax(chosen), init=ForwardInit()
                )
            )
            if key is not None:
                self._compiled_infer[key] = run
        rows, trace, _, _, _ = run(self.pack_weights(graph), dict(batch))
        values = self.unpack_values(rows, frozenset(batch))
        return {**{n: jnp.asarray(v) for n, v in batch.items()}, **values}, trace

    def train_step(
        self,
        graph: PCGraph,
        algorithm: AbstractAlgorithm,
        optimizer: optax.GradientTransformation,
        *,
        donate: bool = False,
        check_finite: bool = True,
    ) -> LayerParallelStep:
        """A compiled layer-parallel training step of `algorithm` (an `IL` with forward
        initialisation, a fixed T and one weight update) with `optimizer` on the weights."""
        return LayerParallelStep(
            graph, algorithm, optimizer, self, donate=donate, check_finite=check_finite
        )


def fixed_steps(stop: Stop) -> int:
    """T of a fixed-step stop.

    Raises:
        ValueError: a tolerance stop (every block steps together, so the count is fixed).
    """
    if not isinstance(stop, FixedSteps):
        raise ValueError(
            "A layer-parallel relaxation runs a fixed number of steps (every block steps "
            f"together); got {stop!r}: pass `stop=T`."
        )
    return stop.steps


class LayerParallelStep(TrainStep):
    """`TrainStep` whose state is the stacked per-block weights and their optimiser
    state (each device holds its block's rows), run by `LayerParallel`'s program. The
    weight optimiser sees each block's weights as one flat vector, so an elementwise
    optimiser (sgd, momentum, adam, adamw, ...) makes the one-device update; one that
    mixes parameters (a global-norm clip) sees per-block norms instead."""

    def __init__(
        self,
        graph: PCGraph,
        algorithm: AbstractAlgorithm,
        optimizer: optax.GradientTransformation,
        plan: LayerParallel,
        *,
        donate: bool = False,
        check_finite: bool = True,
    ):
        if not isinstance(algorithm, IL):
            raise TypeError(
                f"Layer-parallel training runs `pcn.IL`; got {type(algorithm).__name__}."
            )
        if not isinstance(algorithm.init, ForwardInit):
            raise ValueError(
                "Layer-parallel training starts the values by forward initialisation (block "
                f"after block); got init={type(algorithm.init).__name__}(...): use "
                "`pcn.IL(..., init=pcn.forward_init)`."
            )
        if algorithm.weight_updates != 1:
            raise ValueError(
                f"Layer-parallel training makes one weight update per batch; got "
                f"weight_updates={algorithm.weight_updates}: use 1."
            )
        self._steps = fixed_steps(algorithm.stop)
        self._value_optimizer = _as_optax(algorithm.value_optimizer)
        self._init = algorithm.init
        self.plan = plan
        super().__init__(
            graph, algorithm, optimizer, donate=donate, check_finite=check_finite, parallel=None
        )
        self.parallel = None  # the plan's mesh, not a data-parallel one
        self._opt_treedef = jax.tree.structure(
            jax.eval_shape(optimizer.init, jax.ShapeDtypeStruct((1, 1), jnp.result_type(float)))
        )

    def init(
        self,
        graph: PCGraph,
        opt_state: optax.OptState | None = None,
        *,
        batch: Any = None,
        key: Any = None,
    ) -> TrainState:
        """The stacked weights of `graph` and a fresh optimiser state on them, or
        `opt_state` stacked: one shaped for `graph`'s weights, as `opt_state(state)` of
        this step, of one on another number of blocks, or of a one-device `TrainStep`
        returns (so a run resumes on any device count)."""
        weights = self.plan.pack_weights(graph)
        stacked_shapes = jax.eval_shape(self.optimizer.init, weights)
        if opt_state is None:
            opt_state = jax.jit(self.optimizer.init)(weights)
        else:
            parts, _ = jax.tree.flatten(opt_state, is_leaf=self._is_weights)
            packed = [self.plan.pack_tree(p) if self._is_weights(p) else p for p in parts]
            opt_state = jax.tree.unflatten(jax.tree.structure(stacked_shapes), packed)
        leaves, self._opt_treedef = jax.tree.flatten(opt_state)
        whole = NamedSharding(self.plan.mesh, PartitionSpec())
        leaves = [
            jax.device_put(leaf, weights.sharding if leaf.shape == weights.shape else whole)
            for leaf in leaves
        ]
        return TrainState((weights, *leaves))

    def _is_weights(self, node: Any) -> bool:
        """Whether `node` is a tree shaped like the graph's weights (an optimiser's
        moments), not one leaf of it."""
        return self.plan._treedef.num_leaves > 1 and jax.tree.structure(node) == self.plan._treedef

    def graph(self, state: TrainState) -> PCGraph:
        """The model held by `state` (the blocks' weights gathered)."""
        self.check()
        return self.plan.unpack_weights(state.leaves[0])

    def opt_state(self, state: TrainState) -> optax.OptState:
        """The optimiser state in the graph's weights' structure (each block's part
        gathered): what a one-device `TrainStep` holds, so checkpoints move between
        device counts."""
        stacked = jax.tree.unflatten(self._opt_treedef, state.leaves[1:])
        params = eqx.filter(self.plan.unpack_weights(state.leaves[0]), eqx.is_inexact_array)
        template = jax.eval_shape(self.optimizer.init, params)
        parts, treedef = jax.tree.flatten(template, is_leaf=self._is_weights)
        leaves = jax.tree.leaves(stacked)
        if len(parts) != len(leaves):
            raise ValueError(
                "This optimiser's state is not a tree of per-weight moments and scalars, so "
                "it cannot be gathered into the graph's structure."
            )
        return jax.tree.unflatten(
            treedef,
            [
                self.plan.unpack_tree(leaf) if self._is_weights(part) else leaf
                for part, leaf in zip(parts, leaves, strict=True)
            ],
        )

    def carry(self, state: TrainState) -> Any:
        return ()

    def _check_batch(self, batch) -> None:
        super()._check_batch(batch)
        self.plan.check_batch(batch)

    def _step(self, leaves, batch, key):
        weights = leaves[0]  # (stages, width), each device its block's row
        opt_state = jax.tree.unflatten(self._opt_treedef, leaves[1:])
        _, trace, loss, per_node, grads = self.plan._run(
            weights,
            batch,
            steps=self._steps,
            value_optimizer=self._value_optimizer,
            init=self._init,
        )
        updates, opt_state = self.optimizer.update(grads, opt_state, weights)
        new = (optax.apply_updates(weights, updates), *jax.tree.leaves(opt_state))
        info = StepInfo(loss, trace, dict(zip(self.plan._energy_nodes, per_node, strict=True)))
        return self._finish(leaves, new, batch, info)
