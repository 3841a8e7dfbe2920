"""Print a hash of the optimised XLA program of the BP, PC T = 20 and PC T = 20 no-trace
steps of the reference MLP, and write each program's instructions (names and metadata
stripped) to /tmp/hlo_<label>_<step>.txt, to diff two commits: run
`python benchmarks/compare_compiled.py LABEL` with PYTHONPATH=<worktree>/src for each.
Used for the 2026-12-02 side-by-side figures in benchmarks/README.md."""

import hashlib
import re
import sys

import jax
import jax.numpy as jnp
import optax

from pcn.algorithms import BP, IL, make_train_step
from pcn.models import mlp

label = sys.argv[1] if len(sys.argv) > 1 else "run"
graph = mlp((784, 128, 128, 10), activation="tanh", key=jax.random.key(0))
batch = {"x": jnp.zeros((128, 784)), "y": jnp.zeros((128, 10))}
algorithms = {
    "bp": BP(),
    "pc_t20": IL(20, gamma=0.1),
    "pc_t20_no_trace": IL(20, gamma=0.1, record_energy=False),
}
for name, algorithm in algorithms.items():
    step = make_train_step(graph, algorithm, optax.adam(1e-3))
    text = step._compiled.lower(step.init(graph).leaves, batch, None).compile().as_text()
    instructions = [
        re.sub(r"%[A-Za-z_.0-9-]+", "%v", re.sub(r", metadata=\{[^}]*\}", "", line))
        for line in text.splitlines()
        if re.match(r"^\s*(ROOT )?%.* = ", line)
    ]
    joined = "\n".join(instructions)
    with open(f"/tmp/hlo_{label}_{name}.txt", "w") as f:
        f.write(joined)
    print(name, hashlib.sha256(joined.encode()).hexdigest()[:16], len(instructions), "instructions")
