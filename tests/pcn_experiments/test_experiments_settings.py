"""Experiment configs reject bad settings with an error naming the setting."""

import dataclasses

import pytest

from pcn_experiments import fashion_mnist_generative, fashion_mnist_mlp


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


def test_set_overrides_change_the_config_and_are_recorded(tmp_path):
    from pcn_experiments import run_experiment

    results = run_experiment(
        "digits-mlp",
        out=tmp_path,
        quick=True,
        progress=False,
        overrides={"epochs": "1", "sizes": "64,32,10"},
    )
    assert results["config"]["epochs"] == 1
    assert results["config"]["sizes"] == [64, 32, 10]
    assert results["overrides"] == {"epochs": "1", "sizes": "64,32,10"}
    assert "--set epochs=1 --set sizes=64,32,10" in (tmp_path / "report.md").read_text()


def test_set_rejects_unknown_settings_and_unreadable_values(tmp_path):
    from pcn_experiments import run_experiment

    with pytest.raises(ValueError, match=r"Unknown setting 'nope'.*'learning_rate'"):
        run_experiment("digits-mlp", out=tmp_path, quick=True, overrides={"nope": "1"})
    with pytest.raises(ValueError, match=r"Cannot read 'fast' as the setting 'epochs'"):
        run_experiment("digits-mlp", out=tmp_path, quick=True, overrides={"epochs": "fast"})
    with pytest.raises(ValueError, match="`learning_rate` must be > 0"):
        run_experiment("digits-mlp", out=tmp_path, quick=True, overrides={"learning_rate": "-1"})


def test_set_reads_an_optional_setting_by_its_declared_type(tmp_path):
    # `train` defaults to None (all examples): `--set train=2000` is read as the
    # annotation's int, and "none" gives the default back
    from pcn_experiments import table_2_1
    from pcn_experiments.registry import RunContext, choose_config

    def chosen(**overrides):
        ctx = RunContext(out=tmp_path, overrides=tuple(overrides.items()))
        return choose_config(ctx, table_2_1.FULL, table_2_1.QUICK)

    assert chosen(train="2000").train == 2000
    assert chosen(train="none").train is None
    with pytest.raises(ValueError, match=r"Cannot read 'many' as the setting 'train'.*int \| None"):
        chosen(train="many")
