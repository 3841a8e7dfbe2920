"""Builders for the architectures of the papers, as `PCGraph`s.

Node names follow one convention: `"x"` is the data (input of a discriminative network,
sensory layer of a generative one), `"y"` the label/output, `"h1"`, `"h2"`, ... hidden
layers counted from the input, `"z"` the top latent of a generative network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax

from ._validation import check_at_least, check_choice
from .activations import Activation, get_activation
from .energies import Categorical, Gaussian
from .graph import Edge, Node, PCGraph

ActivationSite = Literal["prediction", "parent"]


def _linear_edge(
    n_in: int,
    n_out: int,
    *,
    activation: Activation | None,
    bias: bool,
    key: jax.Array,
) -> eqx.nn.Linear | eqx.nn.Sequential:
    """A linear map; with `activation`, the map is applied to `activation(parent)`."""
    linear = eqx.nn.Linear(n_in, n_out, use_bias=bias, key=key)
    if activation is None:
        return linear
    return eqx.nn.Sequential([eqx.nn.Lambda(activation), linear])


def _chain(
    names: Sequence[str],
    sizes: Sequence[int],
    activations: Sequence[Activation],
    *,
    output_energy: Gaussian | Categorical,
    activation_site: ActivationSite,
    bias: bool,
    key: jax.Array,
) -> PCGraph:
    """A chain names[0] -> names[1] -> ...; `activations[i]` belongs to layer i + 1.

    With `activation_site="parent"` a hidden layer's activation moves onto its outgoing
    edge (mu = W f(x) + b); the output layer keeps its own on its prediction.
    """
    check_choice("activation_site", activation_site, ("prediction", "parent"))
    keys = jax.random.split(key, len(sizes) - 1)
    nodes = [Node(names[0], sizes[0])]
    edges = []
    for i in range(1, len(sizes)):
        f = activations[i - 1]
        is_output = i == len(sizes) - 1
        on_prediction = activation_site == "prediction"
        nodes.append(
            Node(
                names[i],
                sizes[i],
                energy=output_energy if is_output else Gaussian(),
                activation=f if on_prediction or is_output else "identity",
            )
        )
        # thesis convention mu_l = W f(x_{l+1}): the parent's nonlinearity sits on the edge
        parent_f = None if on_prediction or i == 1 else activations[i - 2]
        edges.append(
            Edge(
                _linear_edge(
                    sizes[i - 1], sizes[i], activation=parent_f, bias=bias, key=keys[i - 1]
                ),
                names[i - 1],
                names[i],
            )
        )
    return PCGraph(nodes, edges)


def mlp(
    sizes: Sequence[int],
    *,
    key: jax.Array,
    activation: str | Activation = "tanh",
    output: Literal["gaussian", "categorical"] = "gaussian",
    output_activation: str | Activation = "identity",
    output_precision: float = 1.0,
    activation_site: ActivationSite = "prediction",
    bias: bool = True,
) -> PCGraph:
    """A discriminative MLP: input `"x"` (clamped to data) -> `"h1"` ... -> output `"y"`
    (clamped to the label during training).

    Args:
        sizes: widths from input to output, e.g. `[784, 128, 128, 10]`.
        activation: nonlinearity of the hidden layers.
        output: energy of the output node: `"gaussian"` (squared error) or
            `"categorical"` (softmax cross-entropy).
        output_activation: applied to the output prediction (Gaussian output only).
        output_precision: precision (1 / variance) of a Gaussian output's energy. Below 1
            the clamped label pulls the hidden values less far from the forward pass, so
            the weight update stays closer to backprop's direction.
        activation_site: `"prediction"`: mu_l = f(W x_{l-1} + b) (PCX's convention);
            `"parent"`: mu_l = W f(x_{l-1}) + b (thesis Eq. 2.1) for hidden parents; the
            input is used as it is (mu_1 = W x + b), unlike the thesis, which also
            applies f to the clamped input.
        bias: whether the linear maps have a bias.

    >>> graph = mlp([4, 8, 3], key=jax.random.key(0))
    >>> [(node.name, node.shape) for node in graph.nodes]
    [('x', (4,)), ('h1', (8,)), ('y', (3,))]
    """
    check_at_least("len(sizes)", len(sizes), 2, hint="An MLP needs an input and an output size.")
    check_choice("output", output, ("gaussian", "categorical"))
    hidden = len(sizes) - 2
    names = ["x", *[f"h{i}" for i in range(1, hidden + 1)], "y"]
    f = get_activation(activation)
    out_f = get_activation(output_activation)
    if output == "categorical" and out_f is not get_activation("identity"):
        raise ValueError(
            "`output_activation` must be 'identity' for a categorical output: its "
            "prediction holds logits and the energy applies the softmax."
        )
    energy = Categorical() if output == "categorical" else Gaussian(precision=output_precision)
    return _chain(
        names,
        sizes,
        [*([f] * hidden), out_f],
        output_energy=energy,
        activation_site=activation_site,
        bias=bias,
        key=key,
    )


def generative_mlp(
    sizes: Sequence[int],
    *,
    key: jax.Array,
    activation: str | Activation = "tanh",
    output_activation: str | Activation = "sigmoid",
    activation_site: ActivationSite = "prediction",
    bias: bool = True,
) -> PCGraph:
    """A generative MLP decoder: top latent `"z"` -> `"h1"` ... -> sensory `"x"`.

    During training the data is clamped at `"x"` and every other node is inferred; the
    latent `"z"` is a free root. `sizes` runs from the latent to the data, e.g.
    `[32, 256, 784]`.
    """
    check_at_least("len(sizes)", len(sizes), 2, hint="A decoder needs a latent and a data size.")
    hidden = len(sizes) - 2
    names = ["z", *[f"h{i}" for i in range(hidden, 0, -1)], "x"]
    f = get_activation(activation)
    return _chain(
        names,
        sizes,
        [*([f] * hidden), get_activation(output_activation)],
        output_energy=Gaussian(),
        activation_site=activation_site,
        bias=bias,
        key=key,
    )
