"""Per-example layers to put on the edges of a `PCGraph` (or to run with plain backprop).

Every layer here is an Equinox module acting on ONE example: no batch axis. As the
module of an `Edge(module, parents, child)` it is called `module(*parent_values)` and
must return an array of the child node's per-example shape; the graph maps it over the
batch with `jax.vmap` and checks the shapes once, at construction. The same modules run
the forward pass of backprop (`pcn.BP`), so PC and BP share weights and initialisation.

Every `__call__` takes an ignored keyword `key=None`, so the layers also compose inside
`eqx.nn.Sequential` (which passes `key=` to each layer): one edge may hold a whole
`Sequential([MaxPool2d(2), Flatten(), Linear(...)])` when no value node is wanted in
between.

Images are channels-first, `(C, H, W)`; sequences are `(seq, dim)`.

Residual connections. In a graph, `x_out = x_in + g(x_in)` is simply TWO edges into the
same child, since a node's prediction is the sum of its incoming edges (thesis Eq. 2.1):
`Edge(Identity(), "a", "b")` and `Edge(g, "a", "b")` (see `residual_edges`). `Residual(g)`
is the same map as ONE edge, for when the two paths need not be separate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_at_least, check_choice
from .activations import Activation, get_activation
from .graph import Edge

# --- re-exported from Equinox: they already act on one example --------------------------
Linear = eqx.nn.Linear
"""`y = W x + b`, `W` of shape (out, in). `eqx.nn.Linear(in_features, out_features, *, key)`."""


class Conv2d(eqx.nn.Conv2d):
    """Channels-first 2-D convolution, `(C_in, H, W) -> (C_out, H', W')`:
    `y[o] = b[o] + sum_c W[o, c] * x[c]` (cross-correlation). The parameters, arguments
    and maths of `eqx.nn.Conv2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, ..., *, key)`; `padding` may be an int, pairs, or `"SAME"` / `"VALID"`.

    Computed channels-last (`(H, W, C)` and `(kh, kw, C_in, C_out)` inside): XLA's CPU
    backend runs a channels-first convolution inside a loop (and every relaxation is a
    `lax.scan`) through a generic path some 40x slower than its optimised one, which
    made an IL step of the thesis's CNN 9x slower (`benchmarks/conv_in_loop.py`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = (1, 1),
        padding: str | int | Sequence[int] | Sequence[tuple[int, int]] = (0, 0),
        dilation: int | Sequence[int] = (1, 1),
        groups: int = 1,
        use_bias: bool = True,
        padding_mode: str = "ZEROS",
        dtype: Any = None,
        *,
        key: jax.Array,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            use_bias, padding_mode, dtype, key=key,
        )  # fmt: skip

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        if x.ndim != 3:
            raise ValueError(
                f"Conv2d takes one example of shape (channels, height, width), got {x.shape}; "
                "a graph maps it over the batch itself."
            )
        if self.padding_mode != "ZEROS":
            x, padding = self._nonzero_pad(x), "VALID"
        else:
            padding = self.padding
        y = jax.lax.conv_general_dilated(
            jnp.transpose(x, (1, 2, 0))[None],
            jnp.transpose(self.weight, (2, 3, 1, 0)),
            window_strides=self.stride,
            padding=padding,
            rhs_dilation=self.dilation,
            feature_group_count=self.groups,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        y = jnp.transpose(y[0], (2, 0, 1))
        return y + self.bias if self.use_bias and self.bias is not None else y


Identity = eqx.nn.Identity
"""`y = x`: the edge of an identity node (levelling a graph) or of a residual skip."""


# --- pooling and shapes --------------------------------------------------------------------
class MaxPool2d(eqx.nn.MaxPool2d):
    """`y[c, i, j] = max over the window at (i, j) of x[c]`, on `(C, H, W)`.

    Like `eqx.nn.MaxPool2d`, except that `stride` defaults to `kernel_size` (windows that
    do not overlap, as in PyTorch and the papers' CNNs) instead of 1.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] | Sequence[tuple[int, int]] = 0,
        use_ceil: bool = False,
    ):
        super().__init__(kernel_size, kernel_size if stride is None else stride, padding, use_ceil)


class AvgPool2d(eqx.nn.AvgPool2d):
    """`y[c, i, j] = mean over the window at (i, j) of x[c]`, on `(C, H, W)`.

    Like `eqx.nn.AvgPool2d`, except that `stride` defaults to `kernel_size`.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] | Sequence[tuple[int, int]] = 0,
        use_ceil: bool = False,
    ):
        super().__init__(kernel_size, kernel_size if stride is None else stride, padding, use_ceil)


def _int_tuple(shape: int | Sequence[int]) -> tuple[int, ...] | None:
    """`shape` as a tuple of Python ints (numpy integers accepted); None if not integers."""
    shape = shape if isinstance(shape, Sequence) else (shape,)
    if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in shape):
        return None
    return tuple(int(s) for s in shape)


class Flatten(eqx.Module):
    """`y = vec(x)`: any per-example shape to `(x.size,)` (row-major)."""

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        return jnp.reshape(x, (-1,))


class Reshape(eqx.Module):
    """`y = reshape(x, shape)` per example; one entry of `shape` may be -1 (inferred)."""

    shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, shape: int | Sequence[int]):
        sizes = _int_tuple(shape)
        if sizes is None or any(s < -1 or s == 0 for s in sizes) or sizes.count(-1) > 1:
            raise ValueError(
                f"`shape` must be positive integers with at most one -1 (inferred), got {shape!r}."
            )
        self.shape = sizes

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        known = int(np.prod([s for s in self.shape if s != -1]))
        if (-1 in self.shape and x.size % known) or (-1 not in self.shape and x.size != known):
            raise ValueError(
                f"Reshape{self.shape} cannot take an input of shape {x.shape} ({x.size} entries)."
            )
        return jnp.reshape(x, self.shape)


# --- normalisation ------------------------------------------------------------------------
def _over_leading(f: Callable[[jax.Array], jax.Array], x: jax.Array, ndim: int) -> jax.Array:
    """Apply `f` (defined on the trailing `ndim` axes) to every leading index of `x`."""
    lead = x.shape[: x.ndim - ndim]
    flat = jnp.reshape(x, (-1, *x.shape[x.ndim - ndim :]))
    out = jax.vmap(f)(flat)
    return jnp.reshape(out, (*lead, *out.shape[1:]))


class LayerNorm(eqx.Module):
    """`y = (x - mean) / sqrt(var + eps) * gamma + beta`, statistics over the trailing
    axes given by `shape` (PyTorch's `normalized_shape`), separately for every index of
    the leading axes: `LayerNorm(dim)` on `(seq, dim)` normalises each token.

    Wraps `eqx.nn.LayerNorm`, which itself only accepts an input of exactly `shape`.
    """

    norm: eqx.nn.LayerNorm
    shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        eps: float = 1e-5,
        use_weight: bool = True,
        use_bias: bool = True,
    ):
        sizes = _int_tuple(shape)
        if not sizes or any(s < 1 for s in sizes):
            raise ValueError(f"`shape` must be one or more positive integers, got {shape!r}.")
        shape = sizes
        if not eps > 0:
            raise ValueError(f"`eps` must be > 0, got {eps!r}.")
        self.shape = shape
        self.norm = eqx.nn.LayerNorm(shape, eps=eps, use_weight=use_weight, use_bias=use_bias)

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        n = len(self.shape)
        if x.ndim < n or x.shape[x.ndim - n :] != self.shape:
            raise ValueError(
                f"LayerNorm{self.shape} normalises the trailing axes {self.shape}, but the input "
                f"has shape {x.shape}."
            )
        return _over_leading(self.norm, x, n)


# --- attention and transformer sub-blocks -------------------------------------------------
class MultiheadSelfAttention(eqx.Module):
    """Self-attention on one sequence, `(seq, dim) -> (seq, dim)`:

        y = W_o concat_h softmax(Q_h K_h^T / sqrt(dim / num_heads) + M) V_h,
        Q_h, K_h, V_h = x W_q^h, x W_k^h, x W_v^h,

    with `M[i, j] = -inf` for `j > i` when `causal` (position i sees positions <= i only)
    and `M = 0` otherwise. Wraps `eqx.nn.MultiheadAttention` (no dropout: PC needs a
    deterministic energy).
    """

    attention: eqx.nn.MultiheadAttention
    num_heads: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    causal: bool = eqx.field(static=True)

    def __init__(
        self,
        num_heads: int,
        dim: int,
        *,
        causal: bool,
        use_bias: bool = False,
        key: jax.Array,
    ):
        check_at_least("num_heads", num_heads, 1)
        check_at_least("dim", dim, 1)
        if dim % num_heads:
            raise ValueError(
                f"`num_heads` ({num_heads}) must divide `dim` ({dim}): each head attends in "
                "dim // num_heads dimensions."
            )
        self.num_heads = num_heads
        self.dim = dim
        self.causal = bool(causal)
        self.attention = eqx.nn.MultiheadAttention(
            num_heads,
            dim,
            use_query_bias=use_bias,
            use_key_bias=use_bias,
            use_value_bias=use_bias,
            use_output_bias=use_bias,
            key=key,
        )

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"MultiheadSelfAttention(dim={self.dim}) takes one sequence of shape "
                f"(seq, {self.dim}), got {x.shape}."
            )
        seq = x.shape[0]
        mask = jnp.tril(jnp.ones((seq, seq), dtype=bool)) if self.causal else None
        return self.attention(x, x, x, mask=mask)


class AttentionSublayer(eqx.Module):
    """The attention half of a pre-norm transformer block, WITHOUT its skip:
    `g(x) = MHSA(LayerNorm(x))` on `(seq, dim)`. The block's output is `x + g(x)`:
    two edges into one node (`residual_edges(g, parent, child)`) or `Residual(g)`."""

    norm: LayerNorm
    attention: MultiheadSelfAttention

    def __init__(self, dim: int, num_heads: int, *, causal: bool, key: jax.Array):
        self.attention = MultiheadSelfAttention(num_heads, dim, causal=causal, key=key)
        self.norm = LayerNorm(dim)

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        return self.attention(self.norm(x))


class MLPSublayer(eqx.Module):
    """The MLP half of a pre-norm transformer block, WITHOUT its skip, token by token:
    `g(x)_i = W_2 f(W_1 LayerNorm(x_i) + b_1) + b_2` on `(seq, dim)` (or `(dim,)`)."""

    norm: LayerNorm
    hidden: eqx.nn.Linear
    output: eqx.nn.Linear
    activation: Activation = eqx.field(static=True)

    def __init__(
        self, dim: int, hidden_size: int, *, activation: str | Activation = "gelu", key: jax.Array
    ):
        check_at_least("dim", dim, 1)
        check_at_least("hidden_size", hidden_size, 1)
        self.activation = get_activation(activation)
        k1, k2 = jax.random.split(key)
        self.norm = LayerNorm(dim)
        self.hidden = eqx.nn.Linear(dim, hidden_size, key=k1)
        self.output = eqx.nn.Linear(hidden_size, dim, key=k2)

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        def token(v: jax.Array) -> jax.Array:
            return self.output(self.activation(self.hidden(v)))

        return _over_leading(token, self.norm(x), 1)


class Residual(eqx.Module):
    """`y = x + g(x)` as ONE single-parent edge. The same map as the two edges
    `Identity` + `g` into one child (`residual_edges`), which give the skip path and `g`
    separate places in the graph; `g` must keep the shape of `x`."""

    inner: Callable[[jax.Array], jax.Array]

    def __init__(self, inner: Callable[[jax.Array], jax.Array]):
        if not callable(inner):
            raise ValueError(f"`inner` must be a callable module, got {type(inner).__name__}.")
        self.inner = inner

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        out = self.inner(x)
        if out.shape != x.shape:
            raise ValueError(
                f"Residual needs `inner` to keep the shape of its input: {x.shape} -> {out.shape}."
            )
        return x + out


def residual_edges(inner: Callable[[jax.Array], jax.Array], parent: str, child: str) -> list[Edge]:
    """`child = parent + inner(parent)` in a graph: an identity edge (the skip) and the
    `inner` edge, both into `child`, whose prediction is their sum (Eq. 2.1)."""
    return [Edge(Identity(), parent, child), Edge(inner, parent, child)]


class TransformerBlock(eqx.Module):
    """A pre-norm transformer block on `(seq, dim)`:

        h = x + MHSA(LayerNorm(x)),   y = h + MLP(LayerNorm(h)).

    For backprop, call it. For a PC graph with a value node after each half, take its
    pieces: `block.edges("x", "h", "y")` (identity + sub-layer edges into each node).
    """

    attention: AttentionSublayer
    mlp: MLPSublayer

    def __init__(
        self,
        dim: int,
        num_heads: int,
        hidden_size: int,
        *,
        causal: bool,
        activation: str | Activation = "gelu",
        key: jax.Array,
    ):
        k1, k2 = jax.random.split(key)
        self.attention = AttentionSublayer(dim, num_heads, causal=causal, key=k1)
        self.mlp = MLPSublayer(dim, hidden_size, activation=activation, key=k2)

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        h = x + self.attention(x)
        return h + self.mlp(h)

    def edges(self, source: str, middle: str, target: str) -> list[Edge]:
        """The four edges `source -> middle -> target` of this block in a graph."""
        return [
            *residual_edges(self.attention, source, middle),
            *residual_edges(self.mlp, middle, target),
        ]


# --- recurrent -----------------------------------------------------------------------------
ActivationSite = Literal["prediction", "parent"]


class RNNCell(eqx.Module):
    """One step of the many-to-one RNN of the thesis (ch. 3, Eqs. 3.5/3.9), a two-parent
    edge `(h_prev, x_t) -> h_t`:

    - `activation_site="prediction"` (default): `h_t = f(W_hh h_{t-1} + W_xh x_t + b)`;
      read out with `y = W_hy h_T` (a `Linear`).
    - `activation_site="parent"`, the thesis's form on pre-activations:
      `h_t = W_hh f(h_{t-1}) + W_xh x_t + b`; read out with `y = W_hy f(h_T)`
      (`eqx.nn.Sequential([eqx.nn.Lambda(f), Linear(...)])`).

    Both start from `h_0 = 0`. Unrolled in a graph, the edges into h_1..h_T should share
    ONE cell: name it, `PCGraph(..., shared={"cell": cell})` with `Edge("cell", ("h0",
    "x1"), "h1")`, ..., and provide `h0 = 0`. (The same object on several edges, or
    `RNNFirstStep(cell)`, gives copies of the weights that are trained separately.)
    """

    hh: eqx.nn.Linear
    xh: eqx.nn.Linear
    activation: Activation = eqx.field(static=True)
    activation_site: ActivationSite = eqx.field(static=True)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str | Activation = "tanh",
        activation_site: ActivationSite = "prediction",
        use_bias: bool = True,
        key: jax.Array,
    ):
        check_at_least("input_size", input_size, 1)
        check_at_least("hidden_size", hidden_size, 1)
        check_choice("activation_site", activation_site, ("prediction", "parent"))
        self.activation = get_activation(activation)
        k1, k2 = jax.random.split(key)
        self.hh = eqx.nn.Linear(hidden_size, hidden_size, use_bias=False, key=k1)
        self.xh = eqx.nn.Linear(input_size, hidden_size, use_bias=use_bias, key=k2)
        self.activation_site = activation_site

    @property
    def hidden_size(self) -> int:
        return self.hh.weight.shape[0]

    @property
    def input_size(self) -> int:
        return self.xh.weight.shape[1]

    def __call__(
        self, h_prev: jax.Array, x_t: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        if self.activation_site == "parent":
            return self.hh(self.activation(h_prev)) + self.xh(x_t)
        return self.activation(self.hh(h_prev) + self.xh(x_t))


class RNNFirstStep(eqx.Module):
    """`x_1 -> cell(0, x_1)`: the first edge of an unrolled RNN (h_0 = 0, Eq. 3.5), so
    the chain needs no `h0` node."""

    cell: RNNCell

    def __call__(self, x_t: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        return self.cell(jnp.zeros((self.cell.hidden_size,), x_t.dtype), x_t)


def rnn_hidden_states(cell: RNNCell, xs: jax.Array, h0: jax.Array | None = None) -> jax.Array:
    """`(h_1, ..., h_T)` of one sequence `xs` of shape `(T, input_size)`; `h_0 = 0` unless
    given. Returns shape `(T, hidden_size)`."""
    if xs.ndim != 2 or xs.shape[1] != cell.input_size:
        raise ValueError(
            f"`xs` must be one sequence of shape (T, {cell.input_size}), got {xs.shape}; "
            "map over a batch with jax.vmap."
        )
    if h0 is None:
        h0 = jnp.zeros((cell.hidden_size,), xs.dtype)

    def step(h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = cell(h, x)
        return h, h

    _, hs = jax.lax.scan(step, h0, xs)
    return hs


def rnn_forward(
    cell: RNNCell,
    readout: Callable[[jax.Array], jax.Array],
    xs: jax.Array,
    h0: jax.Array | None = None,
) -> jax.Array:
    """The many-to-one RNN on one sequence, `y = readout(h_T)` (Eq. 3.5), in plain JAX:
    the backprop reference for an unrolled chain of `cell` edges."""
    return readout(rnn_hidden_states(cell, xs, h0)[-1])


# --- sparse topologies ---------------------------------------------------------------------
class MaskedLinear(eqx.Module):
    """`y = (W * M) x + b` with a fixed binary mask `M` of shape (out, in).

    The mask is a boolean array: not a floating-point leaf, so `pcn.parameters`, the
    optimisers and `eqx.filter_grad` never treat it as a weight. The masked entries of `W`
    start at zero and get zero gradient, so they stay zero under any gradient-based update.
    """

    linear: eqx.nn.Linear
    mask: jax.Array

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mask: jax.Array | np.ndarray | Sequence[Sequence[float]],
        *,
        use_bias: bool = True,
        key: jax.Array,
    ):
        check_at_least("in_features", in_features, 1)
        check_at_least("out_features", out_features, 1)
        mask = np.asarray(mask)
        if mask.shape != (out_features, in_features):
            raise ValueError(
                f"`mask` must have shape (out_features, in_features) = "
                f"{(out_features, in_features)}, got {mask.shape}."
            )
        if mask.dtype != bool and not np.all((mask == 0) | (mask == 1)):
            raise ValueError("`mask` must be binary: every entry 0 or 1 (or a boolean array).")
        mask = jnp.asarray(mask.astype(bool))
        linear = eqx.nn.Linear(in_features, out_features, use_bias=use_bias, key=key)
        self.linear = eqx.tree_at(lambda m: m.weight, linear, jnp.where(mask, linear.weight, 0))
        self.mask = mask

    @property
    def weight(self) -> jax.Array:
        """The effective weight `W * M`."""
        return jnp.where(self.mask, self.linear.weight, 0)

    def __call__(self, x: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        y = self.weight @ x
        return y if self.linear.bias is None else y + self.linear.bias
