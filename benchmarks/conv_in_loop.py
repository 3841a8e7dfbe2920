"""What computing convolutions channels-last (`pcn.layers.Conv2d`) buys on XLA's CPU
backend against Equinox's channels-first `eqx.nn.Conv2d`, the same maths: a training step
of the thesis's CNN (3x3 convolutions 64-128-64 with 2x2 max pooling, dense 128, tanh;
CIFAR-10 shapes, batch 64, Adam) by BP and by IL with T = 10 (a relaxation is a
`lax.scan`), 5 rounds of 3 steps of every case in turns; then iPC (`pcn.PPC`, T = 10,
k = 1: convolutions' weight gradients inside the loop) looped and unrolled, 2 rounds of
one step. One process; medians, and ratios within each round.
Run: `python benchmarks/conv_in_loop.py`."""

import json
import statistics

import equinox as eqx
import jax
from reference import cifar_batch, median_ratio, runner, timed_rounds  # shared (this folder)

import pcn
from pcn import layers


def channels_first(graph: pcn.PCGraph) -> pcn.PCGraph:
    """`graph` with every `pcn.layers.Conv2d` swapped for an `eqx.nn.Conv2d` holding the
    same weights (the layer Equinox users would write)."""

    def swap(leaf):
        if not isinstance(leaf, layers.Conv2d):
            return leaf
        plain = eqx.nn.Conv2d(
            leaf.in_channels, leaf.out_channels, leaf.kernel_size, leaf.stride, leaf.padding,
            key=jax.random.key(0),
        )  # fmt: skip
        return eqx.tree_at(lambda c: (c.weight, c.bias), plain, (leaf.weight, leaf.bias))

    return jax.tree.map(swap, graph, is_leaf=lambda x: isinstance(x, layers.Conv2d))


graph = pcn.cnn(
    (3, 32, 32), channels=(64, 128, 64), hidden=128, classes=10, activation="tanh",
    key=jax.random.key(0),
)  # fmt: skip
batch = cifar_batch(64)


def on_cnn(g, algorithm):
    """The shared `runner` of `algorithm` (Adam 1e-4) on the CNN `g` and its one batch."""
    return runner(algorithm, 1e-4, model=g, data=[batch])


cases = {}
for algo_name, algorithm in (("bp", pcn.BP()), ("il_t10", pcn.IL(10, gamma=0.1))):
    cases[f"{algo_name}_channels_last"] = on_cnn(graph, algorithm)
    cases[f"{algo_name}_channels_first"] = on_cnn(channels_first(graph), algorithm)
times = timed_rounds(cases, warmup=2, rounds=5, calls=3)
print(json.dumps({name: round(statistics.median(t), 1) for name, t in times.items()}))
for algo_name in ("bp", "il_t10"):
    ratio = median_ratio(times, f"{algo_name}_channels_first", f"{algo_name}_channels_last")
    print(f"{algo_name}: channels-first / channels-last {ratio:.1f}x")

ppc = {
    "ppc_k1_looped": on_cnn(graph, pcn.PPC(10, weight_every=1, gamma=0.1)),
    "ppc_k1_unrolled": on_cnn(graph, pcn.PPC(10, weight_every=1, gamma=0.1, unroll=True)),
}
ppc_times = timed_rounds(ppc, warmup=1, rounds=2, calls=1)
print(json.dumps({name: round(statistics.median(t), 1) for name, t in ppc_times.items()}))
ratio = median_ratio(ppc_times, "ppc_k1_looped", "ppc_k1_unrolled")
print(f"ppc_k1: looped / unrolled {ratio:.1f}x")
