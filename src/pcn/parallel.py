"""Data-parallel training on JAX's own sharding: the batch is split over the devices of
a mesh axis, the weights, optimiser state and carry are replicated, and XLA partitions
the one compiled step. A relaxation moves each example's values by its own errors, so
it needs no communication; the weight update averages over the batch, which becomes one
all-reduce per update. No `pmap`, no hand-written collectives.

>>> import jax
>>> parallel = data_parallel(1)  # a one-device mesh; `data_parallel()` takes every device
>>> parallel.size
1
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._validation import check_at_least


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """A mesh and the axis the batch is split over."""

    mesh: Mesh
    axis: str = "data"

    @property
    def size(self) -> int:
        """Devices the batch is split over."""
        return int(self.mesh.shape[self.axis])

    @property
    def replicated(self) -> NamedSharding:
        """Every device holds the whole array (weights, optimiser state, carry, key)."""
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def split(self) -> NamedSharding:
        """The leading (example) axis split over the mesh axis: a batch's sharding."""
        return NamedSharding(self.mesh, PartitionSpec(self.axis))

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


def data_parallel(
    devices: int | Sequence[Any] | None = None, *, axis: str = "data"
) -> DataParallel:
    """A one-axis mesh over `devices` (a count of the first local devices, a list of
    devices, or all of them) for `make_train_step(..., parallel=...)`.

    Raises:
        ValueError: more devices asked for than there are, naming how to get more.
    """
    available = jax.devices()
    if devices is None:
        chosen = list(available)
    elif isinstance(devices, int):
        check_at_least("devices", devices, 1)
        if devices > len(available):
            raise ValueError(
                f"`devices` = {devices}, but JAX sees {len(available)} "
                f"({available[0].platform}); use at most {len(available)}, or on a CPU start "
                f"Python with XLA_FLAGS=--xla_force_host_platform_device_count={devices} "
                "(set before JAX is imported) to split the host into that many devices."
            )
        chosen = list(available[:devices])
    else:
        chosen = list(devices)
    return DataParallel(jax.make_mesh((len(chosen),), (axis,), devices=chosen), axis)


_DEFAULT: contextvars.ContextVar[DataParallel | None] = contextvars.ContextVar(
    "pcn_default_parallel", default=None
)


@contextlib.contextmanager
def use(parallel: DataParallel | None) -> Iterator[None]:
    """Within the block, `make_train_step` without `parallel=` makes data-parallel steps
    over `parallel` (what `pcn run NAME --devices N` does for a whole experiment)."""
    token = _DEFAULT.set(parallel)
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def current() -> DataParallel | None:
    """The data parallelism `make_train_step` uses when given none (see `use`)."""
    return _DEFAULT.get()
