"""Activations by name: the ones a search of the Faster-PC grid names, and a clear error."""

import jax.numpy as jnp
import numpy as np
import pytest

from pcn.activations import get_activation


@pytest.mark.parametrize("name", ["gelu", "elu", "tanh", "leaky_relu", "relu"])
def test_the_faster_pc_grids_activations_are_known(name):
    f = get_activation(name)
    x = jnp.array([-2.0, 0.5])
    assert f(x).shape == (2,) and float(f(x)[1]) > 0


def test_elu_is_exp_minus_one_below_zero():
    np.testing.assert_allclose(get_activation("elu")(jnp.array([-1.0, 2.0])), [np.e**-1 - 1, 2.0])


def test_an_unknown_activation_names_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown `activation` 'swish'.*'elu'"):
        get_activation("swish")
