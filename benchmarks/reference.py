"""The reference configuration the step benchmarks share: the MLP 784-128-128-10 (tanh)
and ten random batches of 128 (uniform pixels, one-hot labels), seeded."""

import jax
import jax.numpy as jnp
import numpy as np

from pcn.models import mlp

graph = mlp((784, 128, 128, 10), activation="tanh", key=jax.random.key(0))
_rng = np.random.default_rng(0)
batches = [
    {
        "x": jnp.asarray(_rng.uniform(size=(128, 784)), jnp.float32),
        "y": jnp.asarray(np.eye(10)[_rng.integers(0, 10, 128)], jnp.float32),
    }
    for _ in range(10)
]
