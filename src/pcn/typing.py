"""Shape-annotated array types of pcn's public signatures (jaxtyping).

The strings name dimensions: `batch` examples, a node's own axes (`...`), the `steps` of
a relaxation. To a type checker each alias is the array type it annotates; at run time
the shapes are checked only where you ask (`jaxtyping.jaxtyped`, or `isinstance` inside
a `with jaxtyping.jaxtyped("context"):` block, as the tests do).

>>> import jax.numpy as jnp
>>> isinstance(jnp.zeros((4, 3)), NodeArray), isinstance(jnp.zeros((4, 3)), PerExample)
(True, False)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, Shaped

NodeArray = Shaped[Array, "batch ..."]
"""One node's values for a batch, `(batch, *node.shape)`."""

Values = dict[str, NodeArray]
"""Values of nodes by name: `{name: (batch, *node.shape)}`."""

ValuesIn = Mapping[str, NodeArray]
"""Values of nodes by name, as an argument (any mapping)."""

PerExample = Float[Array, " batch"]
"""One number per example, such as its energy (thesis Eq. 2.3)."""

Scalar = Float[Array, ""]
"""A 0-d float, such as a mean energy or a loss."""

EnergyTrace = Float[Array, " steps"]
"""Mean energy per example along a relaxation, one entry per recorded step."""

StepCount = Int[Array, ""]
"""A 0-d integer count of relaxation steps."""

ExampleSteps = Int[Array, " batch"]
"""Relaxation steps each example moved."""

Flag = Bool[Array, ""]
"""A 0-d boolean, such as whether every example converged."""

ExampleFlags = Bool[Array, " batch"]
"""A yes/no per example, such as whether its relaxation converged."""

Mask = Bool[Array, "..."] | Bool[np.ndarray, "..."]
"""Booleans that broadcast to a node's values (True: the element is held)."""

Labels = Int[Array, " batch"] | Float[Array, "batch classes"] | Int[np.ndarray, " batch"]
"""Class indices `(batch,)` or one-hot rows `(batch, classes)`."""

OneHot = Float[Array, "batch classes"]
"""One-hot rows, `(batch, classes)`."""

Key = PRNGKeyArray
"""A JAX random key."""

__all__ = [
    "EnergyTrace",
    "ExampleFlags",
    "ExampleSteps",
    "Flag",
    "Key",
    "Labels",
    "Mask",
    "NodeArray",
    "OneHot",
    "PerExample",
    "Scalar",
    "StepCount",
    "Values",
    "ValuesIn",
]
