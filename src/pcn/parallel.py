"""Data- and model-parallel training on JAX's own sharding: the batch is split over the
devices of a mesh axis, the weights, optimiser state and carry are replicated (or, with
a model axis, large weights split over it), and XLA partitions the one compiled step.
A relaxation moves each example's values by its own errors, so it needs no
communication; the weight update averages over the batch, which becomes one all-reduce
per update. No `pmap`, no hand-written collectives. Across processes
(`initialize_distributed`, on `jax.distributed`) the same step spans every process's
devices.

>>> import jax
>>> parallel = data_parallel(1)  # a one-device mesh; `data_parallel()` takes every device
>>> parallel.size
1
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._validation import check_at_least


@dataclasses.dataclass(frozen=True)
class Parallel:
    """A mesh, the axis the batch is split over and, optionally, the axis that large
    weights (and their optimiser state) are split over by their first dimension: those
    of at least `shard_above` entries whose first dimension the axis divides (a layer's
    outputs; the fully connected PC graph's n x n matrix). XLA inserts the gathers and
    reductions the sharded products need."""

    mesh: Mesh
    axis: str = "data"
    model_axis: str | None = None
    shard_above: int = 1 << 16

    @property
    def size(self) -> int:
        """Devices the batch is split over."""
        return int(self.mesh.shape[self.axis])

    @functools.cached_property
    def replicated(self) -> NamedSharding:
        """Every device holds the whole array (weights, optimiser state, carry, key)."""
        return NamedSharding(self.mesh, PartitionSpec())

    @functools.cached_property
    def split(self) -> NamedSharding:
        """The leading (example) axis split over the mesh axis: a batch's sharding."""
        return NamedSharding(self.mesh, PartitionSpec(self.axis))

    def leaf_sharding(self, leaf: Any) -> NamedSharding:
        """Where one array of the state lives: split over the model axis if it is large
        and its first dimension divides, else on every device."""
        if self.model_axis is None or not getattr(leaf, "ndim", 0):
            return self.replicated
        parts = int(self.mesh.shape[self.model_axis])
        if leaf.size < self.shard_above or leaf.shape[0] % parts:
            return self.replicated
        return NamedSharding(self.mesh, PartitionSpec(self.model_axis))

    @functools.cached_property
    def spans_processes(self) -> bool:
        """Whether the mesh holds devices of other processes (`jax.distributed`)."""
        here = jax.process_index()
        return any(d.process_index != here for d in self.mesh.devices.flat)

    def place_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The batch as arrays split over the mesh. Across processes every process passes
        the same whole batch (the suite's seeded batching gives each the same) and keeps
        the rows of its own devices."""
        if not self.spans_processes:
            return dict(batch)  # the compiled step splits host arrays itself
        return {name: _global(value, self.split) for name, value in batch.items()}

    def check_batch(self, batch: Mapping[str, Any]) -> None:
        """Every node's batch must split evenly over the devices.

        Raises:
            ValueError: naming the node, the batch size and the device count.
        """
        for name, value in batch.items():
            rows = value.shape[0]
            if rows % self.size:
                lower = rows - rows % self.size
                raise ValueError(
                    f"The batch of node {name!r} has {rows} examples, which do not split over "
                    f"the {self.size} devices of the data-parallel mesh: use a batch size that "
                    f"is a multiple of {self.size} (e.g. {max(lower, self.size)})."
                )


def data_parallel(devices: int | Sequence[Any] | None = None, *, axis: str = "data") -> Parallel:
    """A one-axis mesh over `devices` (a count of the first local devices, a list of
    devices, or all of them) for `make_train_step(..., parallel=...)`.

    Raises:
        ValueError: more devices asked for than there are, naming how to get more.
    """
    if devices is None:
        chosen = list(jax.devices())
    elif isinstance(devices, int):
        chosen = _first_devices(devices, "devices")
    else:
        chosen = list(devices)
    # Auto axes: XLA propagates the shardings (the weight gradient's sum over the split
    # batch becomes its all-reduce) without sharding annotations in the model's code
    auto = (jax.sharding.AxisType.Auto,)
    mesh = jax.make_mesh((len(chosen),), (axis,), axis_types=auto, devices=chosen)
    return Parallel(mesh, axis)


def model_parallel(data: int, model: int, *, shard_above: int = 1 << 16) -> Parallel:
    """A (data x model) mesh of the first data * model devices: batches split over
    `data`, weights of at least `shard_above` entries split over `model`.

    Raises:
        ValueError: more devices asked for than there are.
    """
    check_at_least("data", data, 1)
    check_at_least("model", model, 1)
    devices = _first_devices(data * model, "data x model")
    auto = (jax.sharding.AxisType.Auto,) * 2
    mesh = jax.make_mesh((data, model), ("data", "model"), axis_types=auto, devices=devices)
    return Parallel(mesh, "data", "model", shard_above)


def _first_devices(count: int, setting: str) -> list[Any]:
    """The first `count` devices JAX sees.

    Raises:
        ValueError: `count` below 1 or above the devices there are, naming how to get more.
    """
    check_at_least(setting, count, 1)
    available = jax.devices()
    if count > len(available):
        raise ValueError(
            f"`{setting}` = {count}, but JAX sees {len(available)} "
            f"({available[0].platform}); use at most {len(available)}, or on a CPU start "
            f"Python with XLA_FLAGS=--xla_force_host_platform_device_count={count} "
            "(set before JAX is imported) to split the host into that many devices."
        )
    return list(available[:count])


def _global(value: Any, sharding: NamedSharding) -> jax.Array:
    """A global array from the whole `value` each process holds (each keeps its rows)."""
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process run (`jax.distributed.initialize`) before JAX starts a
    backend: `coordinator` is process 0's HOST:PORT, every process runs the same program.
    On CPUs the processes exchange over Gloo. Afterwards `jax.devices()` lists every
    process's devices, so `data_parallel()` spans them all.

    Raises:
        ValueError: a malformed address or a process id outside [0, num_processes).
    """
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"`coordinator` must be HOST:PORT of process 0 (e.g. 127.0.0.1:12355), got "
            f"{coordinator!r}."
        )
    check_at_least("num_processes", num_processes, 1)
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"`process_id` must lie in [0, {num_processes}) for {num_processes} processes, "
            f"got {process_id}; give each process its own id, 0 for the coordinator."
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)


_DEFAULT: contextvars.ContextVar[Parallel | None] = contextvars.ContextVar(
    "pcn_default_parallel", default=None
)


@contextlib.contextmanager
def use(parallel: Parallel | None) -> Iterator[None]:
    """Within the block, `make_train_step` without `parallel=` makes data-parallel steps
    over `parallel` (what `pcn run NAME --devices N` does for a whole experiment)."""
    token = _DEFAULT.set(parallel)
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def current() -> Parallel | None:
    """The data parallelism `make_train_step` uses when given none (see `use`)."""
    return _DEFAULT.get()
