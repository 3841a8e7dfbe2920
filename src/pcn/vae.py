"""A fully connected variational autoencoder as one `PCGraph`, trainable by PC (F_KL) and
by backprop through the same graph (`papers/pc-beyond-gaussian-distributions.md`,
section 4.2, Fig. 4 right).

    x -> e_1 .. e_k -> z = [u, log sigma^2] --(u + eps * sigma)--> d_k .. d_1 -> y

`x` (the image, a root) and `y` (the reconstruction target, clamped to the same image)
are data; `eps` is a root node holding the reparameterisation noise, given with the batch:
drawn once per data point before relaxation and clamped, so it stays fixed through it.
Hidden nodes are Gaussian (identity covariance) with Hardtanh predictions; `z` has the
`ReparamGaussian` energy (KL to the encoder's prediction plus KL to the N(0, I) prior);
`y` is Gaussian with a sigmoid prediction. At the forward pass every hidden energy is zero,
so the graph's energy there is the usual VAE loss, reconstruction + KL to the prior:
`pcn.BP(loss="forward_energy")` trains that loss by backprop, `pcn.IL` minimises F_KL by relaxation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_at_least, check_positive
from .energies import DiagonalGaussian, Gaussian, ReparamGaussian
from .graph import Edge, Node, PCGraph
from .init import forward_init
from .layers import Linear
from .losses import forward_energy

INPUT, LATENT, NOISE, OUTPUT = "x", "z", "eps", "y"


class Reparameterise(eqx.Module):
    """Edge module from the bottleneck: `linear(u + eps * exp(log_var / 2))`, where the
    bottleneck value is [u, log_var] and `eps` is the noise node's value."""

    linear: Linear

    def __call__(
        self, params: jax.Array, eps: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        u, log_var = jnp.split(params, 2, axis=-1)
        return self.linear(u + eps * jnp.exp(0.5 * log_var))


def vae_mlp(
    inputs: int,
    *,
    hidden: Sequence[int] = (256,),
    latent: int = 16,
    output_variance: float = 1.0,
    hidden_variance: float = 1.0,
    prior_weight: float = 1.0,
    key: jax.Array,
) -> PCGraph:
    """The VAE graph: encoder `inputs -> hidden... -> 2 * latent`, decoder mirrored.

    Args:
        inputs: data dimension (784 for MNIST).
        hidden: widths of the encoder's Hardtanh layers (the decoder uses them reversed).
        latent: latent units (the bottleneck node holds 2 * latent: means, log-variances).
        output_variance: variance of the Gaussian output energy (1: the paper's identity).
        hidden_variance: variance of the hidden layers' Gaussian energies (1: identity);
            the bottleneck's KL to the encoder's prediction is weighted by its inverse too.
            Smaller is stiffer: hidden values move less in relaxation and their
            precision-weighted errors carry the backprop signal (PC closer to BP).
        prior_weight: weight of the KL to the prior in the bottleneck energy (1: the VAE).
        key: initialisation key.
    """
    check_at_least("inputs", inputs, 1)
    check_at_least("latent", latent, 1, hint="The paper uses 16 (16 means + 16 log-variances).")
    for width in hidden:
        check_at_least("hidden width", width, 1, hint="Pass e.g. `hidden=(256,)`.")
    check_positive("output_variance", output_variance, hint="Use 1.0 for identity covariance.")
    check_positive("hidden_variance", hidden_variance, hint="Use 1.0 for identity covariance.")
    hidden_energy = Gaussian(precision=1.0 / hidden_variance)
    enc = [f"e{i + 1}" for i in range(len(hidden))]
    dec = [f"d{i + 1}" for i in range(len(hidden))][::-1]  # d_k next to z, d_1 next to y
    dec_widths = list(hidden)[::-1]
    nodes = [Node(INPUT, inputs), Node(NOISE, latent)]
    nodes += [
        Node(n, w, activation="hard_tanh", energy=hidden_energy)
        for n, w in zip(enc, hidden, strict=True)
    ]
    bottleneck = ReparamGaussian(prior_weight, precision=1.0 / hidden_variance)
    nodes.append(Node(LATENT, 2 * latent, energy=bottleneck))
    nodes += [
        Node(n, w, activation="hard_tanh", energy=hidden_energy)
        for n, w in zip(dec, dec_widths, strict=True)
    ]
    out_energy = Gaussian() if output_variance == 1.0 else DiagonalGaussian(output_variance)
    nodes.append(Node(OUTPUT, inputs, activation="sigmoid", energy=out_energy))

    chain_in = [INPUT, *enc, LATENT]
    widths_in = [inputs, *hidden, 2 * latent]
    chain_out = [*dec, OUTPUT]
    widths_out = [*dec_widths, inputs]
    keys = iter(jax.random.split(key, len(chain_in) + len(chain_out)))
    edges = [
        Edge(Linear(widths_in[i], widths_in[i + 1], key=next(keys)), chain_in[i], chain_in[i + 1])
        for i in range(len(chain_in) - 1)
    ]
    edges.append(
        Edge(
            Reparameterise(Linear(latent, widths_out[0], key=next(keys))),
            (LATENT, NOISE),
            chain_out[0],
        )
    )
    edges += [
        Edge(
            Linear(widths_out[i], widths_out[i + 1], key=next(keys)),
            chain_out[i],
            chain_out[i + 1],
        )
        for i in range(len(chain_out) - 1)
    ]
    return PCGraph(nodes, edges)


def latent_size(graph: PCGraph) -> int:
    """Number of latent units of a `vae_mlp` graph (half the bottleneck node)."""
    return graph.node(NOISE).shape[0]


def vae_batch(graph: PCGraph, seed: int) -> Callable[[np.ndarray, np.ndarray], dict]:
    """Batch maker for `pcn.train_epoch`: the images go to `x` and `y`, fresh N(0, I)
    noise (one draw per data point, from a generator seeded with `seed`) to `eps`."""
    rng = np.random.default_rng(seed)
    latent = latent_size(graph)

    def make(xb: np.ndarray, yb: np.ndarray) -> dict:
        eps = rng.standard_normal((len(xb), latent)).astype(xb.dtype)
        x = jnp.asarray(xb)
        return {INPUT: x, OUTPUT: x, NOISE: jnp.asarray(eps)}

    return make


@eqx.filter_jit
def _forward_energy(graph: PCGraph, batch: Mapping[str, jax.Array]) -> jax.Array:
    return forward_energy(graph, batch)


def vae_loss(graph: PCGraph, x: np.ndarray, *, seed: int = 0, chunk: int = 2000) -> float:
    """Mean VAE loss per example on data `x` (reconstruction + KL to the prior, one noise
    draw per example from `seed`): the same number for a BP- or PC-trained `vae_mlp` graph."""
    eps = np.random.default_rng(seed).standard_normal((len(x), latent_size(graph)))
    total = 0.0
    for i in range(0, len(x), chunk):
        xb = jnp.asarray(x[i : i + chunk])
        batch = {INPUT: xb, OUTPUT: xb, NOISE: jnp.asarray(eps[i : i + chunk], xb.dtype)}
        total += float(jnp.sum(_forward_energy(graph, batch)))
    return total / len(x)


@eqx.filter_jit
def encode(graph: PCGraph, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Posterior parameters (u, log sigma^2) of `x` by the encoder's forward pass."""
    noise = jnp.zeros((x.shape[0], latent_size(graph)), x.dtype)
    params = forward_init(graph, {INPUT: x, NOISE: noise})[LATENT]
    u, log_var = jnp.split(params, 2, axis=-1)
    return u, log_var


@eqx.filter_jit
def decode(graph: PCGraph, z: jax.Array) -> jax.Array:
    """The decoder's output (the sigmoid mean of the reconstruction) for latent codes `z`."""
    params = jnp.concatenate([z, jnp.zeros_like(z)], axis=-1)
    values = forward_init(graph, {LATENT: params, NOISE: jnp.zeros_like(z)})
    return values[OUTPUT]
