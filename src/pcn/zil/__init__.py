"""Z-IL on any JAX function: exact backprop by predictive coding (thesis chapter 3).

`grad(fn)(params, x, y)` traces `fn(params, x)` into a computational graph with
one vertex per elementary operation (`trace`), levels it with identity vertices
(Algorithm 4, `level`), and runs Z-IL (Algorithm 5) on it: the result equals
`jax.grad` of 1/2 sum((fn(params, x) - y) ** 2) (Theorem 5).  `simulate` runs the
full inference dynamics, with the ablations of the papers; `graph_info` reports
the graph's depth and levelling.
"""

from .api import GraphInfo as GraphInfo
from .api import grad as grad
from .api import graph_info as graph_info
from .api import simulate as simulate

__all__ = ["GraphInfo", "grad", "graph_info", "simulate"]
