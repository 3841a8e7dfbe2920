"""Two processes on 127.0.0.1 (`jax.distributed`, CPU devices over Gloo) train a few
data-parallel steps that equal a single-process run's; a malformed multi-process setting
names the fix."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from pcn.parallel import initialize_distributed

SCRIPT = textwrap.dedent(
    """
    import sys
    from pcn.parallel import initialize_distributed

    port, rank = sys.argv[1], int(sys.argv[2])
    if rank >= 0:
        initialize_distributed(f"127.0.0.1:{port}", 2, rank)
    import jax, jax.numpy as jnp, numpy as np, optax, pcn

    graph = pcn.mlp((10, 16, 4), activation="tanh", key=jax.random.key(0))
    rng = np.random.default_rng(0)
    batches = [
        {"x": rng.normal(size=(16, 10)).astype(np.float32),
         "y": rng.normal(size=(16, 4)).astype(np.float32)}
        for _ in range(4)
    ]
    parallel = pcn.data_parallel() if rank >= 0 else None
    step = pcn.make_train_step(graph, pcn.IL(3, gamma=0.1), optax.adam(1e-2), parallel=parallel)
    state = step.init(graph)
    for i in range(10):
        state, info = step(state, batches[i % 4])
    weights = np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(step.graph(state))])
    print(len(jax.devices()), " ".join(f"{w:.9g}" for w in weights[:50]))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_data_parallel_like_one():
    port = str(_free_port())
    run = [sys.executable, "-c", SCRIPT, port]
    workers = [subprocess.Popen([*run, str(rank)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for rank in (0, 1)]  # fmt: skip
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    single = subprocess.run([*run, "-1"], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    # the last line (Gloo announces its connections on stdout before it)
    (devices0, *w0), (devices1, *w1) = (out.strip().splitlines()[-1].split() for out, _ in outputs)
    devices, *w = single.stdout.strip().splitlines()[-1].split()
    assert (devices0, devices1, devices) == ("2", "2", "1")
    assert w0 == w1  # both processes hold the same replicated weights
    assert max(abs(float(a) - float(b)) for a, b in zip(w0, w, strict=True)) < 1e-6


@pytest.mark.parametrize(
    ("coordinator", "processes", "rank", "message"),
    [
        ("127.0.0.1", 2, 0, "HOST:PORT"),
        ("127.0.0.1:1234", 2, 2, r"`process_id` must lie in \[0, 2\)"),
    ],
)
def test_bad_distributed_settings_are_refused_naming_the_fix(coordinator, processes, rank, message):
    with pytest.raises(ValueError, match=message):
        initialize_distributed(coordinator, processes, rank)
