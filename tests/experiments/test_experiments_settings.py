"""Experiment configs reject bad settings with an error naming the setting."""

import dataclasses

import pytest

from pcn.experiments import fashion_mnist_generative, fashion_mnist_mlp


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("learning_rate", 0.0, "`learning_rate` must be > 0"),
        ("learning_rate", -1e-3, "`learning_rate` must be > 0"),
        ("gamma", 0.0, "`gamma` must be > 0"),
        ("steps", 0, "`steps` must be an integer >= 1"),
        ("epochs", 0, "`epochs` must be an integer >= 1"),
    ],
)
def test_supervised_config_names_the_bad_setting(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(fashion_mnist_mlp.FULL, **{field: value})


def test_generative_config_names_the_bad_setting():
    with pytest.raises(ValueError, match="`eval_steps` must be an integer >= 1"):
        dataclasses.replace(fashion_mnist_generative.FULL, eval_steps=0)
