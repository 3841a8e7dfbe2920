"""Hopfield networks: used as a classifier (thesis Table 5.1, after Belyaev & Velichko),
and as the classic associative memory (thesis section 4.2.1, `hopfield_memory`).

Bipolar neurons `s in {-1, +1}` for the pixels (binarised at `threshold`) and the labels
(+1 for the class, -1 elsewhere), fully connected with symmetric weights and no
self-connections. Training is Hebb's rule, `W = <s s^T>` over the training set (diagonal
zero), accumulated batch by batch. Classification is a query by conditioning: the pixel
neurons are held at the test image, the label neurons start at -1 and are updated
synchronously, `s_l <- sign(sum_j W_lj s_j)`, until no neuron changes (or `max_steps`);
the predicted class is the label neuron with the largest local field at that state.

Hebb's rule needs the state of every neuron, so the network has no hidden neurons: it is
the fully connected graph on the pixel and label neurons of the PC graph.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_at_least
from ..associative.keys import Key
from ..associative.protocol import Recall, check_key


class Hopfield(eqx.Module):
    """Hebbian sums `<s s^T>` (accumulated `total` over `count` patterns)."""

    total: jax.Array  # (n, n): sum over patterns of s s^T
    count: jax.Array  # (): number of patterns seen
    sensory: int = eqx.field(static=True)
    labels: int = eqx.field(static=True)
    threshold: float = eqx.field(static=True)

    @property
    def weight(self) -> jax.Array:
        """`W = <s s^T>` with a zero diagonal (no neuron connects to itself)."""
        w = self.total / jnp.maximum(self.count, 1)
        return w * (1 - jnp.eye(w.shape[0], dtype=w.dtype))


class Classification(NamedTuple):
    """Predicted classes, the synchronous updates each example took, and whether its
    label neurons reached a fixed point within the cap."""

    output: jax.Array  # (batch,) int
    steps: jax.Array  # (batch,) int
    converged: jax.Array  # (batch,) bool


def hopfield(sensory: int, labels: int, *, threshold: float = 0.5) -> Hopfield:
    """An untrained network of `sensory + labels` neurons (no patterns stored yet)."""
    check_at_least("sensory", sensory, 1)
    check_at_least("labels", labels, 2, hint="A classifier needs at least two classes.")
    n = sensory + labels
    dtype = jnp.result_type(float)
    return Hopfield(jnp.zeros((n, n), dtype), jnp.zeros((), dtype), sensory, labels, threshold)


def _check_inputs(net: Hopfield, pixels: jax.Array) -> None:
    if pixels.ndim != 2 or pixels.shape[1] != net.sensory:
        raise ValueError(
            f"The Hopfield network has {net.sensory} pixel neurons and expects images of "
            f"shape (batch, {net.sensory}), got {tuple(pixels.shape)}; flatten the images."
        )


def states(net: Hopfield, pixels: jax.Array, labels: jax.Array) -> jax.Array:
    """Bipolar states `(batch, n)` of images and class indices."""
    _check_inputs(net, pixels)
    if labels.shape != (pixels.shape[0],):
        raise ValueError(
            f"Expected one class index per image, shape ({pixels.shape[0]},), "
            f"got {tuple(labels.shape)}."
        )
    s_pix = jnp.where(pixels > net.threshold, 1.0, -1.0)
    s_lab = 2.0 * jax.nn.one_hot(labels, net.labels) - 1.0
    return jnp.concatenate([s_pix, s_lab], axis=1).astype(net.total.dtype)


@jax.jit
def train_step(net: Hopfield, pixels: jax.Array, labels: jax.Array) -> Hopfield:
    """Store a batch by Hebb's rule: add `sum_b s_b s_b^T` to the running sums."""
    s = states(net, pixels, labels)
    return eqx.tree_at(
        lambda m: (m.total, m.count), net, (net.total + s.T @ s, net.count + s.shape[0])
    )


def classify(net: Hopfield, pixels: jax.Array, *, max_steps: int = 100) -> Classification:
    """Hold the pixel neurons at `pixels` (binarised), relax the label neurons by
    synchronous sign updates to a fixed point, predict the largest label field."""
    _check_inputs(net, pixels)
    check_at_least("max_steps", max_steps, 1)
    return _classify(net, pixels, jnp.asarray(max_steps))


@jax.jit
def _classify(net: Hopfield, pixels: jax.Array, max_steps: jax.Array) -> Classification:
    w = net.weight
    s_pix = jnp.where(pixels > net.threshold, 1.0, -1.0).astype(w.dtype)
    w_lab = w[net.sensory :]  # (labels, n): fields of the label neurons
    from_pixels = s_pix @ w_lab[:, : net.sensory].T  # fixed while the pixels are held
    w_ll = w_lab[:, net.sensory :]

    def field(s_lab):
        return from_pixels + s_lab @ w_ll.T

    def cond(carry):
        _, t, done, _ = carry
        return (t < max_steps) & ~jnp.all(done)

    def body(carry):
        s_lab, t, done, taken = carry
        h = field(s_lab)
        new = jnp.where(h >= 0, 1.0, -1.0).astype(s_lab.dtype)
        new = jnp.where(done[:, None], s_lab, new)
        stable = jnp.all(new == s_lab, axis=1)
        return new, t + 1, done | stable, taken + (~done)

    batch = pixels.shape[0]
    start = -jnp.ones((batch, net.labels), w.dtype)
    none = jnp.zeros(batch, bool)
    init = (start, jnp.zeros((), int), none, jnp.zeros(batch, int))
    s_lab, _, done, taken = jax.lax.while_loop(cond, body, init)
    return Classification(jnp.argmax(field(s_lab), axis=1), taken, done)


class HopfieldMemory(eqx.Module):
    """The classic binary Hopfield network as an associative memory (Hopfield 1982):
    Hebb's rule on the bipolar images, asynchronous sign updates to a fixed point."""

    weight: jax.Array  # (d, d), zero diagonal
    threshold: float = eqx.field(static=True, default=0.5)
    max_sweeps: int = eqx.field(static=True, default=100)

    @property
    def pixels(self) -> int:
        return int(self.weight.shape[0])

    def recall(self, key: Key) -> Recall:
        """Start at the binarised key (the unknown pixels of a partial key at 0, i.e. -1),
        update the free neurons one at a time, `s_i <- sign(sum_j W_ij s_j)`, in sweeps
        until a sweep changes none (or `max_sweeps`); images in {0, 1}."""
        check_key(self, key)
        image = jnp.asarray(key.image, self.weight.dtype)
        free = jnp.ones(image.shape, bool) if key.known is None else ~jnp.asarray(key.known)
        s, sweeps = _recall_memory(self, jnp.where(image > self.threshold, 1.0, -1.0), free)
        return Recall(np.asarray((s + 1) / 2), np.asarray(sweeps))


def hopfield_memory(
    images: np.ndarray, *, threshold: float = 0.5, max_sweeps: int = 100
) -> HopfieldMemory:
    """Store `images` `(N, d)` (binarised at `threshold`): `W = <s s^T>`, zero diagonal."""
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[0] == 0:
        raise ValueError(f"Images to store must be (N, d) with N >= 1, got shape {images.shape}.")
    check_at_least("max_sweeps", max_sweeps, 1)
    s = np.where(images > threshold, 1.0, -1.0)
    weight = s.T @ s / len(s)
    np.fill_diagonal(weight, 0.0)
    return HopfieldMemory(jnp.asarray(weight, jnp.result_type(float)), threshold, max_sweeps)


@jax.jit
def _recall_memory(
    net: HopfieldMemory, s: jax.Array, free: jax.Array
) -> tuple[jax.Array, jax.Array]:
    w = net.weight

    def update(state, i):
        field = state @ w[:, i]
        new = jnp.where(free[:, i], jnp.where(field >= 0, 1.0, -1.0), state[:, i])
        return state.at[:, i].set(new), None

    def cond(carry):
        _, done, _, changed = carry
        return (done < net.max_sweeps) & jnp.any(changed)

    def body(carry):
        state, done, sweeps, changed = carry
        new, _ = jax.lax.scan(update, state, jnp.arange(w.shape[0]))
        moved = jnp.any(new != state, axis=1)
        return new, done + 1, sweeps + changed.astype(sweeps.dtype), moved

    batch = s.shape[0]
    start = (s, 0, jnp.zeros(batch, jnp.int32), jnp.ones(batch, bool))
    s, _, sweeps, _ = jax.lax.while_loop(cond, body, start)
    return s, sweeps
